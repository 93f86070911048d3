package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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

	// The ticket was sold without its file: the seller is asked for it.
	bySubject := map[string]apptest.MailpitMessage{}
	byTo := map[string]apptest.MailpitMessage{}
	for _, m := range mp.WaitFor(t, 3) {
		require.Len(t, m.To, 1)
		bySubject[m.Subject] = m
		if !strings.HasPrefix(m.Subject, "Upload") {
			byTo[m.To[0].Address] = m
		}
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
	owed := bySubject["Upload the ticket for your sale: Ezra Collective"]
	assert.Equal(t, "seller@example.com", owed.To[0].Address)
	assert.Contains(t, owed.Text, s.URL+"/tickets/")
	assert.Contains(t, receipt.Text, "The seller has been asked to send the ticket")

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
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Mail.Pending == 3
	}, 10*time.Second, 50*time.Millisecond, "three messages pending on /healthz")
	time.Sleep(1500 * time.Millisecond) // a retry or two fail meanwhile
	mp.Start(t)
	msgs := mp.WaitFor(t, 6)
	time.Sleep(time.Second)
	assert.Len(t, mp.Messages(t), 6, "each once")
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.MessageID] = true
	}
	assert.Len(t, ids, 6, "six messages, six Message-IDs")
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

var resetLink = regexp.MustCompile(`http://\S+/auth/reset\?token=([A-Za-z0-9_-]+)`)

// Forgot password: the same answer whether or not the account exists, a
// one-time link by mail (its token in no file), and using it sets the new
// password, signs this browser in and every other session of the account
// out. Requests are limited per address.
func TestPasswordResetByMail(t *testing.T) {
	t.Parallel()
	mp, smtp := withMailpit(t)
	s := apptest.NewShop(t, smtp)
	elsewhere := s.Buyer.Copy(t) // the same account, signed in on another device

	visitor := s.Client(t)
	visitor.Get(t, "/auth/forgot")
	answer := func(email string) string {
		resp := visitor.Form(t, "/auth/forgot", url.Values{"email": {email}})
		require.Equal(t, http.StatusOK, resp.StatusCode, email)
		return strings.ReplaceAll(apptest.Doc(t, resp).Find("main").Text(), email, "EMAIL")
	}
	assert.Equal(t, answer("nobody@example.com"), answer("buyer@example.com"), "no hint of which accounts exist")
	msgs := mp.WaitFor(t, 1)
	require.Equal(t, "buyer@example.com", msgs[0].To[0].Address)
	assert.Equal(t, "Reset your Ticketing password", msgs[0].Subject)
	m := resetLink.FindStringSubmatch(msgs[0].Text)
	require.NotNil(t, m, msgs[0].Text)
	link, token := m[0], m[1]
	assert.True(t, strings.HasPrefix(link, s.URL+"/auth/reset?token="))
	for _, name := range []string{"auth", "mail"} {
		var n int
		require.NoError(t, s.App.DB(name).Read().QueryRow("SELECT count(*) FROM events WHERE data LIKE ?", "%"+token+"%").Scan(&n))
		assert.Zero(t, n, "%s.db's log does not hold the token", name)
	}
	var n int
	require.NoError(t, s.App.DB("auth").Read().QueryRow("SELECT count(*) FROM password_resets WHERE token_hash = ?", token).Scan(&n))
	assert.Zero(t, n, "only a hash of it is kept")

	_, doc := visitor.Get(t, strings.TrimPrefix(link, s.URL))
	assert.Equal(t, token, doc.Find(`#reset-form input[name="token"]`).AttrOr("value", ""))
	resp := visitor.Form(t, "/auth/reset", url.Values{"token": {token}, "password": {"x"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "too short")
	resp = visitor.Form(t, "/auth/reset", url.Values{"token": {token}, "password": {"a new password"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var cur struct{ CurrentUser *struct{ Email string } }
	require.Equal(t, http.StatusOK, visitor.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
	require.NotNil(t, cur.CurrentUser, "signed in with the new password")
	assert.Equal(t, "buyer@example.com", cur.CurrentUser.Email)
	for _, old := range []*apptest.Client{elsewhere, s.Buyer} {
		cur.CurrentUser = nil
		require.Equal(t, http.StatusOK, old.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
		assert.Nil(t, cur.CurrentUser, "every earlier session is signed out")
	}
	fresh := s.Client(t)
	assert.Equal(t, http.StatusBadRequest, fresh.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "buyer@example.com", "password": "password"}, nil))
	assert.Equal(t, http.StatusOK, fresh.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "buyer@example.com", "password": "a new password"}, nil))

	resp = visitor.Form(t, "/auth/reset", url.Values{"token": {token}, "password": {"another one"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "a link works once")
	assert.Contains(t, apptest.Doc(t, resp).Find(".form-message").Text(), "expired or was used already")

	// Per address: three an hour (one sent above), then a refusal.
	for range 2 {
		require.Equal(t, http.StatusOK, visitor.Form(t, "/auth/forgot", url.Values{"email": {"buyer@example.com"}}).StatusCode)
	}
	resp = visitor.Form(t, "/auth/forgot", url.Values{"email": {"buyer@example.com"}})
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Contains(t, apptest.Doc(t, resp).Find(".form-message").Text(), "Too many")
}

// In the browser: a user who forgot their password follows the link from
// Mailpit, sets a new one and is signed in, while another browser still
// signed in with the old password is signed out.
func TestBrowserPasswordReset(t *testing.T) {
	t.Parallel()
	mp, smtp := withMailpit(t)
	h := apptest.New(t, smtp)
	old := person(t, true)
	require.NoError(t, chromedp.Do(old, signUpInBrowser(h.URL, "fan@example.com")...))

	forgot := person(t, false)
	require.NoError(t, chromedp.Do(forgot,
		chromedp.Navigate(h.URL+"/auth/signin"),
		chromedp.Click(`a[href="/auth/forgot"]`),
		chromedp.SendKeys("#email", "fan@example.com"),
		chromedp.Click("#forgot-form button"),
		waitText("main", "Check your email"),
	))
	link := resetLink.FindString(mp.WaitFor(t, 1)[0].Text)
	require.NotEmpty(t, link)
	require.NoError(t, chromedp.Do(forgot,
		chromedp.Navigate(link),
		chromedp.SendKeys("#password", "brand new secret"),
		chromedp.Click("#reset-form button"),
		waitText(".flash", "Your password was changed"),
		waitText("header", "Sign out"),
	))
	require.NoError(t, chromedp.Do(old,
		chromedp.Navigate(h.URL+"/orders"),
		waitText("main h1", "Sign in"),
	))
}

// An unpaid reservation is reminded 5 minutes before it runs out, once,
// through SMTP; a paid one is not.
func TestReminderBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	mp, smtp := withMailpit(t)
	s := apptest.NewShop(t, smtp, apptest.WithConfig(func(c *app.Config) { c.ReservationTTL = remindIn(1500 * time.Millisecond) }))
	unpaid := s.SellAndReserve(t, 30)
	sale(t, s, addShowAt(t, s.Seller, "Paid in time", time.Now().Add(48*time.Hour)))
	reminders := func() []apptest.MailpitMessage {
		var out []apptest.MailpitMessage
		for _, m := range mp.Messages(t) {
			if strings.HasPrefix(m.Subject, "5 minutes left") {
				out = append(out, m)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(reminders()) > 0 }, 10*time.Second, 100*time.Millisecond, "the unpaid order's reminder")
	time.Sleep(time.Second) // more rounds of the reminder
	got := reminders()
	require.Len(t, got, 1, "once, and none for the paid order")
	assert.Equal(t, "5 minutes left to pay for Concert", got[0].Subject)
	assert.Equal(t, "buyer@example.com", got[0].To[0].Address)
	assert.Contains(t, got[0].Text, s.URL+"/orders/"+unpaid)
}

// remindIn is a reservation window whose reminder falls due after d.
func remindIn(d time.Duration) time.Duration { return 5*time.Minute + d }

// A payment that arrives after its reservation was cancelled is refunded,
// and the buyer is mailed so.
func TestRefundMail(t *testing.T) {
	t.Parallel()
	mp, smtp := withMailpit(t)
	s := apptest.NewShop(t, smtp)
	order := s.SellAndReserve(t, 30)
	s.PayTooLate(t, order)
	msgs := mp.WaitFor(t, 1)
	assert.Equal(t, "buyer@example.com", msgs[0].To[0].Address)
	assert.Equal(t, "Refunded: Concert (order "+order+")", msgs[0].Subject)
	assert.Contains(t, msgs[0].Text, "refunded in full ($30.00)")
	assert.Contains(t, msgs[0].Text, s.URL+"/orders/"+order)
}
