// Package text checks what users type before anything stores or searches
// it: valid UTF-8, no NUL, no control characters (a line break only where
// the field is multi-line). Every store validates its text fields with it,
// and app/web bounds every query parameter with it, so no handler has to
// remember.
package text

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Line returns what is wrong with s as one line of text of at most max
// characters, "" when nothing is. name starts the message ("Title").
func Line(name, s string, max int) string { return check(name, s, max, false) }

// Lines is Line for a multi-line field: CR, LF and tab are allowed.
func Lines(name, s string, max int) string { return check(name, s, max, true) }

func check(name, s string, max int, multiline bool) string {
	if !utf8.ValidString(s) {
		return name + " must be valid UTF-8 text"
	}
	n := 0
	for _, r := range s {
		n++
		switch {
		case multiline && (r == '\n' || r == '\r' || r == '\t'):
		case r == 0:
			return name + " must not contain NUL characters"
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) && r != '\u200d':
			// Cf: bidirectional overrides and other invisible format
			// characters that make text read other than it is; the
			// zero-width joiner is kept for emoji.
			return name + " must not contain control characters"
		}
	}
	if max > 0 && n > max {
		return fmt.Sprintf("%s must be at most %d characters", name, max)
	}
	return ""
}
