package payments

import (
	"context"

	"ticketing/db"
	"ticketing/events"
)

// The parts of the orders module's payloads this module reads.
type (
	// orderCreated is order:created.
	orderCreated struct {
		ID      string `json:"id"`
		UserID  string `json:"userId"`
		Version int64  `json:"version"`
		Ticket  struct {
			Title string `json:"title"`
			Price int64  `json:"price"`
		} `json:"ticket"`
	}
	// orderChanged is order:cancelled, order:completed and
	// order:refunded.
	orderChanged struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	}
)

// Subscribe registers the handlers for the orders module's events: the
// order replica, and what an order's end means for its money.
func Subscribe(c *events.Consumers, s *Store) {
	events.Handle(c, "orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event, o orderCreated) error {
		return s.addOrder(ctx, tx, order{ID: o.ID, UserID: o.UserID, Title: o.Ticket.Title, PriceCents: o.Ticket.Price, Status: orderStatusCreated, Version: o.Version})
	})
	ended := func(status string) func(context.Context, *db.Tx, events.Event, orderChanged) error {
		return func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
			return s.orderEnded(ctx, tx, o.ID, o.Version, status, e.CreatedAt)
		}
	}
	events.Handle(c, "orders", "order:cancelled", ended(orderStatusCancelled))
	events.Handle(c, "orders", "order:completed", ended(orderStatusComplete))
	events.Handle(c, "orders", "order:refunded", func(ctx context.Context, tx *db.Tx, e events.Event, o orderChanged) error {
		_, err := s.setOrderVersion(ctx, tx, o.ID, o.Version)
		return err
	})
}
