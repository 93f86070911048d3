package payments

import (
	"context"
	"errors"
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

var errVersionGap = errors.New("order version gap")

// Subscribe registers the handlers for the orders module's events: the
// order replica, and what an order's end means for its money.
func Subscribe(c *events.Consumers, s *Store) {
	c.Handle("orders", "order:created", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		var o orderEvent
		if err := e.Decode(&o); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO orders (id, user_id, title, price, status, version) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
			o.ID, o.UserID, o.Ticket.Title, o.Ticket.Price, orderCreated, o.Version)
		return err
	})
	c.Handle("orders", "order:cancelled", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		return s.orderEnded(ctx, tx, e, orderCancelled)
	})
	c.Handle("orders", "order:completed", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		return s.orderEnded(ctx, tx, e, orderComplete)
	})
	c.Handle("orders", "order:refunded", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		_, _, err := s.applyOrderVersion(ctx, tx, e)
		return err
	})
}

// applyOrderVersion takes the order's copy to the event's version (v only
// over v-1) and reports whether it moved; a repeated event is no change.
func (s *Store) applyOrderVersion(ctx context.Context, tx *db.Tx, e events.Event) (orderEvent, bool, error) {
	var o orderEvent
	if err := e.Decode(&o); err != nil {
		return o, false, fmt.Errorf("decode %s: %w", e.Type, err)
	}
	var have int64
	if err := tx.QueryRowContext(ctx, "SELECT version FROM orders WHERE id = ?", o.ID).Scan(&have); err != nil {
		return o, false, fmt.Errorf("%s for order %s: %w", e.Type, o.ID, err)
	}
	if o.Version <= have {
		return o, false, nil // applied before
	}
	if o.Version > have+1 {
		return o, false, fmt.Errorf("order %s version %d over %d: %w", o.ID, o.Version, have, errVersionGap)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE orders SET version = ? WHERE id = ?", o.Version, o.ID); err != nil {
		return o, false, fmt.Errorf("update order %s: %w", o.ID, err)
	}
	return o, true, nil
}

// orderEnded applies order:cancelled or order:completed (version v only
// over v-1). Its open Checkout Sessions are to be expired; if it was
// cancelled, any payment kept for it is to be refunded: the payment raced
// the cancellation, and the orders module did not complete the order.
func (s *Store) orderEnded(ctx context.Context, tx *db.Tx, e events.Event, status string) error {
	o, moved, err := s.applyOrderVersion(ctx, tx, e)
	if err != nil || !moved {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE orders SET status = ? WHERE id = ?", status, o.ID); err != nil {
		return fmt.Errorf("update order %s: %w", o.ID, err)
	}
	res, err := tx.ExecContext(ctx, "UPDATE checkout_sessions SET status = ? WHERE order_id = ? AND status = ?", sessionExpirePending, o.ID, sessionOpen)
	if err != nil {
		return fmt.Errorf("expire sessions of order %s: %w", o.ID, err)
	}
	work, _ := res.RowsAffected()
	if status == orderCancelled {
		res, err := tx.ExecContext(ctx, "UPDATE payments SET status = 'refund_pending', updated_at = ? WHERE order_id = ? AND status = 'succeeded'",
			db.Timestamp(e.CreatedAt), o.ID)
		if err != nil {
			return fmt.Errorf("refund payments of order %s: %w", o.ID, err)
		}
		n, _ := res.RowsAffected()
		work += n
		if n > 0 {
			s.logger.Warn("payment arrived for an order that was cancelled; refunding", "order", o.ID)
		}
	}
	if work > 0 {
		tx.AfterCommit(s.wake)
	}
	return nil
}
