package payments

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest/stripemock"
)

// The real stripe-go client against stripe-mock, which validates every
// request against Stripe's OpenAPI spec: our request shapes are ones
// Stripe accepts. (stripe-mock keeps no state; state changes are driven by
// signed webhooks in the other tests.)
func TestStripeGatewayAgainstStripeMock(t *testing.T) {
	ctx := context.Background()
	g := NewStripeGateway("sk_test_123", stripemock.Start(t))

	sess, err := g.CreateCheckoutSession(ctx, CheckoutParams{
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
		pi, err := g.confirmIntent(ctx, ChargeParams{OrderID: "6b06000000000000000000aa", AmountCents: 1050, Token: token, Key: "charge-x-" + token})
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
