package app_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
	"ticketing/app/tickets"
)

// Signing out ends the session on the server: a copy of the cookie taken
// before is refused everywhere afterwards (API, pages, streams), and a
// stream it had open ends.
func TestSignOutEndsTheSessionEverywhere(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"api", "form"} {
		t.Run(how, func(t *testing.T) {
			s := apptest.NewShop(t)
			stolen := s.Buyer.Copy(t)
			var cur struct{ CurrentUser *struct{ ID string } }
			require.Equal(t, 200, stolen.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
			require.NotNil(t, cur.CurrentUser, "the copy works while the session lives")
			stream := stolen.Stream(t, "/sell/stream", "")

			if how == "api" {
				require.Equal(t, 200, s.Buyer.JSON(t, http.MethodPost, "/api/users/signout", nil, nil))
			} else {
				resp := s.Buyer.Form(t, "/auth/signout", url.Values{})
				resp.Body.Close()
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			}

			require.Equal(t, 200, stolen.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
			assert.Nil(t, cur.CurrentUser)
			assert.Equal(t, 401, stolen.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"title": "Mine now", "price": 10}, nil))
			assert.Equal(t, 401, stolen.JSON(t, http.MethodGet, "/api/orders", nil, nil))
			resp := stolen.Do(t, http.MethodGet, "/orders", nil)
			resp.Body.Close()
			assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "the page sends it to sign in")
			resp = stolen.Do(t, http.MethodGet, "/sell/stream", nil)
			resp.Body.Close()
			assert.NotEqual(t, http.StatusOK, resp.StatusCode, "no new stream")

			// The open stream ends at its next wake-up (here: a listing).
			s.Seller.Sell(t, "Wake", 10)
			deadline := time.After(5 * time.Second)
			for open := true; open; {
				select {
				case _, open = <-stream:
				case <-deadline:
					t.Fatal("the stream of an ended session is still open")
				}
			}

			// Signing in again is a new session; the old cookie stays dead.
			require.Equal(t, 200, s.Buyer.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "buyer@example.com", "password": "password"}, nil))
			require.Equal(t, 200, s.Buyer.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
			assert.NotNil(t, cur.CurrentUser)
			require.Equal(t, 200, stolen.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
			assert.Nil(t, cur.CurrentUser)
		})
	}
}

// Text fields refuse NUL, control characters and invalid UTF-8 with a
// field error, and every query parameter is bounded: never a 500, and
// nothing stored.
func TestHostileTextIsRefusedByField(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	for name, title := range map[string]string{
		"NUL":           "Jazz\x00night",
		"CR injection":  "x\rid: 999999999\r\rx",
		"newline":       "two\nlines",
		"escape":        "\x1b[31mred",
		"bidi override": "evil\u202egnp.exe",
		"invalid UTF-8": "caf\xe9",
	} {
		var body struct {
			Errors []struct{ Message, Field string }
		}
		if name == "invalid UTF-8" {
			// json.Marshal would send U+FFFD; send the raw bytes instead.
			status := s.Seller.JSON(t, http.MethodPost, "/api/tickets", `{"title":"caf`+"\xe9"+`","price":10}`, &body)
			assert.Equal(t, 400, status, name)
		} else {
			status := s.Seller.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"title": title, "price": 10}, &body)
			assert.Equal(t, 400, status, name)
			require.NotEmpty(t, body.Errors, name)
			assert.Equal(t, "title", body.Errors[0].Field, name)
		}
		resp := s.Seller.Form(t, "/tickets", url.Values{"title": {title}, "price": {"10"}})
		doc := apptest.Doc(t, resp)
		assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, name)
		assert.NotEmpty(t, doc.Find("#title-error").Text(), name)
	}
	var list []any
	require.Equal(t, 200, s.Buyer.JSON(t, http.MethodGet, "/api/tickets", nil, &list))
	assert.Empty(t, list, "nothing was stored")

	for name, query := range map[string]string{
		"q of 60,000 bytes": "q=" + strings.Repeat("%25", 20_000),
		"q of 1,001 chars":  "q=" + strings.Repeat("a", 1001),
		"q with NUL":        "q=a%00b",
		"q not UTF-8":       "q=caf%E9",
		"q with a control":  "q=a%1Bb",
		"too many":          strings.Repeat("a=1&", 30),
		"junk parameter":    "x%00y=1",
		"before not UTF-8":  "before=%FF",
	} {
		for _, path := range []string{"/api/tickets?", "/?", "/tickets/new?", "/auth/signin?"} {
			resp := s.Seller.Do(t, http.MethodGet, path+query, nil)
			resp.Body.Close()
			assert.Contains(t, []int{400, 422}, resp.StatusCode, "%s %s", name, path)
		}
	}
	var body struct {
		Errors []struct{ Message, Field string }
	}
	require.Equal(t, 400, s.Buyer.JSON(t, http.MethodGet, "/api/tickets?q=a%00b", nil, &body))
	assert.Equal(t, "q", body.Errors[0].Field)
	require.Equal(t, 400, s.Buyer.JSON(t, http.MethodGet, "/api/tickets?q="+strings.Repeat("a", 101), nil, &body))
	assert.Equal(t, []struct{ Message, Field string }{{"Search must be at most 100 characters", "q"}}, body.Errors)
	resp := s.Buyer.Do(t, http.MethodGet, "/?q="+strings.Repeat("a", 101), nil)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
}

// A form whose CSRF token no longer matches (the cookie expired while the
// tab was open) does nothing: it comes back with what was typed, a fresh
// token and "This form expired", with 403, and sending it again works. A
// button form leads back to its page; a cross-site form is refused.
func TestExpiredFormIsShownAgain(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	ctx := t.Context()

	// The listing form, JS off and through htmx.
	for _, hx := range []bool{false, true} {
		seller := s.Seller.Copy(t)
		if hx {
			seller.Header.Set("HX-Request", "true")
			seller.Header.Set("HX-Boosted", "true")
		}
		seller.Get(t, "/tickets/new")
		stale := seller.ExpireCSRF(t)
		title := fmt.Sprintf("Left open overnight (htmx %v)", hx)
		resp := seller.FormWithToken(t, "/tickets", url.Values{"title": {title}, "price": {"42.50"}}, stale)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "hx=%v", hx)
		doc := apptest.Doc(t, resp)
		form := doc.Find("form#ticket-form")
		assert.Equal(t, "/tickets", form.AttrOr("action", ""))
		assert.Equal(t, title, form.Find("#title").AttrOr("value", ""), "what was typed is kept")
		assert.Equal(t, "42.50", form.Find("#price").AttrOr("value", ""))
		assert.Contains(t, form.Find(".form-message").Text(), "This form expired, please send it again")
		fresh := form.Find(`input[name="_csrf"]`).AttrOr("value", "")
		assert.NotEmpty(t, fresh)
		assert.NotEqual(t, stale, fresh)
		p, err := s.App.Tickets.ListOnSale(ctx, tickets.ListQuery{Query: title})
		require.NoError(t, err)
		assert.Empty(t, p.Tickets, "hx=%v: nothing was listed", hx)

		resp = seller.FormWithToken(t, "/tickets", url.Values{"title": {title}, "price": {"42.50"}}, fresh)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "sent again with the fresh token")
	}

	// The edit form keeps the edit (not a listing form).
	id := s.Seller.Sell(t, "Edited overnight", 30)
	seller := s.Seller.Copy(t)
	seller.Get(t, "/tickets/"+id+"/edit")
	resp := seller.FormWithToken(t, "/tickets/"+id+"/edit", url.Values{"title": {"New title"}, "price": {"31"}}, seller.ExpireCSRF(t))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	doc := apptest.Doc(t, resp)
	assert.Equal(t, "/tickets/"+id+"/edit", doc.Find("form#ticket-form").AttrOr("action", ""))
	assert.Equal(t, "New title", doc.Find("#title").AttrOr("value", ""))
	tk, err := s.App.Tickets.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "Edited overnight", tk.Title, "nothing was saved")

	// Sign-in keeps the email, never the password.
	visitor := s.Harness.Client(t)
	visitor.Get(t, "/auth/signin")
	resp = visitor.FormWithToken(t, "/auth/signin", url.Values{"email": {"seller@example.com"}, "password": {"password"}, "next": {"/sell"}}, visitor.ExpireCSRF(t))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	doc = apptest.Doc(t, resp)
	assert.Equal(t, "seller@example.com", doc.Find("#email").AttrOr("value", ""))
	assert.Empty(t, doc.Find("#password").AttrOr("value", ""))
	assert.Equal(t, "/sell", doc.Find(`input[name="next"]`).AttrOr("value", ""))
	assert.Contains(t, doc.Find(".form-message").Text(), "This form expired")
	var cu map[string]any
	require.Equal(t, http.StatusOK, visitor.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cu))
	assert.Nil(t, cu["currentUser"], "not signed in")

	// A button form: a page that says so and leads back.
	onSale := s.Seller.Sell(t, "Bought overnight", 20)
	buyer := s.Buyer.Copy(t)
	buyer.Get(t, "/tickets/"+onSale)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/orders", strings.NewReader(url.Values{"ticketId": {onSale}, "_csrf": {buyer.ExpireCSRF(t)}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", s.URL+"/tickets/"+onSale)
	resp = buyer.Request(t, req)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	doc = apptest.Doc(t, resp)
	assert.Contains(t, doc.Find("main").Text(), "This form expired")
	assert.Equal(t, 1, doc.Find(`main a[href="/tickets/`+onSale+`"]`).Length(), "a link back to the page of the form")
	tk, err = s.App.Tickets.Get(ctx, onSale)
	require.NoError(t, err)
	assert.False(t, tk.Reserved(), "nothing was reserved")

	// From another site: refused, and nothing to send again.
	req, err = http.NewRequest(http.MethodPost, s.URL+"/orders", strings.NewReader(url.Values{"ticketId": {onSale}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp = buyer.Request(t, req)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	doc = apptest.Doc(t, resp)
	assert.Contains(t, doc.Find("main").Text(), "another site")
	assert.Zero(t, doc.Find("main form").Length())
}
