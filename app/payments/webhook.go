package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// errBadSignature is a webhook whose Stripe-Signature does not verify.
var errBadSignature = errors.New("invalid Stripe signature")

// errMalformed is a signed event that can never be applied (no data, a
// field of the wrong type): answered 400, so Stripe stops retrying it,
// and logged. Only a failure that a retry can cure answers 5xx.
var errMalformed = errors.New("malformed Stripe event")

// Webhook verifies and applies Stripe's webhook deliveries.
type Webhook struct {
	store  *Store
	secret string
}

// NewWebhook returns the webhook handler's logic for the signing secret.
func NewWebhook(s *Store, secret string) *Webhook { return &Webhook{store: s, secret: secret} }

// checkoutSession is the part of a Checkout Session event we read; only
// these fields are decoded, so an event of a newer API version that keeps
// them still works.
type checkoutSession struct {
	ID                string            `json:"id"`
	ClientReferenceID string            `json:"client_reference_id"`
	Metadata          map[string]string `json:"metadata"`
	PaymentStatus     string            `json:"payment_status"`
	PaymentIntent     json.RawMessage   `json:"payment_intent"` // an id, or an expanded object
	AmountTotal       int64             `json:"amount_total"`
	Currency          string            `json:"currency"`
}

func (cs checkoutSession) orderID() string {
	if id := cs.Metadata["order_id"]; id != "" {
		return id
	}
	return cs.ClientReferenceID
}

func (cs checkoutSession) paymentIntent() string {
	var id string
	if json.Unmarshal(cs.PaymentIntent, &id) == nil {
		return id
	}
	var obj struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(cs.PaymentIntent, &obj)
	return obj.ID
}

// Handle verifies payload against the Stripe-Signature header and applies
// the event. A bad signature is ErrBadSignature and nothing is recorded.
// An event of another API version than stripe-go's is logged and still
// applied: refusing it would lose a payment. A refund the event calls for
// is attempted before Handle returns; if the API fails, Handle returns the
// error (Stripe then retries; the retry finds the pending refund and tries
// again, with the same idempotency key).
func (w *Webhook) Handle(ctx context.Context, payload []byte, header string) error {
	ev, err := webhook.ConstructEventWithOptions(payload, header, w.secret, webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		return fmt.Errorf("%w: %v", errBadSignature, err)
	}
	if ev.APIVersion != "" && ev.APIVersion != stripe.APIVersion {
		w.store.logger.Warn("Stripe event of another API version; applying the fields we read",
			"event", ev.ID, "type", ev.Type, "event_version", ev.APIVersion, "our_version", stripe.APIVersion)
	}
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
	default:
		return nil // answered 200: events we do not use
	}
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return fmt.Errorf("%w: %s %s has no data.object", errMalformed, ev.Type, ev.ID)
	}
	var cs checkoutSession
	if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil {
		return fmt.Errorf("%w: decode %s %s: %v", errMalformed, ev.Type, ev.ID, err)
	}
	if cs.PaymentStatus != "paid" {
		return nil // async methods report success later, in their own event
	}
	if cs.orderID() == "" || cs.paymentIntent() == "" {
		w.store.logger.Warn("paid Checkout Session without an order or payment intent; ignoring", "event", ev.ID, "session", cs.ID)
		return nil
	}
	p, _, err := w.store.record(ctx, received{
		OrderID: cs.orderID(), PaymentIntent: cs.paymentIntent(), SessionID: cs.ID, AmountCents: cs.AmountTotal, Currency: cs.Currency,
		EventID: ev.ID, EventType: string(ev.Type),
	})
	if err != nil {
		return err
	}
	return w.store.refundPayment(ctx, p)
}

// TestEvent builds the signed checkout.session.completed delivery the
// test checkout page sends for a session: the same payload shape Stripe
// sends, signed with the install's test secret.
func (w *Webhook) TestEvent(info SessionInfo) (payload []byte, header string) {
	ev := map[string]any{
		"id":          "evt_test_" + info.Session.ID,
		"object":      "event",
		"api_version": stripe.APIVersion,
		"created":     time.Now().Unix(),
		"type":        "checkout.session.completed",
		"data": map[string]any{"object": map[string]any{
			"id":                  info.Session.ID,
			"object":              "checkout.session",
			"client_reference_id": info.Order.ID,
			"metadata":            map[string]string{"order_id": info.Order.ID},
			"payment_status":      "paid",
			"status":              "complete",
			"payment_intent":      "pi_test_" + info.Session.ID,
			"amount_total":        info.Order.PriceCents,
			"currency":            currency,
		}},
	}
	payload, _ = json.Marshal(ev)
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: w.secret})
	return signed.Payload, signed.Header
}
