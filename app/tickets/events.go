package tickets

import (
	"context"
	"fmt"
	"time"

	"ticketing/db"
	"ticketing/events"
)

// OrderEvent is the part of the orders module's order:created,
// order:cancelled and order:completed payloads this module reads.
type OrderEvent struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expiresAt"`
	Ticket    struct {
		ID string `json:"id"`
	} `json:"ticket"`
}

// userCreated is the auth module's user:created.
type userCreated struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Subscribe registers the handlers for the orders module's events (an
// order created locks its ticket, an order cancelled by its buyer or by
// expiry releases it, an order completed sells it) and auth's user:created
// (the sellers' names).
func Subscribe(c *events.Consumers, s *Store) {
	c.Handle("auth", "user:created", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var u userCreated
		if err := e.Decode(&u); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.addSeller(ctx, tx, u.ID, u.Email)
	})
	c.Handle("orders", "order:completed", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var o OrderEvent
		if err := e.Decode(&o); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.sell(ctx, tx, o.Ticket.ID, o.ID, e.CreatedAt)
	})
	c.Handle("orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var o OrderEvent
		if err := e.Decode(&o); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.lock(ctx, tx, o.Ticket.ID, o.ID, o.ExpiresAt)
	})
	c.Handle("orders", "order:cancelled", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var o OrderEvent
		if err := e.Decode(&o); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.unlock(ctx, tx, o.Ticket.ID, o.ID)
	})
}
