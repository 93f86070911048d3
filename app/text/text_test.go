package text_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"ticketing/app/text"
)

func TestLine(t *testing.T) {
	for _, tt := range []struct {
		in        string
		line, all string // Line's and Lines' answers ("" is fine)
	}{
		{"Jazz night", "", ""},
		{"Björk — live 🎤", "", ""},
		{"family 👨‍👩‍👧", "", ""},
		{"", "", ""},
		{"a\x00b", "Title must not contain NUL characters", "Title must not contain NUL characters"},
		{"a\nb", "Title must not contain control characters", ""},
		{"a\r\nb\tc", "Title must not contain control characters", ""},
		{"x\rid: 999\r\rx", "Title must not contain control characters", ""},
		{"a\x1bb", "Title must not contain control characters", "Title must not contain control characters"},
		{"a\x7fb", "Title must not contain control characters", "Title must not contain control characters"},
		{"a\u0085b", "Title must not contain control characters", "Title must not contain control characters"},
		{"a\u2028b", "Title must not contain control characters", "Title must not contain control characters"},
		{"evil\u202egnp.exe", "Title must not contain control characters", "Title must not contain control characters"},
		{"a\xffb", "Title must be valid UTF-8 text", "Title must be valid UTF-8 text"},
		{strings.Repeat("é", 20), "", ""},
		{strings.Repeat("é", 21), "Title must be at most 20 characters", "Title must be at most 20 characters"},
	} {
		assert.Equal(t, tt.line, text.Line("Title", tt.in, 20), "Line %q", tt.in)
		assert.Equal(t, tt.all, text.Lines("Title", tt.in, 20), "Lines %q", tt.in)
	}
}
