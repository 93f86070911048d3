package orders

import (
	"context"
	"time"

	"ticketing/db"
	"ticketing/events"
)

// The parts of other modules' payloads this module reads.
type (
	// ticketChanged is the tickets module's ticket:created and
	// ticket:updated (prices in cents).
	ticketChanged struct {
		ID      string `json:"id"`
		Title   string `json:"title"`
		Price   int64  `json:"price"`
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
	// deadlinePassed is the expiration module's expiration:complete.
	deadlinePassed struct {
		OrderID string `json:"orderId"`
	}
	// paymentChanged is the payments module's payment:created and
	// payment:refunded.
	paymentChanged struct {
		OrderID string `json:"orderId"`
	}
)

// Subscribe registers the handlers for the tickets, expiration and
// payments modules' events: the ticket replica, cancelling orders whose
// time ran out, and what payments mean for an order.
func Subscribe(c *events.Consumers, s *Store) {
	applyTicket := func(ctx context.Context, tx *db.Tx, e events.Event, t ticketChanged) error {
		return s.applyTicket(ctx, tx, Ticket{ID: t.ID, Title: t.Title, PriceCents: t.Price, UserID: t.UserID, Version: t.Version,
			ShowID: t.ShowID, Section: t.Section, Row: t.Row, Seat: t.Seat})
	}
	events.Handle(c, "tickets", "ticket:created", applyTicket)
	events.Handle(c, "tickets", "ticket:updated", applyTicket)
	applyShow := func(ctx context.Context, tx *db.Tx, e events.Event, sh showChanged) error {
		return s.applyShow(ctx, tx, Show(sh))
	}
	events.Handle(c, "tickets", "show:created", applyShow)
	events.Handle(c, "tickets", "show:updated", applyShow)
	events.Handle(c, "delivery", "ticket:delivered", func(ctx context.Context, tx *db.Tx, e events.Event, d ticketDelivered) error {
		return s.delivered(ctx, tx, d.TicketID)
	})
	events.Handle(c, "expiration", "expiration:complete", func(ctx context.Context, tx *db.Tx, e events.Event, x deadlinePassed) error {
		return s.expire(ctx, tx, x.OrderID)
	})
	// payment:created completes the order (unless it was cancelled);
	// payment:refunded marks it refunded.
	events.Handle(c, "payments", "payment:created", func(ctx context.Context, tx *db.Tx, e events.Event, p paymentChanged) error {
		return s.complete(ctx, tx, p.OrderID)
	})
	events.Handle(c, "payments", "payment:refunded", func(ctx context.Context, tx *db.Tx, e events.Event, p paymentChanged) error {
		return s.markRefunded(ctx, tx, p.OrderID)
	})
}
