package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/auth"
	"ticketing/app/web"
)

func item(message, field string) web.ErrorItem { return web.ErrorItem{Message: message, Field: field} }

func TestSignUpAPI(t *testing.T) {
	t.Parallel()
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
		{"password too short", map[string]string{"email": "a@example.com", "password": "abc"}, 400, []web.ErrorItem{item("Password must be at least 4 characters", "password")}},
		{"spaces are not trimmed: 3 characters", map[string]string{"email": "a@example.com", "password": " ab"}, 400, []web.ErrorItem{item("Password must be at least 4 characters", "password")}},
		{"password over bcrypt's 72 bytes", map[string]string{"email": "a@example.com", "password": strings.Repeat("p", 73)}, 400, []web.ErrorItem{item("Password must be at most 72 bytes (72 plain characters; accented letters and emoji take more)", "password")}},
		{"password of 37 two-byte letters", map[string]string{"email": "a@example.com", "password": strings.Repeat("é", 37)}, 400, []web.ErrorItem{item("Password must be at most 72 bytes (72 plain characters; accented letters and emoji take more)", "password")}},
		{"password with NUL", map[string]string{"email": "a@example.com", "password": "pass\x00word"}, 400, []web.ErrorItem{item("Password must be text without NUL characters", "password")}},
		{"both wrong", map[string]string{"email": "", "password": ""}, 400, []web.ErrorItem{item("Email must be valid", "email"), item("Password must be at least 4 characters", "password")}},
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
	t.Parallel()
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
	assert.JSONEq(t, `{"id":"`+u.ID+`","email":"fan@example.com","displayName":""}`, data)
}

func TestSignInAndSignOutAPI(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	// The sign-in page says so on its form, with the email kept.
	resp := cl.Form(t, "/auth/signin", url.Values{"email": {"fan@example.com"}, "password": {"password"}})
	assert.Equal(t, 429, resp.StatusCode)
	doc := apptest.Doc(t, resp)
	assert.Contains(t, doc.Find("#signin-form .form-message").Text(), "Too many sign-in attempts")
	assert.Equal(t, "fan@example.com", doc.Find("#email").AttrOr("value", ""))
	// Another account from the same address is not affected.
	h.Client(t).SignUp(t, "other@example.com", "password")
	assert.Equal(t, 200, cl.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "other@example.com", "password": "password"}, nil))
}

func TestLimiter(t *testing.T) {
	l := auth.NewLimiter(auth.Limits{
		SignInFailuresPerAccount: auth.Rate{N: 2, Per: time.Minute},
		SignInPerIP:              auth.Rate{N: 5, Per: time.Minute},
		SignUpPerIP:              auth.Rate{N: 2, Per: time.Minute},
	})
	now := time.Now()
	auth.SetLimiterClock(l, func() time.Time { return now })
	fail := func(email, ip string) error {
		done, err := l.SignIn(email, ip)
		if err == nil {
			done(false)
		}
		return err
	}
	require.NoError(t, fail("a@b.co", "192.0.2.1"))
	require.NoError(t, fail("A@B.CO", "192.0.2.2"))
	require.Error(t, fail("a@b.co", "192.0.2.3"), "per account, whatever the address")
	require.NoError(t, fail("c@b.co", "192.0.2.1"), "another account is not affected")

	done, err := l.SignIn("d@b.co", "192.0.2.9")
	require.NoError(t, err)
	done(true) // a success gives the account's token back
	for range 2 {
		require.NoError(t, fail("d@b.co", "192.0.2.9"))
	}
	require.Error(t, fail("d@b.co", "192.0.2.9"))

	// Per address: five attempts on five accounts, then no more.
	for i := range 4 {
		require.NoError(t, fail(string(rune('e'+i))+"@b.co", "198.51.100.7"))
	}
	require.NoError(t, fail("x@b.co", "198.51.100.7"))
	require.Error(t, fail("y@b.co", "198.51.100.7"), "per address, whatever the account")
	// An IPv6 client is one bucket per /64, whichever address it picks.
	for i := range 5 {
		require.NoError(t, fail(string(rune('e'+i))+"@v6.co", "2001:db8:1:2::"+string(rune('1'+i))))
	}
	require.Error(t, fail("z@v6.co", "2001:db8:1:2:ffff::1"))

	require.NoError(t, l.SignUp("192.0.2.1"))
	require.NoError(t, l.SignUp("192.0.2.1"))
	require.Error(t, l.SignUp("192.0.2.1"))
	require.NoError(t, l.SignUp("192.0.2.2"))

	now = now.Add(time.Minute)
	require.NoError(t, fail("a@b.co", "192.0.2.3"), "the bucket refilled")
	require.NoError(t, l.SignUp("192.0.2.1"))
}

// However many keys an attacker makes up, each limit keeps a bounded
// number of buckets.
func TestLimiterMemoryIsBounded(t *testing.T) {
	l := auth.NewLimiter(auth.Limits{})
	for i := range 150_000 {
		require.NoError(t, l.SignUp(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)))
	}
	assert.LessOrEqual(t, auth.SignUpBuckets(l), 100_000)
}

func TestParseRate(t *testing.T) {
	r, err := auth.ParseRate("20/1h")
	require.NoError(t, err)
	assert.Equal(t, auth.Rate{N: 20, Per: time.Hour}, r)
	for _, bad := range []string{"", "20", "x/1h", "20/x", "0/1h", "-1/1h", "5/-1s"} {
		_, err := auth.ParseRate(bad)
		assert.Error(t, err, bad)
	}
}

func TestAPIRejectsNonJSONBodies(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	assert.Equal(t, "Choose the name buyers will see", strings.TrimSpace(doc.Find("#displayName-error").Text()), "the form asks for a name, with the other errors")
	assert.Equal(t, "Email must be valid", strings.TrimSpace(doc.Find("#email-error").Text()))
	assert.Equal(t, "Password must be at least 4 characters", strings.TrimSpace(doc.Find("#password-error").Text()))
	assert.Equal(t, "bad", doc.Find("#email").AttrOr("value", ""))
	assert.Equal(t, "true", doc.Find("#email").AttrOr("aria-invalid", ""))
	assert.Equal(t, "", doc.Find("#password").AttrOr("value", ""))

	resp = cl.Form(t, "/auth/signup", url.Values{"displayName": {"  Page Turner "}, "email": {"page@example.com"}, "password": {"password"}, "next": {"/tickets/new"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/tickets/new", resp.Header.Get("Location"))
	_, doc = cl.Get(t, "/")
	assert.Contains(t, doc.Find("header").Text(), "Sign out")
	assert.Contains(t, doc.Find(".flash").Text(), "Welcome, Page Turner!")

	resp = cl.Form(t, "/auth/signup", url.Values{"displayName": {"Another"}, "email": {"PAGE@example.com"}, "password": {"password"}})
	require.Equal(t, 422, resp.StatusCode)
	doc = apptest.Doc(t, resp)
	assert.Equal(t, "Email in use", strings.TrimSpace(doc.Find("#email-error").Text()))
	assert.Equal(t, 1, strings.Count(doc.Find("main").Text(), "Email in use"), "said once, at the field")

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
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, apptest.Body(t, resp), "This form expired")

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

// Passwords are taken as typed: 64 and 72 characters work, spaces at
// either end are part of the password, and the 73rd byte is not ignored.
func TestPasswordsAreTakenAsTyped(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	for i, pw := range []string{strings.Repeat("x", 64), strings.Repeat("y", 72), "  spaced  "} {
		email := fmt.Sprintf("p%d@example.com", i)
		h.Client(t).SignUp(t, email, pw)
		cl := h.Client(t)
		assert.Equal(t, 200, cl.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": email, "password": pw}, nil), "len %d", len(pw))
		for _, wrong := range []string{strings.TrimSpace(pw), pw[:len(pw)-1], pw + "z"} {
			if wrong != pw {
				assert.Equal(t, 400, cl.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": email, "password": wrong}, nil), "%q is not %q", wrong, pw)
			}
		}
	}
}

// A sign-in's next stays on this site, whatever the known bypasses.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/orders/abc":              "/orders/abc",
		"/tickets?q=jazz&before=x": "/tickets?q=jazz&before=x",
		"/":                        "/",
		"":                         "/",
		"//evil.example":           "/",
		"///evil.example":          "/",
		"/\\evil.example":          "/",
		"\\\\evil.example":         "/",
		"/\t/evil.example":         "/",
		"/\n/evil.example":         "/",
		"/\r/evil.example":         "/",
		"/\x00/evil.example":       "/",
		"/%2F%2Fevil.example":      "/",
		"https://evil.example":     "/",
		"http:/evil.example":       "/",
		"javascript:alert(1)":      "/",
		"evil.example":             "/",
		" /evil":                   "/",
		"/\u2028/evil.example":     "/",
		"/\xff":                    "/",
	} {
		assert.Equal(t, want, auth.SafeNext(next), "%q", next)
	}
}

// withRealLimits runs the app with the shop's default limits (the test
// harness lifts the per-address ones).
func withRealLimits(header string) apptest.Option {
	return apptest.WithConfig(func(c *app.Config) {
		c.Limits = auth.Limits{}
		c.TrustedProxyHeader = header
	})
}

// A new X-Forwarded-For on every request does not buy new attempts: the
// sign-in limit is per account, and the address is never read from XFF.
func TestSignInLimitCannotBeSteppedAround(t *testing.T) {
	t.Parallel()
	h := apptest.New(t, withRealLimits(""))
	h.Client(t).SignUp(t, "locked@example.com", "password")
	codes := map[int]int{}
	for i := range 40 {
		cl := h.Client(t)
		cl.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		cl.Header.Set("Fly-Client-IP", fmt.Sprintf("198.51.100.%d", i))
		codes[cl.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "locked@example.com", "password": fmt.Sprintf("guess%d", i)}, nil)]++
	}
	assert.Equal(t, map[int]int{400: 10, 429: 30}, codes)

	// One address cannot try many accounts either.
	cl := h.Client(t)
	codes = map[int]int{}
	for i := range 60 {
		codes[cl.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": fmt.Sprintf("u%d@example.com", i), "password": "password"}, nil)]++
	}
	assert.Equal(t, map[int]int{400: 10, 429: 50}, codes, "the 40 attempts above, refused ones too, took 40 of the address's 50")
}

// Sign-ups are limited per client address; behind the operator's proxy the
// address is the one its header names, and XFF is still ignored.
func TestSignUpIsLimitedPerClientAddress(t *testing.T) {
	t.Parallel()
	h := apptest.New(t, withRealLimits("Fly-Client-IP"))
	signUp := func(i int, ip string) int {
		cl := h.Client(t)
		cl.Header.Set("Fly-Client-IP", ip)
		cl.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		return cl.JSON(t, http.MethodPost, "/api/users/signup", map[string]string{"email": fmt.Sprintf("new%d@example.com", i), "password": "password"}, nil)
	}
	codes := map[int]int{}
	for i := range 25 {
		codes[signUp(i, "198.51.100.1")]++
	}
	assert.Equal(t, map[int]int{201: 20, 429: 5}, codes)
	assert.Equal(t, 201, signUp(99, "198.51.100.2"), "another client is not affected")
}

// Sellers are shown by the display name they chose at sign-up, and can
// change it; nothing of the email is ever shown, and a seller who chose
// no name (the seed's API) is shown without one.
func TestDisplayNames(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	seller := h.Client(t)
	seller.Get(t, "/auth/signup")
	resp := seller.Form(t, "/auth/signup", url.Values{"displayName": {"Night Owl Tickets"}, "email": {"jazz.promoter@example.com"}, "password": {"password"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	id := seller.Sell(t, "Named show", 20)
	unnamed := h.Client(t)
	unnamed.SignUp(t, "quiet.one@example.com", "password")
	quiet := unnamed.Sell(t, "Unnamed show", 20)

	visitor := h.Client(t)
	_, doc := visitor.Get(t, "/")
	assert.Contains(t, doc.Find("#ticket-"+id).Text(), "sold by Night Owl Tickets")
	assert.NotContains(t, doc.Find("#ticket-"+quiet).Text(), "sold by")
	assert.NotContains(t, doc.Text(), "jazz.promoter")
	assert.NotContains(t, doc.Text(), "quiet.one")

	// The account page shows the name and changes it.
	_, doc = seller.Get(t, "/account")
	assert.Equal(t, "Night Owl Tickets", doc.Find("#displayName").AttrOr("value", ""))
	for _, bad := range []string{"", "   ", strings.Repeat("x", 41), "Bidi\u202eevil"} {
		resp = seller.Form(t, "/account", url.Values{"displayName": {bad}})
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "%q", bad)
		doc = apptest.Doc(t, resp)
		assert.NotEmpty(t, strings.TrimSpace(doc.Find("#displayName-error").Text()), "%q", bad)
	}
	resp = seller.Form(t, "/account", url.Values{"displayName": {"Early Bird Tickets"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/account", resp.Header.Get("Location"))
	_, doc = seller.Get(t, "/account")
	assert.Contains(t, doc.Find(".flash").Text(), "Early Bird Tickets")
	_, doc = visitor.Get(t, "/tickets/"+id)
	assert.Contains(t, doc.Find("main").Text(), "Early Bird Tickets", "the new name is what buyers see")
	assert.NotContains(t, doc.Find("main").Text(), "Night Owl")

	// A seller without a name can choose one later.
	resp = unnamed.Form(t, "/account", url.Values{"displayName": {"Quiet One"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, doc = visitor.Get(t, "/")
	assert.Contains(t, doc.Find("#ticket-"+quiet).Text(), "sold by Quiet One")

	// The account page is the signed-in user's own.
	resp = visitor.Do(t, http.MethodGet, "/account", nil)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Location"), "/auth/signin")
}
