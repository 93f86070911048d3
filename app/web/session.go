package web

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
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
	for _, codec := range store.Codecs {
		if sc, ok := codec.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(jsonValues{})
		}
	}
	return &Sessions{store: store}, nil
}

// jsonValues serialises a session's values as JSON instead of gob. Decoding
// gob builds a decoder for the type on every request, which cost more CPU
// than anything else in reading the cookie; our values are strings (the
// user, flash messages), which JSON carries as they are.
type jsonValues struct{}

func (jsonValues) Serialize(src any) ([]byte, error) {
	values, ok := src.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("session values: want map[any]any, got %T", src)
	}
	m := make(map[string]any, len(values))
	for k, v := range values {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("session values: key %v is not a string", k)
		}
		m[key] = v
	}
	return json.Marshal(m)
}

func (jsonValues) Deserialize(b []byte, dst any) error {
	values, ok := dst.(*map[any]any)
	if !ok {
		return fmt.Errorf("session values: want *map[any]any, got %T", dst)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if *values == nil {
		*values = make(map[any]any, len(m))
	}
	for k, v := range m {
		(*values)[k] = v
	}
	return nil
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
