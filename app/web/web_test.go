package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"ticketing/app/auth"
	"ticketing/app/problem"
	"ticketing/app/web"
	"ticketing/db/dbtest"
	"ticketing/events"
	"ticketing/views"
)

func newEcho(t *testing.T) *echo.Echo {
	t.Helper()
	v, err := views.New()
	require.NoError(t, err)
	e := echo.New()
	e.HTTPErrorHandler = web.ErrorHandler(&web.Renderer{Views: v}, dbtest.Quiet)
	return e
}

func TestErrorStatusPerKind(t *testing.T) {
	tests := []struct {
		kind      problem.Kind
		api, page int
	}{
		{problem.Invalid, 400, 422},
		{problem.Conflict, 400, 409},
		{problem.NotFound, 404, 404},
		{problem.Unauthenticated, 401, 303}, // pages redirect to sign in
		{problem.Forbidden, 401, 403},       // the seed answers 401 for someone else's resource
		{problem.TooManyRequests, 429, 429},
		{problem.Unavailable, 503, 503},
		{problem.PaymentRequired, 402, 402},
		{problem.Internal, 500, 500},
	}
	for _, tt := range tests {
		e := newEcho(t)
		fail := func(echo.Context) error { return &problem.Error{Kind: tt.kind, Message: "the message"} }
		e.GET("/api/x", fail)
		e.GET("/x", fail)

		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/x", nil))
		assert.Equal(t, tt.api, rec.Code, "api kind %d", tt.kind)
		var body web.ErrorBody
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		require.Len(t, body.Errors, 1)
		if tt.kind == problem.Internal {
			assert.Equal(t, "the message", body.Errors[0].Message) // a problem.Error's message is for the user
		}

		rec = httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
		assert.Equal(t, tt.page, rec.Code, "page kind %d", tt.kind)
	}
}

func TestInternalErrorsAreNotShown(t *testing.T) {
	e := newEcho(t)
	e.GET("/api/x", func(echo.Context) error { return errors.New("secret database detail") })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/x", nil))
	assert.Equal(t, 500, rec.Code)
	assert.NotContains(t, rec.Body.String(), "secret")
	assert.JSONEq(t, `{"errors":[{"message":"Something went wrong on our side"}]}`, rec.Body.String())
}

func TestFieldErrorsOnePerField(t *testing.T) {
	e := newEcho(t)
	e.POST("/api/x", func(echo.Context) error {
		return problem.Fields(map[string]string{"password": "Password must be between 4 and 20 characters", "email": "Email must be valid"})
	})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/x", nil))
	assert.Equal(t, 400, rec.Code)
	assert.JSONEq(t, `{"errors":[{"message":"Email must be valid","field":"email"},{"message":"Password must be between 4 and 20 characters","field":"password"}]}`, rec.Body.String())
}

func TestBind(t *testing.T) {
	type body struct {
		Title string      `json:"title"`
		Price json.Number `json:"price"`
	}
	tests := []struct {
		name, contentType, body string
		wantField, wantMessage  string
	}{
		{"ok", "application/json", `{"title":"a","price":10.5}`, "", ""},
		{"charset ok", "application/json; charset=utf-8", `{"title":"a"}`, "", ""},
		{"form content type", "application/x-www-form-urlencoded", `title=a`, "", "Content-Type must be application/json"},
		{"no content type", "", `{"title":"a"}`, "", "Content-Type must be application/json"},
		{"malformed", "application/json", `{"title":`, "", "Malformed JSON body"},
		{"not an object", "application/json", `[1,2]`, "", "Request body must be a JSON object"},
		{"wrong type", "application/json", `{"title":5}`, "title", "title must be a string"},
		{"empty", "application/json", ``, "", "Request body is empty"},
		{"two values", "application/json", `{"title":"a"}{"title":"b"}`, "", "Request body must be a single JSON object"},
		{"too large", "application/json", `{"title":"` + strings.Repeat("x", web.MaxBodyBytes) + `"}`, "", "Request body must be at most 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEcho(t)
			e.POST("/api/x", func(c echo.Context) error {
				var b body
				if err := web.Bind(c, &b); err != nil {
					return err
				}
				return c.JSON(200, b)
			})
			req := httptest.NewRequest(http.MethodPost, "/api/x", bytes.NewBufferString(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if tt.wantMessage == "" {
				assert.Equal(t, 200, rec.Code, rec.Body.String())
				return
			}
			assert.Equal(t, 400, rec.Code)
			var got web.ErrorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			require.Len(t, got.Errors, 1)
			assert.Equal(t, tt.wantMessage, got.Errors[0].Message)
			assert.Equal(t, tt.wantField, got.Errors[0].Field)
		})
	}
}

func TestFragmentRequest(t *testing.T) {
	tests := []struct {
		headers map[string]string
		want    bool
	}{
		{map[string]string{}, false},
		{map[string]string{"HX-Request": "true"}, true},
		{map[string]string{"HX-Request": "true", "HX-Boosted": "true"}, false},
		{map[string]string{"HX-Request": "true", "HX-History-Restore-Request": "true"}, false},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		for k, v := range tt.headers {
			req.Header.Set(k, v)
		}
		c := echo.New().NewContext(req, httptest.NewRecorder())
		assert.Equal(t, tt.want, web.IsFragmentRequest(c), "%v", tt.headers)
	}
}

// The session cookie carries the user and flash messages from one request
// to the next; a cookie that does not verify is no session, not an error.
func TestSessionCookieRoundTrip(t *testing.T) {
	records := authStore(t)
	user, err := records.SignUp(t.Context(), "a@example.com", "password", "")
	require.NoError(t, err)
	s, err := web.NewSessions(bytes.Repeat([]byte("k"), 32), false, records, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	e := echo.New()
	e.Use(s.Middleware)
	e.POST("/in", func(c echo.Context) error {
		if err := s.SignIn(c, web.User{ID: user.ID, Email: user.Email}); err != nil {
			return err
		}
		if err := s.Flash(c, "Welcome"); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	e.GET("/who", func(c echo.Context) error {
		u := web.CurrentUser(c)
		if u == nil {
			return c.String(http.StatusOK, "nobody")
		}
		return c.String(http.StatusOK, u.ID+" "+u.Email+" "+strings.Join(news(s.Flashes(c)), ","))
	})
	get := func(cookie *http.Cookie) string {
		req := httptest.NewRequest(http.MethodGet, "/who", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		return rec.Body.String()
	}

	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/in", nil))
	require.Equal(t, http.StatusNoContent, rec.Code)
	cookies := rec.Result().Cookies()
	require.NotEmpty(t, cookies)
	cookie := cookies[len(cookies)-1]

	assert.Equal(t, user.ID+" a@example.com Welcome", get(cookie))

	tampered := *cookie
	tampered.Value = cookie.Value[:len(cookie.Value)-4] + "AAAA"
	assert.Equal(t, "nobody", get(&tampered))

	assert.Equal(t, "nobody", get(&http.Cookie{Name: cookie.Name, Value: "garbage"}))
}

// authStore is a real auth store on a file in t.TempDir(): the session
// records the cookie refers to.
func authStore(t *testing.T) *auth.Store {
	t.Helper()
	d := dbtest.Open(t, t.TempDir(), "auth", auth.Migrations())
	t.Cleanup(func() { d.Close() })
	bus := events.NewBus(slog.New(slog.DiscardHandler), events.Options{})
	return auth.NewStore(d, bus.Log(d), bcrypt.MinCost, []byte("test reset key"))
}

func news(n, _ []string) []string { return n }
