package expiration

import (
	"context"
	"fmt"
	"time"

	"ticketing/db"
	"ticketing/events"
)

// Store is all SQL on expiration.db.
type Store struct {
	db  *db.DB
	log *events.Log
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewStore returns the store.
func NewStore(d *db.DB, log *events.Log) *Store {
	events.Publishes[deadlinePassed](log, eventDeadlinePassed)
	return &Store{db: d, log: log, Now: time.Now}
}

// sweepBatch bounds one sweep transaction, so ten thousand deadlines due
// at once do not hold the writer in one long transaction.
const sweepBatch = 500

// SweepOnce appends expiration:complete for every deadline that has passed
// and deletes those deadlines, each batch in one transaction. It returns
// how many it swept.
func (s *Store) SweepOnce(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.sweepBatch(ctx, s.Now())
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

func (s *Store) sweepBatch(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, "SELECT order_id FROM deadlines WHERE expires_at <= ? ORDER BY expires_at LIMIT ?", db.Timestamp(now), sweepBatch)
		if err != nil {
			return fmt.Errorf("find due deadlines: %w", err)
		}
		var due []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			due = append(due, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range due {
			if _, err := s.log.Append(ctx, tx, eventDeadlinePassed, id, 1, deadlinePassed{OrderID: id}); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM deadlines WHERE order_id = ?", id); err != nil {
				return fmt.Errorf("delete deadline %s: %w", id, err)
			}
		}
		n = len(due)
		return nil
	})
	return n, err
}

// Pending returns how many deadlines are scheduled.
func (s *Store) Pending(ctx context.Context) (int, error) {
	var n int
	err := s.db.Read().QueryRowContext(ctx, "SELECT count(*) FROM deadlines").Scan(&n)
	return n, err
}

func (s *Store) schedule(ctx context.Context, tx *db.Tx, orderID string, at time.Time) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO deadlines (order_id, expires_at) VALUES (?, ?) ON CONFLICT (order_id) DO NOTHING",
		orderID, db.Timestamp(at))
	if err != nil {
		return fmt.Errorf("schedule deadline of %s: %w", orderID, err)
	}
	return nil
}

func (s *Store) forget(ctx context.Context, tx *db.Tx, orderID string) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM deadlines WHERE order_id = ?", orderID); err != nil {
		return fmt.Errorf("forget deadline of %s: %w", orderID, err)
	}
	return nil
}
