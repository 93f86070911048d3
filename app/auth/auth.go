// Package auth owns the users (auth.db): sign-up, sign-in and the password
// hashes. The session cookie itself lives in app/web, so every module can
// know who is asking without reading this module's file; auth only decides
// who may get one. It publishes user:created and user:renamed (the
// display name buyers see on a seller's listings).
package auth

import (
	"embed"
	"maps"
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

// User is an account. Its JSON is the seed's currentUser, {id, email},
// with the display name ("" until one is chosen).
type User struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"displayName"`
	CreatedAt   time.Time `json:"-"`
}

// The events auth appends: someone signed up; someone chose another
// display name.
const (
	EventUserCreated = "user:created"
	EventUserRenamed = "user:renamed"
)

// UserCreated is the payload of user:created.
type UserCreated struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName"`
}

// UserRenamed is the payload of user:renamed.
type UserRenamed struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// Password bounds. A password is taken exactly as typed (spaces are
// characters too), at least the seed's 4 characters, and at most the 72
// bytes bcrypt reads: a longer one is refused rather than silently cut
// (NIST SP 800-63B asks for at least 64 characters; 72 plain ones fit).
const (
	minPassword = 4
	maxPassword = 72 // bytes
	maxEmail    = 254
	maxName     = 40
)

// normaliseName is a display name as stored: without surrounding spaces.
func normaliseName(s string) string { return strings.TrimSpace(s) }

// nameProblem says what is wrong with a display name, "" if nothing.
// Empty is allowed here (the seed's API signs up with email and password
// only); the sign-up and account forms ask for one.
func nameProblem(name string) string {
	return text.Line("Display name", name, maxName)
}

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

func validateSignUp(email, password, name string) error {
	fields := map[string]string{}
	if !validEmail(email) {
		fields["email"] = "Email must be valid"
	}
	if msg := nameProblem(name); msg != "" {
		fields["displayName"] = msg
	}
	if msg := passwordProblem(password); msg != "" {
		fields["password"] = msg
	}
	return problem.Fields(fields)
}

// nameRequired is what the sign-up and account forms say without a name.
const nameRequired = "Choose the name buyers will see"

// requireName is the sign-up form's rule on top of SignUp's: a display
// name is asked for (the API may leave it out). A missing one is said
// together with what else is wrong.
func requireName(email, password, name string) error {
	if normaliseName(name) != "" {
		return nil
	}
	fields := map[string]string{"displayName": nameRequired}
	if p, ok := problem.As(validateSignUp(normaliseEmail(email), password, "")); ok {
		maps.Copy(fields, p.Fields)
	}
	return problem.Fields(fields)
}

// greeting is how the site addresses u: by name, or by email without one.
func greeting(u User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Email
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
