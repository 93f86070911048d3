package mail

import (
	"context"
	"time"

	"ticketing/db"
	"ticketing/events"
)

// The parts of other modules' payloads this module reads.
type (
	// userCreated is auth's user:created.
	userCreated struct {
		ID          string `json:"id"`
		Email       string `json:"email"`
		DisplayName string `json:"displayName"`
	}
	// userRenamed is auth's user:renamed.
	userRenamed struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
	}
	// ticketChanged is the tickets module's ticket:created and
	// ticket:updated.
	ticketChanged struct {
		ID      string `json:"id"`
		Title   string `json:"title"`
		UserID  string `json:"userId"`
		Version int64  `json:"version"`
		ShowID  string `json:"showId"`
		Section string `json:"section"`
		Row     string `json:"row"`
		Seat    string `json:"seat"`
	}
	// showChanged is the tickets module's show:created and show:updated.
	showChanged struct {
		ID       string    `json:"id"`
		Title    string    `json:"title"`
		Venue    string    `json:"venue"`
		City     string    `json:"city"`
		StartsAt time.Time `json:"startsAt"`
		TimeZone string    `json:"timeZone"`
		Version  int64     `json:"version"`
	}
	// ticketDelivered is the delivery module's ticket:delivered.
	ticketDelivered struct {
		TicketID string `json:"ticketId"`
	}
	// resetRequested is auth's password:reset-requested.
	resetRequested struct {
		ID     string `json:"id"`
		UserID string `json:"userId"`
	}
	// orderCreated is the orders module's order:created.
	orderCreated struct {
		ID        string    `json:"id"`
		UserID    string    `json:"userId"`
		ExpiresAt time.Time `json:"expiresAt"`
		Ticket    struct {
			ID    string `json:"id"`
			Price int64  `json:"price"`
		} `json:"ticket"`
	}
	// orderChanged is the orders module's order:completed,
	// order:cancelled and order:refunded.
	orderChanged struct {
		ID string `json:"id"`
	}
)

// Subscribe registers the handlers: who people are, what tickets and
// shows are, and the order events that call for a message.
func Subscribe(c *events.Consumers, s *Store) {
	events.Handle(c, "auth", "user:created", func(ctx context.Context, tx *db.Tx, e events.Event, u userCreated) error {
		return s.addRecipient(ctx, tx, u.ID, u.Email, u.DisplayName)
	})
	events.Handle(c, "auth", "user:renamed", func(ctx context.Context, tx *db.Tx, e events.Event, u userRenamed) error {
		return s.renameRecipient(ctx, tx, u.ID, u.DisplayName)
	})
	events.Handle(c, "auth", "password:reset-requested", func(ctx context.Context, tx *db.Tx, e events.Event, r resetRequested) error {
		return s.resetRequested(ctx, tx, r)
	})
	ticket := func(ctx context.Context, tx *db.Tx, e events.Event, t ticketChanged) error {
		return s.applyTicket(ctx, tx, t)
	}
	events.Handle(c, "tickets", "ticket:created", ticket)
	events.Handle(c, "tickets", "ticket:updated", ticket)
	show := func(ctx context.Context, tx *db.Tx, e events.Event, sh showChanged) error {
		return s.applyShow(ctx, tx, sh)
	}
	events.Handle(c, "tickets", "show:created", show)
	events.Handle(c, "tickets", "show:updated", show)
	events.Handle(c, "delivery", "ticket:delivered", func(ctx context.Context, tx *db.Tx, e events.Event, d ticketDelivered) error {
		return s.deliveredTicket(ctx, tx, d.TicketID)
	})
	events.Handle(c, "orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event, o orderCreated) error {
		return s.addOrder(ctx, tx, o, e.CreatedAt)
	})
	events.Handle(c, "orders", "order:completed", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		return s.completed(ctx, tx, o.ID)
	})
	events.Handle(c, "orders", "order:cancelled", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		return s.setStatus(ctx, tx, o.ID, "cancelled")
	})
	events.Handle(c, "orders", "order:refunded", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		return s.refunded(ctx, tx, o.ID)
	})
}
