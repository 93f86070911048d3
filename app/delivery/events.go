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
	// orderCompleted is the orders module's order:completed: the only
	// order that gives its buyer the ticket (a complete order is never
	// cancelled, and a refunded one never completed).
	orderCompleted struct {
		ID     string `json:"id"`
		UserID string `json:"userId"`
		Ticket struct {
			ID string `json:"id"`
		} `json:"ticket"`
	}
)

// Subscribe registers the handlers: each ticket's seller, each sale's
// buyer.
func Subscribe(c *events.Consumers, s *Store) {
	events.Handle(c, "tickets", "ticket:created", func(ctx context.Context, tx *db.Tx, e events.Event, t ticketCreated) error {
		return s.addTicket(ctx, tx, t.ID, t.UserID)
	})
	// Only completions: every reservation is not this module's business
	// (and a flash sale would pay for it).
	events.Handle(c, "orders", "order:completed", func(ctx context.Context, tx *db.Tx, e events.Event, o orderCompleted) error {
		return s.addSale(ctx, tx, o.ID, o.Ticket.ID, o.UserID)
	})
}
