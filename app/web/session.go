package web

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
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

// Sessions keeps the signed-in user in a signed and encrypted cookie, with
// the id of the session's record on the server (Records): a cookie whose
// session has ended (signed out) is no session, wherever it is replayed.
type Sessions struct {
	store   *sessions.CookieStore
	records Records
	logger  *slog.Logger // reports session records that cannot be read
}

// Records is the server's record of live sessions (auth.db). SessionUser
// is asked on every request with a session cookie, so it must answer from
// memory in the common case.
type Records interface {
	// BeginSession records a new session of userID and returns its id.
	BeginSession(ctx context.Context, userID string, ttl time.Duration) (string, error)
	// SessionUser returns the user of a live session, "" if it has ended.
	SessionUser(ctx context.Context, sessionID string) (string, error)
	// EndSession ends a session.
	EndSession(ctx context.Context, sessionID string) error
}

// NewSessions derives the cookie's signing and encryption keys from secret.
// secure marks the cookie Secure (BASE_URL is https).
func NewSessions(secret []byte, secure bool, records Records, logger *slog.Logger) (*Sessions, error) {
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
	return &Sessions{store: store, records: records, logger: logger}, nil
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
// in the context. A cookie that does not verify (an old key, tampering),
// or whose session has ended on the server, is treated as no session.
func (s *Sessions) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, _ := s.store.Get(c.Request(), sessionName) // a bad cookie yields a new session
		c.Set(keySession, sess)
		if s.Live(c) {
			id, _ := sess.Values["uid"].(string)
			email, _ := sess.Values["email"].(string)
			c.Set(keyUser, &User{ID: id, Email: email})
		}
		return next(c)
	}
}

// Live reports whether the request's cookie names a session that is live
// on the server, for its user. A long-lived stream asks again as it runs,
// so signing out elsewhere ends it too.
func (s *Sessions) Live(c echo.Context) bool {
	sess := s.session(c)
	id, _ := sess.Values["uid"].(string)
	sid, _ := sess.Values["sid"].(string)
	if id == "" || sid == "" {
		return false
	}
	owner, err := s.records.SessionUser(c.Request().Context(), sid)
	if err != nil {
		// Fail closed: without the record we cannot tell an ended session.
		s.logger.Warn("look up session; treating the request as signed out", "err", err)
		return false
	}
	return owner == id
}

func (s *Sessions) session(c echo.Context) *sessions.Session {
	if sess, ok := c.Get(keySession).(*sessions.Session); ok {
		return sess
	}
	sess, _ := s.store.Get(c.Request(), sessionName)
	c.Set(keySession, sess)
	return sess
}

// SignIn makes u the signed-in user of this browser or client, in a new
// session (a session this cookie had before ends).
func (s *Sessions) SignIn(c echo.Context, u User) error {
	sess := s.session(c)
	ctx := c.Request().Context()
	if old, _ := sess.Values["sid"].(string); old != "" {
		if err := s.records.EndSession(ctx, old); err != nil {
			return err
		}
	}
	sid, err := s.records.BeginSession(ctx, u.ID, sessionMaxAge)
	if err != nil {
		return err
	}
	sess.Values["sid"] = sid
	sess.Values["uid"] = u.ID
	sess.Values["email"] = u.Email
	sess.Options.MaxAge = s.store.Options.MaxAge
	c.Set(keyUser, &u)
	return sess.Save(c.Request(), c.Response())
}

// SignOut ends the session on the server and clears the cookie.
func (s *Sessions) SignOut(c echo.Context) error {
	sess := s.session(c)
	if sid, _ := sess.Values["sid"].(string); sid != "" {
		if err := s.records.EndSession(c.Request().Context(), sid); err != nil {
			return err
		}
	}
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

// refusalKey keeps refusals apart from good news: the next page shows
// them in the error style.
const refusalKey = "refusal"

// FlashRefusal is Flash for a message that says no ("Sorry, someone else
// just reserved this ticket.").
func (s *Sessions) FlashRefusal(c echo.Context, msg string) error {
	sess := s.session(c)
	sess.AddFlash(msg, refusalKey)
	return sess.Save(c.Request(), c.Response())
}

// Flashes returns and clears the pending one-time messages: the good news,
// then the refusals.
func (s *Sessions) Flashes(c echo.Context) (news, refusals []string) {
	sess := s.session(c)
	strs := func(fs []any) []string {
		var out []string
		for _, f := range fs {
			if m, ok := f.(string); ok {
				out = append(out, m)
			}
		}
		return out
	}
	news, refusals = strs(sess.Flashes()), strs(sess.Flashes(refusalKey))
	if len(news)+len(refusals) > 0 {
		_ = sess.Save(c.Request(), c.Response())
	}
	return news, refusals
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
