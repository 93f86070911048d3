package expiration

import (
	"context"
	"fmt"

	"ticketing/db"
	"ticketing/events"
)

// Subscribe registers the handlers for the orders module's events: a new
// order's deadline is scheduled; a cancelled or completed order's is
// forgotten.
func Subscribe(c *events.Consumers, s *Store) {
	c.Handle("orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var o orderEvent
		if err := e.Decode(&o); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.schedule(ctx, tx, o.ID, o.ExpiresAt)
	})
	forget := func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var o orderEvent
		if err := e.Decode(&o); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.forget(ctx, tx, o.ID)
	}
	c.Handle("orders", "order:cancelled", forget)
	c.Handle("orders", "order:completed", forget)
}
