package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
	"ticketing/app/web"
	"ticketing/db"
)

// A sign-in's next that a browser would follow to another site (a tab in
// the path, which browsers drop) lands on this site instead.
func TestBrowserSignInRedirectStaysOnSite(t *testing.T) {
	for _, js := range []bool{true, false} {
		t.Run(map[bool]string{true: "js", false: "nojs"}[js], func(t *testing.T) {
			h := apptest.New(t)
			h.Client(t).SignUp(t, "fan@example.com", "password")
			tab := person(t, js)
			// With a control character the sign-in page itself is refused
			// (every query parameter is checked), so there is nothing to
			// follow.
			require.NoError(t, chromedp.Do(tab,
				chromedp.Navigate(h.URL+"/auth/signin?next="+url.QueryEscape("/\t/evil.example")),
				waitText("main", "must not contain control characters"),
			))
			for _, next := range []string{"/\\evil.example", "//evil.example", "/\\/evil.example", "https://evil.example/", "javascript:alert(1)"} {
				require.NoError(t, chromedp.Do(tab, signInInBrowser(h.URL, "/auth/signin?next="+url.QueryEscape(next), "fan@example.com")...), next)
				u, err := url.Parse(location(tab, t))
				require.NoError(t, err)
				assert.Equal(t, h.URL, u.Scheme+"://"+u.Host, "next=%q stays on the site", next)
				assert.Equal(t, "/", u.Path, next)
				require.NoError(t, chromedp.Do(tab, chromedp.Click(`form[action="/auth/signout"] button`), chromedp.WaitVisible(`a[href="/auth/signin"]`)))
			}
		})
	}
}

// Content cannot write fields into the list's event stream: a title
// with bare CRs (a row from before titles were checked) reaches a real
// browser's EventSource as data, its id stays the log's, and the stream
// goes on delivering listings.
func TestBrowserStreamCannotBeForgedByContent(t *testing.T) {
	s := apptest.NewShop(t)
	ticketID := s.Seller.Sell(t, "Plain", 10)
	const forged = "x\rid: 999999999\rretry: 99999999\r\rx"
	require.NoError(t, s.App.DB("tickets").Tx(context.Background(), func(tx *db.Tx) error {
		_, err := tx.ExecContext(context.Background(), "UPDATE tickets SET title = ? WHERE id = ?", forged, ticketID)
		return err
	}))

	tab := person(t, true)
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible("#ticket-rows")))
	_, err := chromedp.Run(tab, chromedp.EvaluateAsDevTools[bool](`(() => {
		window.got = [];
		const es = new EventSource("/tickets/stream");
		es.addEventListener("tickets", e => window.got.push({id: e.lastEventId, data: e.data}));
		return true;
	})()`))
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // connected

	// Reserving and releasing the ticket renders its title into the stream.
	orderID := s.Buyer.Order(t, ticketID)
	require.Equal(t, http.StatusNoContent, s.Buyer.JSON(t, http.MethodDelete, "/api/orders/"+orderID, nil, nil))
	s.Seller.Sell(t, "After the forgery", 12)

	type msg struct{ ID, Data string }
	var got []msg
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		got, err = chromedp.Run(tab, chromedp.EvaluateAsDevTools[[]msg](`window.got.map(m => ({ID: m.id, Data: m.data}))`))
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
	}
	require.Len(t, got, 3, "reserved, released, listed: %v", got)
	head, err := s.App.Bus.Log(s.App.DB("tickets")).Head(context.Background())
	require.NoError(t, err)
	for _, m := range got {
		seq, err := strconv.ParseInt(m.ID, 10, 64)
		require.NoError(t, err, "id %q", m.ID)
		assert.LessOrEqual(t, seq, head, "every id is a position in the log")
	}
	assert.Contains(t, got[1].Data, "id: 999999999", "the CRs stayed inside the data")
	assert.Contains(t, got[2].Data, "After the forgery")
}

// The pages pass their own Content-Security-Policy with JavaScript on: a
// whole sale (htmx, its SSE extension, the countdown, the test checkout)
// runs with no violation reported.
func TestBrowserPagesPassTheContentSecurityPolicy(t *testing.T) {
	h := apptest.New(t)
	tab := person(t, true)
	require.NoError(t, chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		return tg.Call(ctx, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": `
			window.__csp = [];
			document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`}, nil)
	})))
	violations := func(where string) {
		t.Helper()
		got, err := chromedp.Run(tab, chromedp.EvaluateAsDevTools[[]string](`window.__csp || ["no listener"]`))
		require.NoError(t, err)
		assert.Empty(t, got, where)
	}
	require.NoError(t, chromedp.Do(tab, signUpInBrowser(h.URL, "seller@example.com")...))
	violations("sign up")
	require.NoError(t, chromedp.Do(tab, sellInBrowser(h.URL, "Strict policy", "20")...))
	violations("sell")
	htmx, err := chromedp.Run(tab, chromedp.EvaluateAsDevTools[bool](`typeof window.htmx !== "undefined" && typeof htmx.config === "object" && !htmx.config.includeIndicatorStyles`))
	require.NoError(t, err)
	require.True(t, htmx, "htmx runs, configured for the policy")

	buyer := h.Client(t)
	buyer.SignUp(t, "buyer@example.com", "password")
	require.NoError(t, chromedp.Do(tab,
		chromedp.Click(`form[action="/auth/signout"] button`),
		chromedp.WaitVisible(`a[href="/auth/signin"]`),
	))
	require.NoError(t, chromedp.Do(tab, signInInBrowser(h.URL, "/auth/signin", "buyer@example.com")...))
	require.NoError(t, chromedp.Do(tab,
		waitText("#ticket-rows", "Strict policy"),
		chromedp.Click(`#ticket-rows .row-main a`),
		waitText("h1", "Strict policy"), // the ticket's page, not the list it came from
		chromedp.Click(`form[action="/orders"] button`),
		waitText("#order-status", "reserved for you"),
		waitText("#order-status", "left"), // the countdown, from /static/app.js
	))
	violations("order page")
	require.NoError(t, chromedp.Do(tab,
		chromedp.Click(`form[action$="/pay"] button`),
		waitText(".test-mode", "TEST MODE"),
		chromedp.Click(`.test-checkout form[action$="/pay"] button`),
		waitText("#order-status", "Paid"),
	))
	violations("paid")
}

// Every answer carries the policy; HSTS only over https; anything that
// shows a signed-in user's data is not stored by any cache.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	visitor := s.Client(t)
	get := func(c *apptest.Client, path string) http.Header {
		resp := c.Do(t, http.MethodGet, path, nil)
		resp.Body.Close()
		return resp.Header
	}
	for _, path := range []string{"/", "/auth/signin", "/api/tickets", "/nope"} {
		hdr := get(visitor, path)
		assert.Contains(t, hdr.Get("Content-Security-Policy"), "script-src 'self';", path)
		assert.Contains(t, hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'", path)
		assert.Equal(t, "nosniff", hdr.Get("X-Content-Type-Options"), path)
		assert.Empty(t, hdr.Get("Strict-Transport-Security"), "http BASE_URL: no HSTS")
		assert.NotEqual(t, "no-store", hdr.Get("Cache-Control"), "a visitor's %s may be cached", path)
	}
	orderID := s.Buyer.Order(t, s.Seller.Sell(t, "Private", 10))
	for _, path := range []string{"/", "/orders", "/orders/" + orderID, "/sell", "/api/orders", "/api/orders/" + orderID, "/api/users/currentuser"} {
		assert.Equal(t, "no-store", get(s.Buyer, path).Get("Cache-Control"), path)
	}
	assert.NotEqual(t, "no-store", get(s.Buyer, "/static/app.css").Get("Cache-Control"), "static files keep their caching")
	resp := s.Buyer.Form(t, "/auth/signout", nil)
	resp.Body.Close()
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "the sign-out answer")

	secure := web.SecurityHeaders("https://shop.example")
	rec := httptest.NewRecorder()
	e := echo.New()
	require.NoError(t, secure(func(c echo.Context) error { return c.NoContent(200) })(e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)))
	assert.Equal(t, "max-age=63072000; includeSubDomains", rec.Header().Get("Strict-Transport-Security"))
	assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "form-action 'self' https://checkout.stripe.com https://shop.example")
}
