package auth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
	"ticketing/app/auth"
	"ticketing/app/web"
)

type errorsBody = web.ErrorBody

func item(message, field string) web.ErrorItem { return web.ErrorItem{Message: message, Field: field} }

func TestSignUpAPI(t *testing.T) {
	h := apptest.New(t)
	tests := []struct {
		name   string
		body   any
		status int
		errors []web.ErrorItem
	}{
		{"ok", map[string]string{"email": "new@example.com", "password": "pass"}, 201, nil},
		{"invalid email", map[string]string{"email": "not-an-email", "password": "password"}, 400, []web.ErrorItem{item("Email must be valid", "email")}},
		{"display name is not an email", map[string]string{"email": "Bob <bob@example.com>", "password": "password"}, 400, []web.ErrorItem{item("Email must be valid", "email")}},
		{"password too short", map[string]string{"email": "a@example.com", "password": "abc"}, 400, []web.ErrorItem{item("Password must be between 4 and 20 characters", "password")}},
		{"password too long", map[string]string{"email": "a@example.com", "password": strings.Repeat("p", 21)}, 400, []web.ErrorItem{item("Password must be between 4 and 20 characters", "password")}},
		{"both wrong", map[string]string{"email": "", "password": ""}, 400, []web.ErrorItem{item("Email must be valid", "email"), item("Password must be between 4 and 20 characters", "password")}},
		{"email in use, other case", map[string]string{"email": "  NEW@Example.com ", "password": "password"}, 400, []web.ErrorItem{item("Email in use", "email")}},
		{"malformed json", `{"email":`, 400, []web.ErrorItem{item("Malformed JSON body", "")}},
		{"wrong type", `{"email": 5, "password": "password"}`, 400, []web.ErrorItem{item("email must be a string", "email")}},
	}
	cl := h.Client(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				web.ErrorBody
				ID    string `json:"id"`
				Email string `json:"email"`
			}
			status := cl.JSON(t, http.MethodPost, "/api/users/signup", tt.body, &body)
			assert.Equal(t, tt.status, status)
			if tt.errors == nil {
				assert.Equal(t, "new@example.com", body.Email)
				assert.NotEmpty(t, body.ID)
				return
			}
			assert.Equal(t, tt.errors, body.Errors)
		})
	}
}

func TestSignUpSignsInAndAppendsUserCreated(t *testing.T) {
	h := apptest.New(t)
	cl := h.Client(t)
	u := cl.SignUp(t, "fan@example.com", "password")

	var cur struct {
		CurrentUser *web.User `json:"currentUser"`
	}
	require.Equal(t, 200, cl.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
	require.NotNil(t, cur.CurrentUser)
	assert.Equal(t, u, *cur.CurrentUser)

	var typ, subject, data string
	require.NoError(t, h.App.DB("auth").Read().QueryRow("SELECT type, subject, data FROM events").Scan(&typ, &subject, &data))
	assert.Equal(t, "user:created", typ)
	assert.Equal(t, u.ID, subject)
	assert.JSONEq(t, `{"id":"`+u.ID+`","email":"fan@example.com"}`, data)
}

func TestSignInAndSignOutAPI(t *testing.T) {
	h := apptest.New(t)
	h.Client(t).SignUp(t, "fan@example.com", "password")

	cl := h.Client(t)
	var cur struct {
		CurrentUser *web.User `json:"currentUser"`
	}
	require.Equal(t, 200, cl.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
	assert.Nil(t, cur.CurrentUser)

	tests := []struct {
		name   string
		body   any
		status int
		errors []web.ErrorItem
	}{
		{"invalid email", map[string]string{"email": "nope", "password": "password"}, 400, []web.ErrorItem{item("Email must be valid", "email")}},
		{"no password", map[string]string{"email": "fan@example.com", "password": ""}, 400, []web.ErrorItem{item("You must supply a password", "password")}},
		{"unknown email", map[string]string{"email": "who@example.com", "password": "password"}, 400, []web.ErrorItem{item("Invalid credentials", "")}},
		{"wrong password", map[string]string{"email": "fan@example.com", "password": "wrong"}, 400, []web.ErrorItem{item("Invalid credentials", "")}},
	}
	for _, tt := range tests {
		var body web.ErrorBody
		assert.Equal(t, tt.status, cl.JSON(t, http.MethodPost, "/api/users/signin", tt.body, &body), tt.name)
		assert.Equal(t, tt.errors, body.Errors, tt.name)
	}

	var u web.User
	require.Equal(t, 200, cl.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "FAN@example.com", "password": "password"}, &u))
	assert.Equal(t, "fan@example.com", u.Email)
	require.Equal(t, 200, cl.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
	require.NotNil(t, cur.CurrentUser)

	resp := cl.Do(t, http.MethodPost, "/api/users/signout", nil)
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{}`, apptest.Body(t, resp))
	require.Equal(t, 200, cl.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
	assert.Nil(t, cur.CurrentUser)
}

func TestSignInIsRateLimited(t *testing.T) {
	h := apptest.New(t)
	h.Client(t).SignUp(t, "fan@example.com", "password")
	cl := h.Client(t)
	wrong := map[string]string{"email": "fan@example.com", "password": "wrong"}
	for range 10 {
		require.Equal(t, 400, cl.JSON(t, http.MethodPost, "/api/users/signin", wrong, nil))
	}
	var body web.ErrorBody
	require.Equal(t, 429, cl.JSON(t, http.MethodPost, "/api/users/signin", wrong, &body))
	assert.Contains(t, body.Errors[0].Message, "Too many sign-in attempts")
	// Even the right password waits out the window.
	assert.Equal(t, 429, cl.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "fan@example.com", "password": "password"}, nil))
	// Another account from the same address is not affected.
	h.Client(t).SignUp(t, "other@example.com", "password")
	assert.Equal(t, 200, cl.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "other@example.com", "password": "password"}, nil))
}

func TestLimiterWindowAndReset(t *testing.T) {
	l := auth.NewLimiter(2, time.Minute)
	now := time.Now()
	auth.SetLimiterClock(l, func() time.Time { return now })
	require.NoError(t, l.Allow("a@b.co", "1.2.3.4"))
	l.Fail("a@b.co", "1.2.3.4")
	l.Fail("A@B.CO", "1.2.3.4")
	require.Error(t, l.Allow("a@b.co", "1.2.3.4"))
	require.NoError(t, l.Allow("a@b.co", "5.6.7.8"), "per email and IP")
	now = now.Add(time.Minute)
	require.NoError(t, l.Allow("a@b.co", "1.2.3.4"), "the window passed")
	l.Fail("a@b.co", "1.2.3.4")
	l.Fail("a@b.co", "1.2.3.4")
	require.Error(t, l.Allow("a@b.co", "1.2.3.4"))
	l.Reset("a@b.co", "1.2.3.4")
	require.NoError(t, l.Allow("a@b.co", "1.2.3.4"))
}

func TestAPIRejectsNonJSONBodies(t *testing.T) {
	h := apptest.New(t)
	cl := h.Client(t)
	req, err := http.NewRequest(http.MethodPost, h.URL+"/api/users/signup", strings.NewReader("email=a@b.co&password=secret"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp := cl.Request(t, req)
	assert.Equal(t, 400, resp.StatusCode)
	assert.JSONEq(t, `{"errors":[{"message":"Content-Type must be application/json"}]}`, apptest.Body(t, resp))

	big := `{"email":"` + strings.Repeat("a", 70<<10) + `@example.com","password":"secret"}`
	var body web.ErrorBody
	assert.Equal(t, 400, cl.JSON(t, http.MethodPost, "/api/users/signup", big, &body))
	assert.Contains(t, body.Errors[0].Message, "at most")
}

func TestSignUpAndSignInPagesWithoutJavaScript(t *testing.T) {
	h := apptest.New(t)
	cl := h.Client(t)

	resp, doc := cl.Get(t, "/auth/signup")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 1, doc.Find(`form[method=post][action="/auth/signup"] input[name=_csrf]`).Length())

	// Errors re-render the form with messages next to the fields and the
	// email kept, the password not.
	resp = cl.Form(t, "/auth/signup", url.Values{"email": {"bad"}, "password": {"no"}})
	require.Equal(t, 422, resp.StatusCode)
	doc = apptest.Doc(t, resp)
	assert.Equal(t, "Email must be valid", strings.TrimSpace(doc.Find("#email-error").Text()))
	assert.Equal(t, "Password must be between 4 and 20 characters", strings.TrimSpace(doc.Find("#password-error").Text()))
	assert.Equal(t, "bad", doc.Find("#email").AttrOr("value", ""))
	assert.Equal(t, "true", doc.Find("#email").AttrOr("aria-invalid", ""))
	assert.Equal(t, "", doc.Find("#password").AttrOr("value", ""))

	resp = cl.Form(t, "/auth/signup", url.Values{"email": {"page@example.com"}, "password": {"password"}, "next": {"/tickets/new"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/tickets/new", resp.Header.Get("Location"))
	_, doc = cl.Get(t, "/")
	assert.Contains(t, doc.Find("header").Text(), "Sign out")
	assert.Contains(t, doc.Find(".flash").Text(), "Welcome, page@example.com")

	resp = cl.Form(t, "/auth/signup", url.Values{"email": {"PAGE@example.com"}, "password": {"password"}})
	require.Equal(t, 422, resp.StatusCode)
	assert.Equal(t, "Email in use", strings.TrimSpace(apptest.Doc(t, resp).Find("#email-error").Text()))

	resp = cl.Form(t, "/auth/signout", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, doc = cl.Get(t, "/")
	assert.Contains(t, doc.Find("header").Text(), "Sign in")

	resp = cl.Form(t, "/auth/signin", url.Values{"email": {"page@example.com"}, "password": {"wrong"}})
	require.Equal(t, 422, resp.StatusCode)
	assert.Contains(t, apptest.Doc(t, resp).Find(".form-message").Text(), "Invalid credentials")

	resp = cl.Form(t, "/auth/signin", url.Values{"email": {"page@example.com"}, "password": {"password"}, "next": {"//evil.example"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/", resp.Header.Get("Location"), "no open redirect")
}

func TestFormPostWithoutCSRFTokenIsRejected(t *testing.T) {
	h := apptest.New(t)
	cl := h.Client(t)
	req, err := http.NewRequest(http.MethodPost, h.URL+"/auth/signup", strings.NewReader(url.Values{"email": {"x@example.com"}, "password": {"password"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp := cl.Request(t, req)
	assert.Equal(t, 422, resp.StatusCode)
	assert.Contains(t, apptest.Body(t, resp), "csrf")

	// A cross-site browser post is refused even with a token-shaped field.
	req, _ = http.NewRequest(http.MethodPost, h.URL+"/auth/signup", strings.NewReader("email=x@example.com&password=password&_csrf=guess"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp = cl.Request(t, req)
	assert.GreaterOrEqual(t, resp.StatusCode, 400)
	assert.Less(t, resp.StatusCode, 500)

	_, err = h.App.Auth.SignIn(context.Background(), "x@example.com", "password")
	require.Error(t, err, "no account was created")
}
