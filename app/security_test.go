package app_test

import (
	"net/http"
	"net/url"
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
