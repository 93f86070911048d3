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

	"ticketing/app/problem"
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

// Password length bounds, from the seed (counted after trimming spaces).
const (
	minPassword = 4
	maxPassword = 20
	maxEmail    = 254
)

// normaliseEmail is how emails are compared and stored.
func normaliseEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// validEmail accepts a bare address (no display name), as the seed's
// isEmail validator did.
func validEmail(s string) bool {
	if s == "" || len(s) > maxEmail {
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
	if n := len(strings.TrimSpace(password)); n < minPassword || n > maxPassword {
		fields["password"] = "Password must be between 4 and 20 characters"
	}
	return problem.Fields(fields)
}

func validateSignIn(email, password string) error {
	fields := map[string]string{}
	if !validEmail(email) {
		fields["email"] = "Email must be valid"
	}
	if strings.TrimSpace(password) == "" {
		fields["password"] = "You must supply a password"
	}
	return problem.Fields(fields)
}
