package tickets

import (
	"context"
	"time"

	"ticketing/db"
	"ticketing/events"
)

// The parts of other modules' payloads this module reads.
type (
	// orderCreated is the orders module's order:created.
	orderCreated struct {
		ID        string    `json:"id"`
		UserID    string    `json:"userId"`
		ExpiresAt time.Time `json:"expiresAt"`
		Ticket    ticketRef `json:"ticket"`
	}
	// orderChanged is the orders module's order:cancelled and
	// order:completed.
	orderChanged struct {
		ID     string    `json:"id"`
		Ticket ticketRef `json:"ticket"`
	}
	ticketRef struct {
		ID string `json:"id"`
	}
	// ticketDelivered is the delivery module's ticket:delivered.
	ticketDelivered struct {
		TicketID string `json:"ticketId"`
	}
	// userNamed is the auth module's user:created and user:renamed: the
	// display name buyers see ("" until one is chosen).
	userNamed struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
	}
)

// Subscribe registers the handlers for the orders module's events (an
// order created locks its ticket, an order cancelled by its buyer or by
// expiry releases it, an order completed sells it) and auth's user:created
// and user:renamed (the sellers' names).
func Subscribe(c *events.Consumers, s *Store) {
	named := func(ctx context.Context, tx *db.Tx, e events.Event, u userNamed) error {
		return s.nameSeller(ctx, tx, u.ID, u.DisplayName)
	}
	events.Handle(c, "auth", "user:created", named)
	events.Handle(c, "auth", "user:renamed", named)
	events.Handle(c, "delivery", "ticket:delivered", func(ctx context.Context, tx *db.Tx, e events.Event, d ticketDelivered) error {
		return s.delivered(ctx, tx, d.TicketID)
	})
	events.Handle(c, "orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event, o orderCreated) error {
		return s.lock(ctx, tx, o.Ticket.ID, o.ID, o.UserID, o.ExpiresAt)
	})
	events.Handle(c, "orders", "order:completed", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		return s.sell(ctx, tx, o.Ticket.ID, o.ID, e.CreatedAt)
	})
	events.Handle(c, "orders", "order:cancelled", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		return s.unlock(ctx, tx, o.Ticket.ID, o.ID)
	})
}
