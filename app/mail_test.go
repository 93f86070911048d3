package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/mail"
)

// withMailpit runs the shop's mail through a real SMTP server.
func withMailpit(t *testing.T) (*apptest.Mailpit, apptest.Option) {
	mp := apptest.NewMailpit(t)
	smtp, err := mail.ParseSMTPURL(mp.SMTPURL)
	require.NoError(t, err)
	return mp, apptest.WithConfig(func(c *app.Config) { c.SMTP, c.MailFrom = smtp, "Ticketing <tickets@example.com>" })
}

// sale lists a ticket for a show as the shop's seller and has its buyer
// reserve and pay for it; it returns the order's id.
func sale(t *testing.T, s *apptest.Shop, show string) string {
	t.Helper()
	var tk struct{ ID string }
	require.Equal(t, http.StatusCreated, s.Seller.JSON(t, http.MethodPost, "/api/tickets",
		map[string]any{"showId": show, "section": "Floor", "row": "3", "seat": "14", "faceValue": 40, "price": 48}, &tk))
	order := s.Buyer.Order(t, tk.ID)
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	return order
}

// A sale mails the buyer a receipt (show, seat, price, order number and
// link) and the seller the news, through SMTP, each with its stable
// Message-ID. With SMTP down, the next sale's messages wait (on the
// health check) and arrive once it is back, once each.
func TestMailArrivesThroughSMTP(t *testing.T) {
	t.Parallel()
	mp, smtp := withMailpit(t)
	s := apptest.NewShop(t, smtp)
	require.Equal(t, http.StatusSeeOther, s.Seller.Form(t, "/account", map[string][]string{"displayName": {"Night Owl"}}).StatusCode)
	show := addShowAt(t, s.Seller, "Ezra Collective", time.Date(2027, 5, 20, 19, 0, 0, 0, time.UTC))
	order := sale(t, s, show)

	byTo := map[string]apptest.MailpitMessage{}
	for _, m := range mp.WaitFor(t, 2) {
		require.Len(t, m.To, 1)
		byTo[m.To[0].Address] = m
		assert.Equal(t, "tickets@example.com", m.From.Address)
		assert.Regexp(t, `^[0-9a-f]{24}@127\.0\.0\.1$`, m.MessageID, "a stable Message-ID of our own")
	}
	receipt := byTo["buyer@example.com"]
	assert.Equal(t, "Your ticket: Ezra Collective (order "+order+")", receipt.Subject)
	for _, want := range []string{"Ezra Collective, Thu 20 May 2027, 21:00 CEST, Paradiso, Amsterdam", "Section Floor · Row 3 · Seat 14", "Price: $48.00", "Order: " + order, s.URL + "/orders/" + order} {
		assert.Contains(t, receipt.Text, want)
	}
	assert.Contains(t, receipt.HTML, `href="`+s.URL+`/orders/`+order+`"`)
	sold := byTo["seller@example.com"]
	assert.Equal(t, "Sold: Ezra Collective for $48.00", sold.Subject)
	assert.Contains(t, sold.Text, "Hello Night Owl,")
	assert.Contains(t, sold.Text, s.URL+"/sell")

	// SMTP down: the sale goes through; its mail waits, and shows.
	mp.Stop()
	second := sale(t, s, show)
	assert.Equal(t, "complete", s.Status(t, second), "mail never fails a purchase")
	assert.Eventually(t, func() bool {
		var h app.Health
		resp, err := http.Get(s.Internal + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Mail.Pending == 2
	}, 10*time.Second, 50*time.Millisecond, "two messages pending on /healthz")
	time.Sleep(1500 * time.Millisecond) // a retry or two fail meanwhile
	mp.Start(t)
	msgs := mp.WaitFor(t, 4)
	time.Sleep(time.Second)
	assert.Len(t, mp.Messages(t), 4, "each once")
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.MessageID] = true
	}
	assert.Len(t, ids, 4, "four messages, four Message-IDs")
	var seen bool
	for _, m := range msgs {
		seen = seen || strings.Contains(m.Subject, second)
	}
	assert.True(t, seen, "the second sale's receipt arrived")
}

// Without SMTP, messages are kept: each is readable by its recipient at
// /mailbox, and by no one else.
func TestMailboxWithoutSMTP(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	show := addShowAt(t, s.Seller, "Kept show", time.Now().Add(48*time.Hour))
	order := sale(t, s, show)
	s.Settle(t)
	_, doc := s.Buyer.Get(t, "/mailbox")
	assert.Contains(t, doc.Find("main").Text(), "Your ticket: Kept show (order "+order+")")
	assert.NotContains(t, doc.Find("main").Text(), "Sold:", "the seller's message is the seller's")
	_, doc = s.Seller.Get(t, "/mailbox")
	assert.Contains(t, doc.Find("main").Text(), "Sold: Kept show for $48.00")
	resp := s.Client(t).Do(t, http.MethodGet, "/mailbox", nil)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "signed out: sign in first")
	n, _, err := s.App.Mail.Pending(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "kept, not pending: nothing waits for an SMTP that is not there")
}
