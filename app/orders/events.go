package orders

import (
	"context"
	"fmt"

	"ticketing/db"
	"ticketing/events"
)

// ticketChanged is the tickets module's ticket:created / ticket:updated
// payload (prices in cents).
type ticketChanged struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Price   int64  `json:"price"`
	UserID  string `json:"userId"`
	Version int64  `json:"version"`
}

// expirationComplete is the expiration module's expiration:complete.
type expirationComplete struct {
	OrderID string `json:"orderId"`
}

// paymentCreated is the payments module's payment:created.
type paymentCreated struct {
	ID      string `json:"id"`
	OrderID string `json:"orderId"`
}

// Subscribe registers the handlers for the tickets, expiration and
// payments modules' events: the ticket replica, cancelling orders whose
// time ran out, and what payments mean for an order.
func Subscribe(c *events.Consumers, s *Store) {
	applyTicket := func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var t ticketChanged
		if err := e.Decode(&t); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.applyTicket(ctx, tx, Ticket{ID: t.ID, Title: t.Title, PriceCents: t.Price, UserID: t.UserID, Version: t.Version})
	}
	c.Handle("tickets", "ticket:created", applyTicket)
	c.Handle("tickets", "ticket:updated", applyTicket)
	c.Handle("expiration", "expiration:complete", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var x expirationComplete
		if err := e.Decode(&x); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.expire(ctx, tx, x.OrderID)
	})
	// payment:created completes the order (unless it was cancelled);
	// payment:refunded marks it refunded.
	c.Handle("payments", "payment:created", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var p paymentCreated
		if err := e.Decode(&p); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.Complete(ctx, tx, p.OrderID)
	})
	c.Handle("payments", "payment:refunded", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var p paymentCreated
		if err := e.Decode(&p); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.markRefunded(ctx, tx, p.OrderID)
	})
}
