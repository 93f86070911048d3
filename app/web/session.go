package web

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"ticketing/app/problem"
)

// User is who the session cookie says is signed in: the seed's JWT payload.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

const (
	sessionName   = "session"
	sessionMaxAge = 7 * 24 * time.Hour
	keyUser       = "web.user"
	keySession    = "web.session"
)

// Sessions keeps the signed-in user in a signed and encrypted cookie, so no
// request needs a database to know who is asking.
type Sessions struct {
	store *sessions.CookieStore
}

// NewSessions derives the cookie's signing and encryption keys from secret.
// secure marks the cookie Secure (BASE_URL is https).
func NewSessions(secret []byte, secure bool) (*Sessions, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("session secret must be at least 32 bytes, got %d", len(secret))
	}
	hashKey, err := hkdf.Key(sha256.New, secret, nil, "ticketing session hmac", 64)
	if err != nil {
		return nil, err
	}
	blockKey, err := hkdf.Key(sha256.New, secret, nil, "ticketing session aes", 32)
	if err != nil {
		return nil, err
	}
	store := sessions.NewCookieStore(hashKey, blockKey)
	store.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(sessionMaxAge / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	store.MaxAge(store.Options.MaxAge)
	return &Sessions{store: store}, nil
}

// Middleware reads the session cookie and puts the signed-in user, if any,
// in the context. A cookie that does not verify (an old key, tampering) is
// treated as no session.
func (s *Sessions) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, _ := s.store.Get(c.Request(), sessionName) // a bad cookie yields a new session
		c.Set(keySession, sess)
		id, _ := sess.Values["uid"].(string)
		email, _ := sess.Values["email"].(string)
		if id != "" {
			c.Set(keyUser, &User{ID: id, Email: email})
		}
		return next(c)
	}
}

func (s *Sessions) session(c echo.Context) *sessions.Session {
	if sess, ok := c.Get(keySession).(*sessions.Session); ok {
		return sess
	}
	sess, _ := s.store.Get(c.Request(), sessionName)
	c.Set(keySession, sess)
	return sess
}

// SignIn makes u the signed-in user of this browser or client.
func (s *Sessions) SignIn(c echo.Context, u User) error {
	sess := s.session(c)
	sess.Values["uid"] = u.ID
	sess.Values["email"] = u.Email
	sess.Options.MaxAge = s.store.Options.MaxAge
	c.Set(keyUser, &u)
	return sess.Save(c.Request(), c.Response())
}

// SignOut clears the session cookie.
func (s *Sessions) SignOut(c echo.Context) error {
	sess := s.session(c)
	sess.Values = map[any]any{}
	sess.Options.MaxAge = -1
	c.Set(keyUser, (*User)(nil))
	return sess.Save(c.Request(), c.Response())
}

// Flash stores a one-time message shown on the next page rendered.
func (s *Sessions) Flash(c echo.Context, msg string) error {
	sess := s.session(c)
	sess.AddFlash(msg)
	return sess.Save(c.Request(), c.Response())
}

// Flashes returns and clears the pending one-time messages.
func (s *Sessions) Flashes(c echo.Context) []string {
	sess := s.session(c)
	fs := sess.Flashes()
	if len(fs) == 0 {
		return nil
	}
	_ = sess.Save(c.Request(), c.Response())
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		if m, ok := f.(string); ok {
			out = append(out, m)
		}
	}
	return out
}

// CurrentUser returns the signed-in user, nil when there is none.
func CurrentUser(c echo.Context) *User {
	u, _ := c.Get(keyUser).(*User)
	return u
}

// RequireUser answers Unauthenticated unless someone is signed in: a 401
// from the API, a redirect to the sign-in page for pages.
func RequireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if CurrentUser(c) == nil {
			return problem.New(problem.Unauthenticated, "Not authorized")
		}
		return next(c)
	}
}
