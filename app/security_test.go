package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
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
