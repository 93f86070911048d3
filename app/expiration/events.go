package expiration

import (
	"context"

	"ticketing/db"
	"ticketing/events"
)

// Subscribe registers the handlers for the orders module's events: a new
// order's deadline is scheduled; a cancelled or completed order's is
// forgotten.
func Subscribe(c *events.Consumers, s *Store) {
	events.Handle(c, "orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event, o orderCreated) error {
		return s.schedule(ctx, tx, o.ID, o.ExpiresAt)
	})
	forget := func(ctx context.Context, tx *db.Tx, e events.Event, o orderEnded) error {
		return s.forget(ctx, tx, o.ID)
	}
	events.Handle(c, "orders", "order:cancelled", forget)
	events.Handle(c, "orders", "order:completed", forget)
}
