// Package auth owns the users (auth.db): sign-up, sign-in and the password
// hashes. The session cookie itself lives in app/web, so every module can
// know who is asking without reading this module's file; auth only decides
// who may get one. It publishes user:created.
package auth

import (
	"embed"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"ticketing/app/problem"
	"ticketing/app/text"
	"ticketing/db"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns auth.db's schema.
func Migrations() db.Migrations { return db.Embedded("auth", migrations) }

// User is an account. Its JSON is the seed's currentUser: {id, email}.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"-"`
}

// EventUserCreated is appended when someone signs up.
const EventUserCreated = "user:created"

// UserCreated is the payload of user:created.
type UserCreated struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Password bounds. A password is taken exactly as typed (spaces are
// characters too), at least the seed's 4 characters, and at most the 72
// bytes bcrypt reads: a longer one is refused rather than silently cut
// (NIST SP 800-63B asks for at least 64 characters; 72 plain ones fit).
const (
	minPassword = 4
	maxPassword = 72 // bytes
	maxEmail    = 254
)

// passwordProblem says what is wrong with a new password, "" if nothing.
func passwordProblem(p string) string {
	switch {
	case !utf8.ValidString(p) || strings.ContainsRune(p, 0):
		return "Password must be text without NUL characters"
	case utf8.RuneCountInString(p) < minPassword:
		return "Password must be at least 4 characters"
	case len(p) > maxPassword:
		return "Password must be at most 72 bytes (72 plain characters; accented letters and emoji take more)"
	}
	return ""
}

// normaliseEmail is how emails are compared and stored.
func normaliseEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// validEmail accepts a bare address (no display name), as the seed's
// isEmail validator did.
func validEmail(s string) bool {
	if s == "" || len(s) > maxEmail || text.Line("Email", s, maxEmail) != "" {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == "" && strings.Contains(s[strings.LastIndexByte(s, '@'):], ".")
}

func validateSignUp(email, password string) error {
	fields := map[string]string{}
	if !validEmail(email) {
		fields["email"] = "Email must be valid"
	}
	if msg := passwordProblem(password); msg != "" {
		fields["password"] = msg
	}
	return problem.Fields(fields)
}

func validateSignIn(email, password string) error {
	fields := map[string]string{}
	if !validEmail(email) {
		fields["email"] = "Email must be valid"
	}
	if password == "" {
		fields["password"] = "You must supply a password"
	}
	return problem.Fields(fields)
}
