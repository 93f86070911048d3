package payments_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"

	"ticketing/app/apptest"
	"ticketing/app/apptest/stripemock"
)

// checkoutPath presses Pay on the buyer's order and returns the test
// checkout page it leads to.
func checkoutPath(t *testing.T, s *apptest.Shop, orderID string) string {
	t.Helper()
	resp := s.Buyer.Form(t, "/orders/"+orderID+"/pay", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	u, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(u.Path, "/payments/test-checkout/cs_test_"), u.Path)
	return u.Path
}

// A test checkout session is its buyer's alone: a visitor or another user
// who has its address can neither see nor pay it, and its id says nothing
// about the (public) order id.
func TestTestCheckoutBelongsToItsBuyer(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	orderID := s.SellAndReserve(t, 500)
	path := checkoutPath(t, s, orderID)
	assert.NotContains(t, path, orderID, "the session id is not derived from the order id")

	visitor := s.Client(t)
	other := s.Client(t)
	other.SignUp(t, "other@example.com", "password")
	for _, who := range []struct {
		name string
		get  func() int
		pay  func() int
	}{
		{"visitor", func() int { r, _ := visitor.Get(t, path); return r.StatusCode }, func() int { return visitor.Form(t, path+"/pay", nil).StatusCode }},
		{"another user", func() int { r, _ := other.Get(t, path); return r.StatusCode }, func() int { return other.Form(t, path+"/pay", nil).StatusCode }},
	} {
		assert.Equal(t, http.StatusNotFound, who.get(), who.name+" sees the page")
		assert.Equal(t, http.StatusNotFound, who.pay(), who.name+" pays")
	}
	s.Settle(t)
	assert.Equal(t, "created", s.Status(t, orderID), "nobody but the buyer paid")

	// The old, guessable name is no session at all.
	r, _ := s.Buyer.Get(t, "/payments/test-checkout/cs_test_"+orderID+"_1")
	assert.Equal(t, http.StatusNotFound, r.StatusCode)
	// The buyer can.
	require.Equal(t, http.StatusSeeOther, s.Buyer.Form(t, path+"/pay", nil).StatusCode)
	s.Settle(t)
	assert.Equal(t, "complete", s.Status(t, orderID))
}

// A payment for less than the order's price, or in another currency, does
// not complete the order: it is recorded and refunded.
func TestPaymentThatDoesNotMatchThePriceIsRefunded(t *testing.T) {
	s := apptest.NewShop(t, stripeMode(t, stripemock.Start(t)))
	for _, tt := range []struct {
		name     string
		amount   int64
		currency string
	}{
		{"one cent", 1, "usd"},
		{"too much", 2001, "usd"},
		{"other currency", 2000, "eur"},
		{"no currency", 2000, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			orderID := s.SellAndReserve(t, 20)
			var ev map[string]any
			require.NoError(t, json.Unmarshal(completedEvent("evt_"+orderID, "cs_"+orderID, orderID, "pi_"+orderID, tt.amount), &ev))
			ev["data"].(map[string]any)["object"].(map[string]any)["currency"] = tt.currency
			payload, _ := json.Marshal(ev)
			assert.Equal(t, 200, deliver(t, s.Harness, payload, whsec))
			s.Settle(t)
			assert.Equal(t, "created", s.Status(t, orderID), "the order is still unpaid")
			ps, err := s.App.Payments.ForOrder(t.Context(), orderID)
			require.NoError(t, err)
			require.Len(t, ps, 1, "the payment is recorded")
			assert.Equal(t, "refunded", ps[0].Status)
		})
	}
	// The right amount still completes an order.
	orderID := s.SellAndReserve(t, 20)
	assert.Equal(t, 200, deliver(t, s.Harness, completedEvent("evt_ok", "cs_ok", orderID, "pi_ok", 2000), whsec))
	s.Settle(t)
	assert.Equal(t, "complete", s.Status(t, orderID))
}

// A signed event that can never be applied is a 400 (Stripe stops
// retrying), never a 500 or a panic; nothing is recorded.
func TestMalformedSignedWebhookIs400(t *testing.T) {
	s := apptest.NewShop(t, stripeMode(t, stripemock.Start(t)))
	orderID := s.SellAndReserve(t, 20)
	event := func(data any) []byte {
		b, _ := json.Marshal(map[string]any{"id": "evt_bad", "object": "event", "api_version": stripe.APIVersion,
			"type": "checkout.session.completed", "data": data})
		return b
	}
	object := func(k string, v any) map[string]any {
		o := map[string]any{"id": "cs_bad", "object": "checkout.session", "client_reference_id": orderID,
			"metadata": map[string]string{"order_id": orderID}, "payment_status": "paid", "payment_intent": "pi_bad",
			"amount_total": 2000, "currency": "usd"}
		o[k] = v
		return map[string]any{"object": o}
	}
	for name, payload := range map[string][]byte{
		"data null":             event(nil),
		"data without object":   event(map[string]any{}),
		"metadata a string":     event(object("metadata", "order_id")),
		"metadata of numbers":   event(object("metadata", map[string]int{"order_id": 5})),
		"amount_total a string": event(object("amount_total", "2000")),
		"currency a number":     event(object("currency", 840)),
	} {
		assert.Equal(t, http.StatusBadRequest, deliver(t, s.Harness, payload, whsec), name)
	}
	assert.Zero(t, count(t, s.App.DB("payments"), "SELECT count(*) FROM payments"))
	assert.Equal(t, "created", s.Status(t, orderID))
}
