package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"ticketing/app/problem"
	"ticketing/db"
)

// EventResetRequested is appended when someone asks for a password reset
// link; the mail module sends it. It names the reset, never its token.
const EventResetRequested = "password:reset-requested"

// ResetRequested is the payload of password:reset-requested.
type ResetRequested struct {
	ID        string    `json:"id"` // derive the link's token with ResetToken
	UserID    string    `json:"userId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// resetTTL is how long a reset link works.
const resetTTL = time.Hour

// ResetToken is the token of reset id's link under key: an HMAC, so the
// link can be made by whoever holds the install's key (auth, to check it;
// the mail module, to send it) and by no one who only has the files.
func ResetToken(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("password reset\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// RequestReset records a reset link for the account of email, if there is
// one, and appends password:reset-requested for the mail module. It says
// nothing of whether the account exists: the caller answers the same
// either way.
func (s *Store) RequestReset(ctx context.Context, email string) error {
	email = normaliseEmail(email)
	if !validEmail(email) {
		return problem.Fields(map[string]string{"email": "Email must be valid"})
	}
	return s.db.Tx(ctx, func(tx *db.Tx) error {
		var userID string
		err := tx.QueryRowContext(ctx, "SELECT id FROM users WHERE email = ?", email).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find user for reset: %w", err)
		}
		now := time.Now().UTC()
		r := ResetRequested{ID: db.NewID(), UserID: userID, ExpiresAt: now.Add(resetTTL)}
		_, err = tx.ExecContext(ctx, "INSERT INTO password_resets (id, token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
			r.ID, hashToken(ResetToken(s.resetKey, r.ID)), userID, db.Timestamp(now), db.Timestamp(r.ExpiresAt))
		if err != nil {
			return fmt.Errorf("record reset: %w", err)
		}
		_, err = s.log.Append(ctx, tx, EventResetRequested, userID, 0, r)
		return err
	})
}

// errResetLink refuses a link that is unknown, used or out of time.
var errResetLink = problem.New(problem.Invalid, "This link has expired or was used already; ask for a new one")

// ResetPassword sets the password of the account whose reset link token
// is, once: the link is used up, and every session of that user ends
// (signed in elsewhere, with the old password, they are signed out).
func (s *Store) ResetPassword(ctx context.Context, token, password string) (User, error) {
	if msg := passwordProblem(password); msg != "" {
		return User{}, problem.Fields(map[string]string{"password": msg})
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	var userID string
	err = s.db.Tx(ctx, func(tx *db.Tx) error {
		var id, expires string
		var used sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT id, user_id, expires_at, used_at FROM password_resets WHERE token_hash = ?", hashToken(token)).
			Scan(&id, &userID, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return errResetLink
		}
		if err != nil {
			return fmt.Errorf("find reset: %w", err)
		}
		if at, _ := db.ParseTime(expires); used.Valid || !time.Now().Before(at) {
			return errResetLink
		}
		now := db.Timestamp(time.Now())
		if _, err := tx.ExecContext(ctx, "UPDATE password_resets SET used_at = ? WHERE user_id = ? AND used_at IS NULL", now, userID); err != nil {
			return fmt.Errorf("use reset: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", string(hash), userID); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", userID); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	// Only once the rows are gone (see EndSession).
	s.sessions.endUser(userID)
	return s.Get(ctx, userID)
}
