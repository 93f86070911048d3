package delivery

import (
	"context"

	"ticketing/db"
	"ticketing/events"
)

// The parts of other modules' payloads this module reads.
type (
	// ticketCreated is the tickets module's ticket:created.
	ticketCreated struct {
		ID     string `json:"id"`
		UserID string `json:"userId"`
	}
	// orderCreated is the orders module's order:created.
	orderCreated struct {
		ID     string `json:"id"`
		UserID string `json:"userId"`
		Ticket struct {
			ID string `json:"id"`
		} `json:"ticket"`
	}
	// orderChanged is the orders module's order:completed,
	// order:cancelled and order:refunded.
	orderChanged struct {
		ID string `json:"id"`
	}
)

// Subscribe registers the handlers: each ticket's seller, each order's
// buyer and state.
func Subscribe(c *events.Consumers, s *Store) {
	events.Handle(c, "tickets", "ticket:created", func(ctx context.Context, tx *db.Tx, e events.Event, t ticketCreated) error {
		return s.addTicket(ctx, tx, t.ID, t.UserID)
	})
	events.Handle(c, "orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event, o orderCreated) error {
		return s.addOrder(ctx, tx, o.ID, o.Ticket.ID, o.UserID)
	})
	events.Handle(c, "orders", "order:completed", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		return s.setStatus(ctx, tx, o.ID, "complete")
	})
	events.Handle(c, "orders", "order:cancelled", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		return s.setStatus(ctx, tx, o.ID, "cancelled")
	})
	events.Handle(c, "orders", "order:refunded", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		return s.markRefunded(ctx, tx, o.ID)
	})
}
