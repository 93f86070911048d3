package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
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
				require.NoError(t, chromedp.Do(tab,
					chromedp.Navigate(h.URL+"/auth/signin?next="+url.QueryEscape(next)),
					chromedp.WaitVisible("#email"),
					chromedp.SendKeys("#email", "fan@example.com"),
					chromedp.SendKeys("#password", "password"),
					chromedp.Click("#signin-form button"),
					waitText(".flash", "Welcome back"),
				), next)
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
