package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"ticketing/app/problem"
	"ticketing/db"
	"ticketing/events"
)

// Store is all SQL on auth.db.
type Store struct {
	db   *db.DB
	log  *events.Log
	cost int
	// dummyHash is compared against when the email is unknown, so that a
	// wrong email costs as much time as a wrong password and response
	// times do not reveal which emails have accounts.
	dummyHash []byte
	sessions  sessionCache
	// resetKey makes reset links' tokens (ResetToken).
	resetKey []byte
}

// NewStore returns the store; cost is bcrypt's (0 means its default);
// resetKey makes password reset links (ResetToken).
func NewStore(d *db.DB, log *events.Log, cost int, resetKey []byte) *Store {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not a real password"), cost)
	if err != nil {
		panic(fmt.Sprintf("auth: bcrypt cost %d: %v", cost, err)) // a wiring bug
	}
	events.Publishes[UserCreated](log, EventUserCreated)
	events.Publishes[UserRenamed](log, EventUserRenamed)
	events.Publishes[ResetRequested](log, EventResetRequested)
	return &Store{db: d, log: log, cost: cost, dummyHash: dummy, sessions: sessionCache{m: map[string]cachedSession{}}, resetKey: resetKey}
}

var errInvalidCredentials = problem.New(problem.Invalid, "Invalid credentials")

// SignUp creates an account and appends user:created in the same
// transaction. A taken email is a Conflict, "Email in use". The display
// name may be "" (chosen later).
func (s *Store) SignUp(ctx context.Context, email, password, displayName string) (User, error) {
	email, displayName = normaliseEmail(email), normaliseName(displayName)
	if err := validateSignUp(email, password, displayName); err != nil {
		return User{}, err
	}
	// Hash outside the transaction: it takes tens of milliseconds and the
	// writer connection is shared by the whole module.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	u := User{ID: db.NewID(), Email: email, DisplayName: displayName, CreatedAt: time.Now().UTC()}
	err = s.db.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO users (id, email, display_name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
			u.ID, u.Email, u.DisplayName, string(hash), db.Timestamp(u.CreatedAt))
		if db.IsUniqueViolation(err) {
			return &problem.Error{Kind: problem.Conflict, Message: "Email in use", Fields: map[string]string{"email": "Email in use"}}
		}
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		_, err = s.log.Append(ctx, tx, EventUserCreated, u.ID, 1, UserCreated{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName})
		return err
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// SignIn checks an email and password. Unknown email and wrong password
// are the same error, after the same amount of work.
func (s *Store) SignIn(ctx context.Context, email, password string) (User, error) {
	email = normaliseEmail(email)
	if err := validateSignIn(email, password); err != nil {
		return User{}, err
	}
	var (
		u       User
		hash    string
		created string
	)
	err := s.db.Read().QueryRowContext(ctx, "SELECT id, email, display_name, password_hash, created_at FROM users WHERE email = ?", email).
		Scan(&u.ID, &u.Email, &u.DisplayName, &hash, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return User{}, errInvalidCredentials
	case err != nil:
		return User{}, fmt.Errorf("find user: %w", err)
	}
	// bcrypt compares only the first 72 bytes; no password longer than
	// that was ever accepted, so one is never right.
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || len(password) > maxPassword {
		return User{}, errInvalidCredentials
	}
	u.CreatedAt, _ = db.ParseTime(created)
	return u, nil
}

// Get returns the account with id.
func (s *Store) Get(ctx context.Context, id string) (User, error) {
	var (
		u       User
		created string
	)
	err := s.db.Read().QueryRowContext(ctx, "SELECT id, email, display_name, created_at FROM users WHERE id = ?", id).
		Scan(&u.ID, &u.Email, &u.DisplayName, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, problem.New(problem.NotFound, "Not found")
	case err != nil:
		return User{}, fmt.Errorf("find user %s: %w", id, err)
	}
	u.CreatedAt, _ = db.ParseTime(created)
	return u, nil
}

// Rename sets the user's display name and appends user:renamed in the
// same transaction; the same name again changes nothing. A display name
// is required once chosen: "" is a field error.
func (s *Store) Rename(ctx context.Context, id, displayName string) (User, error) {
	displayName = normaliseName(displayName)
	msg := nameProblem(displayName)
	if displayName == "" {
		msg = nameRequired
	}
	if msg != "" {
		return User{}, problem.Fields(map[string]string{"displayName": msg})
	}
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		var old string
		if err := tx.QueryRowContext(ctx, "SELECT display_name FROM users WHERE id = ?", id).Scan(&old); errors.Is(err, sql.ErrNoRows) {
			return problem.New(problem.NotFound, "Not found")
		} else if err != nil {
			return fmt.Errorf("find user %s: %w", id, err)
		}
		if old == displayName {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "UPDATE users SET display_name = ? WHERE id = ?", displayName, id); err != nil {
			return fmt.Errorf("rename user %s: %w", id, err)
		}
		_, err := s.log.Append(ctx, tx, EventUserRenamed, id, 0, UserRenamed{ID: id, DisplayName: displayName})
		return err
	})
	if err != nil {
		return User{}, err
	}
	return s.Get(ctx, id)
}
