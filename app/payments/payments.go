// Package payments owns the money (payments.db): Stripe Checkout Sessions,
// the payments received, their refunds, and the ids of the Stripe events
// already processed. It keeps a copy of the orders from the orders
// module's events.
//
// Only a payment completes an order: a payment recorded for a live order
// appends payment:created, and the orders module completes the order unless
// it was cancelled meanwhile. Any payment whose order is or becomes
// cancelled, and any second payment for one order, is refunded: the refund
// is first recorded as pending in the same transaction that discovers it,
// then carried out through the API (with an idempotency key) by the caller
// or by the worker, so a crash or an API failure delays a refund but never
// loses it.
//
// Without Stripe keys, a built-in test gateway and test checkout page stand
// in for Stripe; its Pay button signs a checkout.session.completed event and
// hands it to the same webhook code.
package payments

import (
	"embed"
	"encoding/json"
	"time"

	"ticketing/db"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns payments.db's schema.
func Migrations() db.Migrations { return db.Embedded("payments", migrations) }

// Order statuses, as the orders module publishes them.
const (
	orderStatusCreated         = "created"
	orderStatusAwaitingPayment = "awaiting:payment"
	orderStatusComplete        = "complete"
	orderStatusCancelled       = "cancelled"
)

// order is the payments module's copy of an order.
type order struct {
	ID         string
	UserID     string
	Title      string
	PriceCents int64
	Status     string
	Version    int64
}

// Payable reports whether the order can still be paid.
func (o order) Payable() bool {
	return o.Status == orderStatusCreated || o.Status == orderStatusAwaitingPayment
}

// currency is the one currency the shop sells in (ISO 4217, lowercase as
// Stripe writes it). A payment in any other currency is refunded.
const currency = "usd"

// Payment statuses.
const (
	succeeded     = "succeeded"
	refundPending = "refund_pending"
	refunded      = "refunded"
)

// Payment is money received for an order.
type Payment struct {
	ID          string
	OrderID     string
	StripeID    string // the PaymentIntent
	SessionID   string // the Checkout Session, if paid through one
	AmountCents int64
	Status      string
	RefundID    string
	CreatedAt   time.Time
}

// Events this module appends.
const (
	eventPaymentCreated  = "payment:created"
	eventPaymentRefunded = "payment:refunded"
)

// paymentCreated is the payload of payment:created (the seed's).
type paymentCreated struct {
	ID       string `json:"id"`
	OrderID  string `json:"orderId"`
	StripeID string `json:"stripeId"`
}

// paymentRefunded is the payload of payment:refunded.
type paymentRefunded struct {
	ID       string `json:"id"`
	OrderID  string `json:"orderId"`
	RefundID string `json:"refundId"`
}

// MarshalJSON is the seed's payment: {id, orderId, stripeId}.
func (p Payment) MarshalJSON() ([]byte, error) {
	return json.Marshal(paymentCreated{ID: p.ID, OrderID: p.OrderID, StripeID: p.StripeID})
}
