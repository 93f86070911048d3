package payments

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest/stripemock"
	"ticketing/db"
	"ticketing/db/dbtest"
	"ticketing/events"
)

// The real stripe-go client against stripe-mock, which validates every
// request against Stripe's OpenAPI spec: our request shapes are ones
// Stripe accepts. (stripe-mock keeps no state; state changes are driven by
// signed webhooks in the other tests.)
func TestStripeGatewayAgainstStripeMock(t *testing.T) {
	ctx := context.Background()
	g := NewStripeGateway("sk_test_123", stripemock.Start(t)).(*stripeGateway)

	sess, err := g.CreateCheckoutSession(ctx, checkoutParams{
		OrderID: "6b06000000000000000000aa", Attempt: 1, Title: "Concert", AmountCents: 1050,
		SuccessURL: "http://127.0.0.1/orders/x?paid=1", CancelURL: "http://127.0.0.1/orders/x",
	})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(sess.ID, "cs_"), sess.ID)
	assert.NotEmpty(t, sess.URL)

	_, err = g.ExpireCheckoutSession(ctx, sess.ID)
	require.NoError(t, err)

	refund, err := g.Refund(ctx, "pi_123", "refund-abc")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(refund, "re_"), refund)

	for _, token := range []string{"tok_visa", "pm_card_visa"} {
		pi, err := g.confirmIntent(ctx, chargeParams{OrderID: "6b06000000000000000000aa", AmountCents: 1050, Token: token, Key: "charge-x-" + token})
		require.NoError(t, err, token)
		assert.True(t, strings.HasPrefix(pi.ID, "pi_"), pi.ID)
	}
}

// A Stripe API that does not answer is an error, never a silent success.
func TestStripeGatewayUnreachable(t *testing.T) {
	g := NewStripeGateway("sk_test_123", "http://127.0.0.1:1")
	_, err := g.Refund(context.Background(), "pi_123", "refund-abc")
	require.Error(t, err)
}

func TestStripeGatewayRecentPaidAgainstStripeMock(t *testing.T) {
	g := NewStripeGateway("sk_test_123", stripemock.Start(t))
	_, err := g.RecentPaid(context.Background(), time.Now().Add(-time.Hour))
	require.NoError(t, err, "the list requests are ones Stripe accepts")
}

// recentGateway is the processor's side of a reconciliation: it reports
// payments the store has never heard of. (A fake at the edge: stripe-mock
// keeps no state, so it cannot report a paid session.)
type recentGateway struct {
	testGateway
	paid []received
}

func (g *recentGateway) Test() bool { return false }

func (g *recentGateway) RecentPaid(context.Context, time.Time) ([]received, error) {
	return g.paid, nil
}

// Reconcile records what the processor has and we lost, once, and refunds
// what arrived for an order that can no longer take it.
func TestReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	odb := dbtest.Open(t, dir, "orders")
	pdb := dbtest.Open(t, dir, "payments", Migrations())
	bus := events.NewBus(nil, events.Options{})
	orders := bus.Log(odb)
	g := &recentGateway{}
	s := NewStore(pdb, bus.Log(pdb), g, bus, nil)
	c := bus.Consumers(pdb)
	Subscribe(c, s)

	live, gone := db.NewID(), db.NewID()
	require.NoError(t, odb.Tx(ctx, func(tx *db.Tx) error {
		for _, id := range []string{live, gone} {
			if _, err := orders.Append(ctx, tx, "order:created", id, 1, map[string]any{"id": id, "userId": "u", "status": "created", "version": 1, "ticket": map[string]any{"id": "t-" + id, "title": "Show", "price": 1000}}); err != nil {
				return err
			}
		}
		_, err := orders.Append(ctx, tx, "order:cancelled", gone, 2, map[string]any{"id": gone, "version": 2, "ticket": map[string]any{"id": "t-" + gone}})
		return err
	}))
	_, err := c.PollOnce(ctx)
	require.NoError(t, err)

	g.paid = []received{
		{OrderID: live, PaymentIntent: "pi_live", AmountCents: 1000, Currency: "usd"},
		{OrderID: gone, PaymentIntent: "pi_gone", SessionID: "cs_gone", AmountCents: 1000, Currency: "usd"},
	}
	n, err := s.Reconcile(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	kept, err := s.ForOrder(ctx, live)
	require.NoError(t, err)
	require.Len(t, kept, 1)
	assert.Equal(t, succeeded, kept[0].Status)
	refundedOnes, err := s.ForOrder(ctx, gone)
	require.NoError(t, err)
	require.Len(t, refundedOnes, 1)
	assert.Equal(t, refunded, refundedOnes[0].Status)

	n, err = s.Reconcile(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Zero(t, n, "a second run records nothing")
	var created int
	require.NoError(t, pdb.Read().QueryRow("SELECT count(*) FROM events WHERE type = 'payment:created'").Scan(&created))
	assert.Equal(t, 1, created)
}
