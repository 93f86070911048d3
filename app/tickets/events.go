package tickets

import (
	"context"
	"fmt"

	"ticketing/db"
	"ticketing/events"
)

// OrderEvent is the part of the orders module's order:created and
// order:cancelled payloads this module reads.
type OrderEvent struct {
	ID     string `json:"id"`
	Ticket struct {
		ID string `json:"id"`
	} `json:"ticket"`
}

// Subscribe registers the handlers for the orders module's events: an order
// created locks its ticket, an order cancelled (by its buyer or by expiry)
// releases it.
func Subscribe(c *events.Consumers, s *Store) {
	c.Handle("orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var o OrderEvent
		if err := e.Decode(&o); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.lock(ctx, tx, o.Ticket.ID, o.ID)
	})
	c.Handle("orders", "order:cancelled", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var o OrderEvent
		if err := e.Decode(&o); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return s.unlock(ctx, tx, o.Ticket.ID, o.ID)
	})
}
