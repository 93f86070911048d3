package payments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/apptest/stripemock"
	"ticketing/app/payments"
	"ticketing/app/web"
	"ticketing/db"
)

const whsec = "whsec_test_for_tests"

// stripeMode runs the app with Stripe keys against stripe-mock.
func stripeMode(t *testing.T, apiBase string) apptest.Option {
	return apptest.WithConfig(func(c *app.Config) {
		c.StripeSecretKey = "sk_test_123"
		c.StripeWebhookSecret = whsec
		c.StripeAPIBase = apiBase
	})
}

// completedEvent is a checkout.session.completed delivery as Stripe sends it.
func completedEvent(eventID, sessionID, orderID, paymentIntent string, amount int64) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": eventID, "object": "event", "api_version": stripe.APIVersion, "type": "checkout.session.completed",
		"created": time.Now().Unix(),
		"data": map[string]any{"object": map[string]any{
			"id": sessionID, "object": "checkout.session", "client_reference_id": orderID,
			"metadata": map[string]string{"order_id": orderID}, "payment_status": "paid", "status": "complete",
			"payment_intent": paymentIntent, "amount_total": amount, "currency": "usd",
		}},
	})
	return b
}

func deliver(t *testing.T, h *apptest.Harness, payload []byte, secret string) int {
	t.Helper()
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret})
	req, err := http.NewRequest(http.MethodPost, h.URL+"/webhooks/stripe", strings.NewReader(string(signed.Payload)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signed.Header)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func count(t *testing.T, d *db.DB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, d.Read().QueryRow(query, args...).Scan(&n))
	return n
}

func TestCheckoutAndWebhookWithStripe(t *testing.T) {
	s := apptest.NewShop(t, stripeMode(t, stripemock.Start(t)))
	orderID := s.SellAndReserve(t, 10.5)

	// Pay: a Checkout Session, and the browser sent to Stripe.
	resp := s.Buyer.Form(t, "/orders/"+orderID+"/pay", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Location"), "https://"), resp.Header.Get("Location"))
	// With htmx, HX-Redirect rather than a cross-origin 303; the open
	// session is reused.
	s.Buyer.Header.Set("HX-Request", "true")
	resp = s.Buyer.Form(t, "/orders/"+orderID+"/pay", nil)
	s.Buyer.Header.Del("HX-Request")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("HX-Redirect"))
	pdb := s.App.DB("payments")
	assert.Equal(t, 1, count(t, pdb, "SELECT count(*) FROM checkout_sessions WHERE order_id = ?", orderID))
	var sessionID string
	require.NoError(t, pdb.Read().QueryRow("SELECT id FROM checkout_sessions WHERE order_id = ?", orderID).Scan(&sessionID))

	// A bad signature is refused and records nothing.
	ev := completedEvent("evt_1", sessionID, orderID, "pi_1", 1050)
	assert.Equal(t, 400, deliver(t, s.Harness, ev, "whsec_wrong"))
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/webhooks/stripe", strings.NewReader(string(ev)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode, "no signature at all")
	assert.Zero(t, count(t, pdb, "SELECT count(*) FROM stripe_events"))
	assert.Equal(t, "created", s.Status(t, orderID))

	// Events we do not use: 200.
	other, _ := json.Marshal(map[string]any{"id": "evt_other", "object": "event", "type": "customer.created", "api_version": stripe.APIVersion, "data": map[string]any{"object": map[string]any{"id": "cus_1"}}})
	assert.Equal(t, 200, deliver(t, s.Harness, other, whsec))

	// The same event ten times at once, and a second event about the same
	// payment after it: one payment, the order complete.
	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range codes {
		wg.Go(func() { codes[i] = deliver(t, s.Harness, ev, whsec) })
	}
	wg.Wait()
	for _, c := range codes {
		assert.Equal(t, 200, c)
	}
	assert.Equal(t, 200, deliver(t, s.Harness, completedEvent("evt_0_older", sessionID, orderID, "pi_1", 1050), whsec))
	assert.Equal(t, "complete", s.Status(t, orderID), "answered after the order completed")
	assert.Equal(t, 1, count(t, pdb, "SELECT count(*) FROM payments WHERE order_id = ?", orderID))
	s.Settle(t)

	_, doc := s.Buyer.Get(t, "/orders/"+orderID)
	assert.Contains(t, doc.Find("#order-status").Text(), "Paid")
}

// A newer API version on the event is logged, not a lost payment.
func TestWebhookOfAnotherAPIVersionStillApplies(t *testing.T) {
	s := apptest.NewShop(t, stripeMode(t, stripemock.Start(t)))
	orderID := s.SellAndReserve(t, 20)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(completedEvent("evt_v", "cs_v", orderID, "pi_v", 2000), &ev))
	ev["api_version"] = "2025-09-30.clover"
	payload, _ := json.Marshal(ev)
	assert.Equal(t, 200, deliver(t, s.Harness, payload, whsec))
	assert.Equal(t, "complete", s.Status(t, orderID))
}

// A payment that arrives after the order expired is refunded; the order
// stays cancelled and its page says so. Cancelling also expires the open
// Checkout Session through the API.
func TestLatePaymentIsRefunded(t *testing.T) {
	s := apptest.NewShop(t, stripeMode(t, stripemock.Start(t)), apptest.WithConfig(func(c *app.Config) {
		c.ReservationTTL = 300 * time.Millisecond
		c.SweepInterval = 20 * time.Millisecond
	}))
	orderID := s.SellAndReserve(t, 30)
	require.Equal(t, http.StatusSeeOther, s.Buyer.Form(t, "/orders/"+orderID+"/pay", nil).StatusCode)
	require.Eventually(t, func() bool { return s.Status(t, orderID) == "cancelled" }, 10*time.Second, 10*time.Millisecond)
	s.Settle(t)
	pdb := s.App.DB("payments")
	assert.Equal(t, 1, count(t, pdb, "SELECT count(*) FROM checkout_sessions WHERE order_id = ? AND status = 'expired'", orderID), "the open session was expired")

	assert.Equal(t, 200, deliver(t, s.Harness, completedEvent("evt_late", "cs_late", orderID, "pi_late", 3000), whsec))
	assert.Equal(t, "cancelled", s.Status(t, orderID))
	ps, err := s.App.Payments.ForOrder(context.Background(), orderID)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	assert.Equal(t, "refunded", ps[0].Status)
	assert.True(t, strings.HasPrefix(ps[0].RefundID, "re_"), ps[0].RefundID)
	s.Settle(t)

	_, doc := s.Buyer.Get(t, "/orders/"+orderID)
	assert.Contains(t, doc.Find("#order-status").Text(), "your payment was refunded")
}

// A refund the API refuses answers 500, so Stripe retries; the retry tries
// the refund again; nothing is lost, and the worker finishes it once the
// API is back.
func TestRefundFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	down := apptest.NewShop(t, apptest.WithDataDir(dir), stripeMode(t, "http://127.0.0.1:1"))
	orderID := down.SellAndReserve(t, 15)
	require.Equal(t, 204, down.Buyer.Do(t, http.MethodDelete, "/api/orders/"+orderID, nil).StatusCode)
	ev := completedEvent("evt_r", "cs_r", orderID, "pi_r", 1500)
	assert.Equal(t, 500, deliver(t, down.Harness, ev, whsec))
	assert.Equal(t, 500, deliver(t, down.Harness, ev, whsec), "the retry tries the refund again")
	ps, err := down.App.Payments.ForOrder(context.Background(), orderID)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	assert.Equal(t, "refund_pending", ps[0].Status)
	down.Server.Close()
	require.NoError(t, down.App.Close())

	up := apptest.New(t, apptest.WithDataDir(dir), stripeMode(t, stripemock.Start(t)))
	require.NoError(t, up.App.Payments.WorkOnce(context.Background()))
	ps, err = up.App.Payments.ForOrder(context.Background(), orderID)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	assert.Equal(t, "refunded", ps[0].Status)
	assert.Equal(t, 200, deliver(t, up, ev, whsec), "now a no-op")
}

func TestDirectChargeAPI(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	orderID := s.SellAndReserve(t, 12.25)
	anon := s.Client(t)
	other := s.Client(t)
	other.SignUp(t, "other@example.com", "password")
	body := func(orderID, token string) map[string]string {
		return map[string]string{"orderId": orderID, "token": token}
	}

	var e web.ErrorBody
	assert.Equal(t, 401, anon.JSON(t, http.MethodPost, "/api/payments", body(orderID, "tok_visa"), nil))
	assert.Equal(t, 400, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{}, &e))
	assert.Equal(t, []web.ErrorItem{{Message: "orderId must be provided", Field: "orderId"}, {Message: "token must be provided", Field: "token"}}, e.Errors)
	assert.Equal(t, 404, s.Buyer.JSON(t, http.MethodPost, "/api/payments", body(db.NewID(), "tok_visa"), nil))
	assert.Equal(t, 401, other.JSON(t, http.MethodPost, "/api/payments", body(orderID, "tok_visa"), nil))
	e = web.ErrorBody{}
	assert.Equal(t, 402, s.Buyer.JSON(t, http.MethodPost, "/api/payments", body(orderID, "tok_chargeDeclined"), &e))
	assert.Equal(t, "Your card was declined", e.Errors[0].Message)
	assert.Equal(t, "created", s.Status(t, orderID))

	var p struct{ ID, OrderID, StripeID string }
	require.Equal(t, 201, s.Buyer.JSON(t, http.MethodPost, "/api/payments", body(orderID, "tok_visa"), &p))
	assert.Equal(t, orderID, p.OrderID)
	assert.NotEmpty(t, p.ID)
	assert.NotEmpty(t, p.StripeID)
	assert.Equal(t, "complete", s.Status(t, orderID), "201 only once the order is complete")
	e = web.ErrorBody{}
	assert.Equal(t, 400, s.Buyer.JSON(t, http.MethodPost, "/api/payments", body(orderID, "tok_visa"), &e))
	assert.Equal(t, "Order already paid", e.Errors[0].Message)

	cancelled := s.SellAndReserve(t, 5)
	require.Equal(t, 204, s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+cancelled, nil).StatusCode)
	e = web.ErrorBody{}
	assert.Equal(t, 400, s.Buyer.JSON(t, http.MethodPost, "/api/payments", body(cancelled, "tok_visa"), &e))
	assert.Equal(t, "Cannot pay for an cancelled order", e.Errors[0].Message)
	s.Settle(t)
}

// Cancel and pay at the same instant, 30 times, half through the webhook
// and half through the direct charge: every order ends complete with one
// kept payment, or cancelled with every payment refunded, and no client
// saw both a successful cancel and a successful payment.
func TestCancelPaymentRace(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	ctx := context.Background()
	outcomes := map[string]int{}
	defer func() { t.Log(outcomes) }()
	for round := range 30 {
		orderID := s.SellAndReserve(t, 10)
		var sessionInfo payments.SessionInfo
		if round%2 == 0 {
			require.Equal(t, http.StatusSeeOther, s.Buyer.Form(t, "/orders/"+orderID+"/pay", nil).StatusCode)
			sess, _, err := s.App.Payments.OpenSession(ctx, orderID)
			require.NoError(t, err)
			sessionInfo, err = s.App.Payments.SessionByID(ctx, sess.ID)
			require.NoError(t, err)
		}
		start := make(chan struct{})
		var cancelStatus, payStatus int
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			cancelStatus = s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+orderID, nil).StatusCode
		})
		wg.Go(func() {
			<-start
			if round%2 == 0 {
				payload, header := s.App.Webhook.TestEvent(sessionInfo)
				req, _ := http.NewRequest(http.MethodPost, s.URL+"/webhooks/stripe", strings.NewReader(string(payload)))
				req.Header.Set("Stripe-Signature", header)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				payStatus = resp.StatusCode
				return
			}
			payStatus = s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": orderID, "token": "tok_visa"}, nil)
		})
		close(start)
		wg.Wait()
		s.Settle(t)

		status := s.Status(t, orderID)
		ps, err := s.App.Payments.ForOrder(ctx, orderID)
		require.NoError(t, err)
		outcomes[fmt.Sprintf("%s cancel=%d pay=%d payments=%d", status, cancelStatus, payStatus, len(ps))]++
		switch status {
		case "complete":
			require.Len(t, ps, 1, "round %d", round)
			assert.Equal(t, "succeeded", ps[0].Status)
			assert.Equal(t, 400, cancelStatus, "round %d: a complete order cannot be cancelled", round)
		case "cancelled":
			for _, p := range ps {
				assert.Equal(t, "refunded", p.Status, "round %d", round)
			}
			assert.Equal(t, 204, cancelStatus, "round %d", round)
			if round%2 == 1 {
				assert.NotEqual(t, 201, payStatus, "round %d: never a successful cancel and a successful charge", round)
			}
		default:
			t.Fatalf("round %d: order is %s", round, status)
		}
	}
}

// The whole test-mode flow through the pages, as a browser without
// JavaScript does it: reserve, Pay, the test checkout, back to a paid order.
func TestTestModeCheckoutThroughPages(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	ticketID := s.Seller.Sell(t, "Jazz", 25)
	resp := s.Buyer.Form(t, "/orders", url.Values{"ticketId": {ticketID}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	orderPage := resp.Header.Get("Location")

	_, doc := s.Buyer.Get(t, orderPage)
	require.Equal(t, 1, doc.Find(`form[action="`+orderPage+`/pay"]`).Length(), "a Pay button")
	resp = s.Buyer.Form(t, orderPage+"/pay", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	checkout, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(checkout.Path, "/payments/test-checkout/cs_test_"), checkout.Path)

	_, doc = s.Buyer.Get(t, checkout.Path)
	assert.Contains(t, doc.Find(".test-mode").Text(), "TEST MODE")
	assert.Contains(t, doc.Find("article").Text(), "$25.00")
	resp = s.Buyer.Form(t, checkout.Path+"/pay", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, orderPage+"?paid=1", resp.Header.Get("Location"))

	_, doc = s.Buyer.Get(t, orderPage+"?paid=1")
	assert.Contains(t, doc.Find("#order-status").Text(), "Paid")
	// Paying twice (a double click) is one payment.
	resp = s.Buyer.Form(t, checkout.Path+"/pay", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	s.Settle(t)
	ps, err := s.App.Payments.ForOrder(context.Background(), strings.TrimPrefix(orderPage, "/orders/"))
	require.NoError(t, err)
	assert.Len(t, ps, 1)
}

// Two Pay clicks at once make one Checkout Session, not an error.
func TestDoubleClickOnPay(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	orderID := s.SellAndReserve(t, 10)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	locations := make([]string, 2)
	for i := range codes {
		wg.Go(func() {
			resp := s.Buyer.Form(t, "/orders/"+orderID+"/pay", nil)
			resp.Body.Close()
			codes[i], locations[i] = resp.StatusCode, resp.Header.Get("Location")
		})
	}
	wg.Wait()
	assert.Equal(t, []int{http.StatusSeeOther, http.StatusSeeOther}, codes)
	assert.Equal(t, locations[0], locations[1])
	assert.Equal(t, 1, count(t, s.App.DB("payments"), "SELECT count(*) FROM checkout_sessions WHERE order_id = ?", orderID))
}
