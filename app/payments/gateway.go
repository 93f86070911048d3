package payments

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Gateway is what the module needs from a payment processor: Stripe, or the
// built-in test gateway.
type Gateway interface {
	// CreateCheckoutSession starts a hosted checkout for an order.
	CreateCheckoutSession(ctx context.Context, p checkoutParams) (Session, error)
	// ExpireCheckoutSession closes an open session; a session that was
	// paid meanwhile comes back with Status "complete" and its
	// PaymentIntent.
	ExpireCheckoutSession(ctx context.Context, id string) (Session, error)
	// Refund gives a PaymentIntent's money back. The key makes a retry
	// return the same refund instead of a second one.
	Refund(ctx context.Context, paymentIntent, key string) (string, error)
	// Charge creates and confirms a PaymentIntent with a card token
	// (the seed's direct charge). A declined card is ErrDeclined.
	Charge(ctx context.Context, p chargeParams) (string, error)
	// RecentPaid lists the money received for our orders since a time:
	// paid Checkout Sessions and succeeded PaymentIntents carrying an
	// order id. Reconciliation after a restore applies any we have lost.
	RecentPaid(ctx context.Context, since time.Time) ([]received, error)
	// Test reports whether this is the built-in test gateway.
	Test() bool
}

// checkoutParams describe a Checkout Session for one order and attempt.
type checkoutParams struct {
	OrderID     string
	Attempt     int
	Title       string
	AmountCents int64
	SuccessURL  string
	CancelURL   string
}

// Checkout Session statuses: Stripe's open, complete and expired, and
// ours, expire_pending: to be expired through the API by the worker.
const (
	sessionOpen          = "open"
	sessionComplete      = "complete"
	sessionExpired       = "expired"
	sessionExpirePending = "expire_pending"
)

// Session is a Checkout Session as far as we care.
type Session struct {
	ID            string
	URL           string
	Status        string // sessionOpen, sessionComplete, sessionExpired
	PaymentIntent string
	AmountCents   int64
	Currency      string
}

// chargeParams describe a direct charge.
type chargeParams struct {
	OrderID     string
	AmountCents int64
	Token       string // tok_visa, pm_card_visa, ...
	Key         string // idempotency key
}

// errDeclined is a card the processor refused.
var errDeclined = errors.New("card declined")

// checkoutTTL is how long a Checkout Session stays open: the minimum
// Stripe allows. A session outliving its reservation is expired when the
// order is cancelled, and a payment that still gets through is refunded.
const checkoutTTL = 30 * time.Minute

// stripeGateway calls the Stripe API through stripe-go, pinned to the API
// version that stripe-go release ships with.
type stripeGateway struct {
	api *client.API
}

// NewStripeGateway returns a gateway for key. apiBase overrides Stripe's
// URL (stripe-mock in tests); "" means Stripe.
func NewStripeGateway(key, apiBase string) Gateway {
	cfg := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: 30 * time.Second},
		MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelError},
	}
	if apiBase != "" {
		cfg.URL = stripe.String(strings.TrimRight(apiBase, "/"))
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	}
	return &stripeGateway{api: client.New(key, backends)}
}

// Test reports false: this is the real thing.
func (g *stripeGateway) Test() bool { return false }

// CreateCheckoutSession creates a payment-mode session for the order's
// price, with the order id as client_reference_id and in metadata.
func (g *stripeGateway) CreateCheckoutSession(ctx context.Context, p checkoutParams) (Session, error) {
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		ClientReferenceID: stripe.String(p.OrderID),
		SuccessURL:        stripe.String(p.SuccessURL),
		CancelURL:         stripe.String(p.CancelURL),
		ExpiresAt:         stripe.Int64(time.Now().Add(checkoutTTL + time.Minute).Unix()),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency:    stripe.String(currency),
				UnitAmount:  stripe.Int64(p.AmountCents),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String(p.Title)},
			},
		}},
		PaymentIntentData: &stripe.CheckoutSessionPaymentIntentDataParams{
			Metadata: map[string]string{"order_id": p.OrderID},
		},
	}
	params.Context = ctx
	params.AddMetadata("order_id", p.OrderID)
	params.SetIdempotencyKey(fmt.Sprintf("checkout-%s-%d", p.OrderID, p.Attempt))
	s, err := g.api.CheckoutSessions.New(params)
	if err != nil {
		return Session{}, fmt.Errorf("create checkout session for order %s: %w", p.OrderID, err)
	}
	return session(s), nil
}

func session(s *stripe.CheckoutSession) Session {
	out := Session{ID: s.ID, URL: s.URL, Status: string(s.Status), AmountCents: s.AmountTotal, Currency: string(s.Currency)}
	if s.PaymentIntent != nil {
		out.PaymentIntent = s.PaymentIntent.ID
	}
	return out
}

// ExpireCheckoutSession expires an open session. Stripe refuses to expire
// a session that is no longer open; then the session is fetched, so a paid
// one is reported as complete.
func (g *stripeGateway) ExpireCheckoutSession(ctx context.Context, id string) (Session, error) {
	params := &stripe.CheckoutSessionExpireParams{}
	params.Context = ctx
	s, err := g.api.CheckoutSessions.Expire(id, params)
	if err == nil {
		return session(s), nil
	}
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != http.StatusBadRequest {
		return Session{}, fmt.Errorf("expire checkout session %s: %w", id, err)
	}
	get := &stripe.CheckoutSessionParams{}
	get.Context = ctx
	s, gerr := g.api.CheckoutSessions.Get(id, get)
	if gerr != nil {
		return Session{}, fmt.Errorf("expire checkout session %s: %w (and get: %v)", id, err, gerr)
	}
	return session(s), nil
}

// RecentPaid pages through Checkout Sessions and PaymentIntents created
// since the given time.
func (g *stripeGateway) RecentPaid(ctx context.Context, since time.Time) ([]received, error) {
	var out []received
	sp := &stripe.CheckoutSessionListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	sp.Context = ctx
	sp.Filters.AddFilter("limit", "", "100")
	sessions := g.api.CheckoutSessions.List(sp)
	for sessions.Next() {
		cs := sessions.CheckoutSession()
		order := cs.Metadata["order_id"]
		if order == "" {
			order = cs.ClientReferenceID
		}
		if cs.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid || order == "" || cs.PaymentIntent == nil {
			continue
		}
		out = append(out, received{OrderID: order, PaymentIntent: cs.PaymentIntent.ID, SessionID: cs.ID, AmountCents: cs.AmountTotal, Currency: string(cs.Currency)})
	}
	if err := sessions.Err(); err != nil {
		return nil, fmt.Errorf("list checkout sessions: %w", err)
	}
	pp := &stripe.PaymentIntentListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	pp.Context = ctx
	pp.Filters.AddFilter("limit", "", "100")
	intents := g.api.PaymentIntents.List(pp)
	for intents.Next() {
		pi := intents.PaymentIntent()
		if pi.Status != stripe.PaymentIntentStatusSucceeded || pi.Metadata["order_id"] == "" {
			continue
		}
		out = append(out, received{OrderID: pi.Metadata["order_id"], PaymentIntent: pi.ID, AmountCents: pi.Amount, Currency: string(pi.Currency)})
	}
	if err := intents.Err(); err != nil {
		return nil, fmt.Errorf("list payment intents: %w", err)
	}
	return out, nil
}

// Refund refunds a PaymentIntent in full.
func (g *stripeGateway) Refund(ctx context.Context, paymentIntent, key string) (string, error) {
	params := &stripe.RefundParams{PaymentIntent: stripe.String(paymentIntent)}
	params.Context = ctx
	params.SetIdempotencyKey(key)
	r, err := g.api.Refunds.New(params)
	if err != nil {
		return "", fmt.Errorf("refund %s: %w", paymentIntent, err)
	}
	return r.ID, nil
}

// Charge creates and confirms a PaymentIntent. A tok_ token (the seed's
// Stripe.js tokens) is first turned into a card PaymentMethod; anything
// else is taken as a PaymentMethod id (pm_card_visa).
func (g *stripeGateway) Charge(ctx context.Context, p chargeParams) (string, error) {
	pi, err := g.confirmIntent(ctx, p)
	if err != nil {
		return "", err
	}
	if pi.Status != stripe.PaymentIntentStatusSucceeded {
		return "", fmt.Errorf("%w: payment %s is %s", errDeclined, pi.ID, pi.Status)
	}
	return pi.ID, nil
}

// confirmIntent creates and confirms the PaymentIntent, whatever status it
// ends in.
func (g *stripeGateway) confirmIntent(ctx context.Context, p chargeParams) (*stripe.PaymentIntent, error) {
	params := &stripe.PaymentIntentParams{
		Amount:   stripe.Int64(p.AmountCents),
		Currency: stripe.String(currency),
		Confirm:  stripe.Bool(true),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{
			Enabled:        stripe.Bool(true),
			AllowRedirects: stripe.String("never"),
		},
	}
	method := p.Token
	if strings.HasPrefix(p.Token, "tok_") {
		pm := &stripe.PaymentMethodParams{
			Type: stripe.String(string(stripe.PaymentMethodTypeCard)),
			Card: &stripe.PaymentMethodCardParams{Token: stripe.String(p.Token)},
		}
		pm.Context = ctx
		created, err := g.api.PaymentMethods.New(pm)
		if d := declined(err); d != nil {
			return nil, d
		}
		if err != nil {
			return nil, fmt.Errorf("charge order %s: payment method from token: %w", p.OrderID, err)
		}
		method = created.ID
	}
	params.PaymentMethod = stripe.String(method)
	params.Context = ctx
	params.AddMetadata("order_id", p.OrderID)
	params.SetIdempotencyKey(p.Key)
	pi, err := g.api.PaymentIntents.New(params)
	if d := declined(err); d != nil {
		return nil, d
	}
	if err != nil {
		return nil, fmt.Errorf("charge order %s: %w", p.OrderID, err)
	}
	return pi, nil
}

// declined is errDeclined with Stripe's message when err is Stripe saying
// the card was refused, nil otherwise.
func declined(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && (se.Type == stripe.ErrorTypeCard || se.Code == stripe.ErrorCodeCardDeclined) {
		return fmt.Errorf("%w: %s", errDeclined, se.Msg)
	}
	return nil
}

// testGateway stands in for Stripe when there are no keys. Its checkout
// page is ours (/payments/test-checkout/{id}); nothing leaves the process.
type testGateway struct {
	baseURL string
	key     []byte
}

// NewTestGateway returns the test gateway; baseURL is the app's public URL,
// key a secret of this install's that names its checkout sessions.
func NewTestGateway(baseURL string, key []byte) Gateway {
	return &testGateway{baseURL: baseURL, key: key}
}

// Test reports true.
func (g *testGateway) Test() bool { return true }

// CreateCheckoutSession makes a session on the built-in checkout page. Its
// id is a keyed hash of the order and attempt: the same for a repeated
// request (as Stripe's idempotency key returns the same session), and
// impossible to guess from the order id, which is public.
func (g *testGateway) CreateCheckoutSession(_ context.Context, p checkoutParams) (Session, error) {
	mac := hmac.New(sha256.New, g.key)
	fmt.Fprintf(mac, "checkout %s %d", p.OrderID, p.Attempt)
	id := "cs_test_" + hex.EncodeToString(mac.Sum(nil)[:20])
	return Session{ID: id, URL: g.baseURL + "/payments/test-checkout/" + id, Status: sessionOpen, AmountCents: p.AmountCents, Currency: currency}, nil
}

// ExpireCheckoutSession always succeeds: the test checkout page refuses to
// pay a session that is no longer open.
func (g *testGateway) ExpireCheckoutSession(_ context.Context, id string) (Session, error) {
	return Session{ID: id, Status: sessionExpired}, nil
}

// RecentPaid has nothing to report: test payments never leave the
// process, so a restore cannot have lost one that a processor knows of.
func (g *testGateway) RecentPaid(context.Context, time.Time) ([]received, error) { return nil, nil }

// Refund returns a made-up refund id derived from the key, so a retry
// returns the same one.
func (g *testGateway) Refund(_ context.Context, _ string, key string) (string, error) {
	return "re_test_" + strings.TrimPrefix(key, "refund-"), nil
}

// Charge accepts Stripe's test tokens for a good card and declines
// tok_chargeDeclined, as Stripe's test mode does.
func (g *testGateway) Charge(_ context.Context, p chargeParams) (string, error) {
	switch p.Token {
	case "tok_visa", "tok_mastercard", "pm_card_visa", "pm_card_mastercard":
		return "pi_test_" + strings.TrimPrefix(p.Key, "charge-"), nil
	case "tok_chargeDeclined", "pm_card_chargeDeclined", "tok_visa_chargeDeclined":
		return "", fmt.Errorf("%w: test card declined", errDeclined)
	}
	return "", fmt.Errorf("%w: unknown test token %q (use tok_visa or tok_chargeDeclined)", errDeclined, p.Token)
}
