package payments

import (
	"context"
	"fmt"

	"ticketing/db"
	"ticketing/events"
)

// orderEvent is the part of the orders module's order:created,
// order:cancelled, order:completed and order:refunded payloads this module
// reads.
type orderEvent struct {
	ID      string `json:"id"`
	UserID  string `json:"userId"`
	Status  string `json:"status"`
	Version int64  `json:"version"`
	Ticket  struct {
		ID    string `json:"id"`
		Title string `json:"title"`
		Price int64  `json:"price"`
	} `json:"ticket"`
}

// Subscribe registers the handlers for the orders module's events: the
// order replica, and what an order's end means for its money.
func Subscribe(c *events.Consumers, s *Store) {
	decode := func(e events.Event) (orderEvent, error) {
		var o orderEvent
		if err := e.Decode(&o); err != nil {
			return o, fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return o, nil
	}
	c.Handle("orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		o, err := decode(e)
		if err != nil {
			return err
		}
		return s.addOrder(ctx, tx, order{ID: o.ID, UserID: o.UserID, Title: o.Ticket.Title, PriceCents: o.Ticket.Price, Status: orderCreated, Version: o.Version})
	})
	ended := func(status string) events.Handler {
		return func(ctx context.Context, tx *db.Tx, e events.Event) error {
			o, err := decode(e)
			if err != nil {
				return err
			}
			return s.orderEnded(ctx, tx, o.ID, o.Version, status, e.CreatedAt)
		}
	}
	c.Handle("orders", "order:cancelled", ended(orderCancelled))
	c.Handle("orders", "order:completed", ended(orderComplete))
	c.Handle("orders", "order:refunded", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		o, err := decode(e)
		if err != nil {
			return err
		}
		_, err = s.setOrderVersion(ctx, tx, o.ID, o.Version)
		return err
	})
}
