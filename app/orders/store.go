package orders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"ticketing/app/problem"
	"ticketing/db"
	"ticketing/events"
)

// Store is all SQL on orders.db.
type Store struct {
	db  *db.DB
	log *events.Log
	ttl time.Duration
	// Now is the clock; tests replace it.
	Now    func() time.Time
	logger *slog.Logger
}

// NewStore returns the store; ttl is the reservation window.
func NewStore(d *db.DB, log *events.Log, ttl time.Duration, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.Default()
	}
	events.Publishes[orderCreated](log, eventOrderCreated)
	for _, typ := range []string{eventOrderCancelled, eventOrderCompleted, eventOrderRefunded, eventOrderTicketReady} {
		events.Publishes[orderChanged](log, typ)
	}
	return &Store{db: d, log: log, ttl: ttl, Now: time.Now, logger: logger}
}

var (
	errOrderNotFound    = problem.New(problem.NotFound, "Order not found")
	errTicketNotFound   = problem.New(problem.NotFound, "Ticket not found")
	errAlreadyReserved  = problem.New(problem.Conflict, "Ticket is already reserved")
	errCannotCancel     = problem.New(problem.Conflict, "Cannot cancel a completed order")
	errNotYours         = problem.New(problem.Forbidden, "Not authorized")
	errOwnTicket        = &problem.Error{Kind: problem.Invalid, Message: "You cannot buy your own ticket", Fields: map[string]string{"ticketId": "You cannot buy your own ticket"}}
	errTicketIDRequired = &problem.Error{Kind: problem.Invalid, Message: "ticketId must be provided", Fields: map[string]string{"ticketId": "ticketId must be provided"}}
)

const orderColumns = `o.id, o.user_id, o.status, o.expires_at, o.price, o.version, o.created_at, o.updated_at, o.refunded,
	t.id, t.title, t.price, t.user_id, t.version, coalesce(t.show_id, ''), t.section, t.seat_row, t.seat, EXISTS (SELECT 1 FROM delivered d WHERE d.ticket_id = t.id),
	coalesce(sh.title, ''), coalesce(sh.venue, ''), coalesce(sh.city, ''), coalesce(sh.starts_at, ''), coalesce(sh.time_zone, ''), coalesce(sh.version, 0)`

const orderFrom = " FROM orders o JOIN tickets t ON t.id = o.ticket_id LEFT JOIN shows sh ON sh.id = t.show_id"

type scanner interface{ Scan(...any) error }

func scanOrder(row scanner) (Order, error) {
	var o Order
	var expires, created, updated, starts string
	err := row.Scan(&o.ID, &o.UserID, &o.Status, &expires, &o.PriceCents, &o.Version, &created, &updated, &o.Refunded,
		&o.Ticket.ID, &o.Ticket.Title, &o.Ticket.PriceCents, &o.Ticket.UserID, &o.Ticket.Version,
		&o.Ticket.ShowID, &o.Ticket.Section, &o.Ticket.Row, &o.Ticket.Seat, &o.Ticket.Delivered,
		&o.Show.Title, &o.Show.Venue, &o.Show.City, &starts, &o.Show.TimeZone, &o.Show.Version)
	if err != nil {
		return Order{}, err
	}
	o.ExpiresAt, _ = db.ParseTime(expires)
	o.CreatedAt, _ = db.ParseTime(created)
	o.UpdatedAt, _ = db.ParseTime(updated)
	if o.Ticket.ShowID != "" {
		o.Show.ID = o.Ticket.ShowID
		o.Show.StartsAt, _ = db.ParseTime(starts)
	}
	return o, nil
}

// errShowStarted refuses a reservation of a ticket for a show that has
// begun.
var errShowStarted = &problem.Error{Kind: problem.Invalid, Message: "This show has started; its tickets can no longer be reserved",
	Fields: map[string]string{"ticketId": "This show has started; its tickets can no longer be reserved"}}

// Reserve creates an order for the ticket, holding it for the reservation
// window, and appends order:created in the same transaction. There is no
// check-then-insert: the partial unique index on live orders is what turns
// a second reservation into "Ticket is already reserved".
func (s *Store) Reserve(ctx context.Context, userID, ticketID string) (Order, error) {
	if ticketID == "" {
		return Order{}, errTicketIDRequired
	}
	if !db.ValidID(ticketID) {
		return Order{}, errTicketNotFound
	}
	now := s.Now().UTC()
	o := Order{
		ID:        db.NewID(),
		UserID:    userID,
		Status:    Created,
		ExpiresAt: now.Add(s.ttl),
		Version:   1,
		CreatedAt: now,
		UpdatedAt: now,
	}
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		t, err := findTicket(ctx, tx, ticketID)
		if err != nil {
			return err
		}
		if t.UserID == userID {
			return errOwnTicket
		}
		if t.ShowID != "" {
			// The show's start, from this module's own copy, in this
			// transaction: no reservation once it has begun, and none
			// that outlives it.
			sh, err := findShow(ctx, tx, t.ShowID)
			if err != nil {
				return err
			}
			if !now.Before(sh.StartsAt) {
				return errShowStarted
			}
			o.ExpiresAt = minTime(o.ExpiresAt, sh.StartsAt)
			o.Show = sh
		}
		o.Ticket, o.PriceCents = t, t.PriceCents
		_, err = tx.ExecContext(ctx,
			`INSERT INTO orders (id, user_id, ticket_id, status, expires_at, price, version, created_at, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.UserID, t.ID, o.Status, db.Timestamp(o.ExpiresAt), o.PriceCents, o.Version, db.Timestamp(now), db.Timestamp(now))
		if db.IsUniqueViolation(err) {
			return errAlreadyReserved
		}
		if err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		_, err = s.log.Append(ctx, tx, eventOrderCreated, o.ID, o.Version, orderCreated{
			ID: o.ID, UserID: o.UserID, Status: o.Status, ExpiresAt: o.ExpiresAt, Version: o.Version,
			Ticket: ticketRef{ID: t.ID, Title: t.Title, Price: o.PriceCents},
		})
		return err
	})
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func findShow(ctx context.Context, tx *db.Tx, id string) (Show, error) {
	sh := Show{ID: id}
	var starts string
	err := tx.QueryRowContext(ctx, "SELECT title, venue, city, starts_at, time_zone, version FROM shows WHERE id = ?", id).
		Scan(&sh.Title, &sh.Venue, &sh.City, &starts, &sh.TimeZone, &sh.Version)
	if errors.Is(err, sql.ErrNoRows) {
		// The tickets log has show:created before any ticket:created for
		// it, so this copy always has the show of a ticket it has.
		return Show{}, fmt.Errorf("show %s of a ticket: not in the orders module's copy", id)
	}
	if err != nil {
		return Show{}, fmt.Errorf("find show %s: %w", id, err)
	}
	if sh.StartsAt, err = db.ParseTime(starts); err != nil {
		return Show{}, fmt.Errorf("show %s start %q: %w", id, starts, err)
	}
	return sh, nil
}

func findTicket(ctx context.Context, tx *db.Tx, id string) (Ticket, error) {
	var t Ticket
	err := tx.QueryRowContext(ctx, "SELECT id, title, price, user_id, version, coalesce(show_id, ''), section, seat_row, seat FROM tickets WHERE id = ?", id).
		Scan(&t.ID, &t.Title, &t.PriceCents, &t.UserID, &t.Version, &t.ShowID, &t.Section, &t.Row, &t.Seat)
	if errors.Is(err, sql.ErrNoRows) {
		return Ticket{}, errTicketNotFound
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("find ticket %s: %w", id, err)
	}
	return t, nil
}

func findOrder(ctx context.Context, q db.Querier, id string) (Order, error) {
	if !db.ValidID(id) {
		return Order{}, errOrderNotFound
	}
	o, err := scanOrder(q.QueryRowContext(ctx, "SELECT "+orderColumns+orderFrom+" WHERE o.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, errOrderNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("find order %s: %w", id, err)
	}
	return o, nil
}

// Get returns an order.
func (s *Store) Get(ctx context.Context, id string) (Order, error) {
	return findOrder(ctx, s.db.Read(), id)
}

// GetForUser returns an order if it is userID's.
func (s *Store) GetForUser(ctx context.Context, id, userID string) (Order, error) {
	o, err := s.Get(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if o.UserID != userID {
		return Order{}, errNotYours
	}
	return o, nil
}

// ForUser returns a user's orders, newest first.
func (s *Store) ForUser(ctx context.Context, userID string) ([]Order, error) {
	rows, err := s.db.Read().QueryContext(ctx, "SELECT "+orderColumns+orderFrom+" WHERE o.user_id = ? ORDER BY o.created_at DESC, o.id DESC", userID)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	defer rows.Close()
	out := []Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("list orders: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Cancel cancels the buyer's order unless it is complete; cancelling a
// cancelled order changes nothing. The check and the change share one
// transaction, so a payment completing the order cannot slip in between.
func (s *Store) Cancel(ctx context.Context, id, userID string) (Order, error) {
	var o Order
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		var err error
		if o, err = findOrder(ctx, tx, id); err != nil {
			return err
		}
		if o.UserID != userID {
			return errNotYours
		}
		switch o.Status {
		case Complete:
			return errCannotCancel
		case Cancelled:
			return nil
		}
		return s.setStatus(ctx, tx, &o, Cancelled, eventOrderCancelled)
	})
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

// setStatus changes the order's status, bumps its version and appends the
// event announcing it.
func (s *Store) setStatus(ctx context.Context, tx *db.Tx, o *Order, status Status, event string) error {
	o.Status = status
	o.Version++
	o.UpdatedAt = s.Now().UTC()
	_, err := tx.ExecContext(ctx, "UPDATE orders SET status = ?, version = ?, updated_at = ? WHERE id = ?",
		o.Status, o.Version, db.Timestamp(o.UpdatedAt), o.ID)
	if err != nil {
		return fmt.Errorf("set order %s %s: %w", o.ID, status, err)
	}
	_, err = s.log.Append(ctx, tx, event, o.ID, o.Version, orderChanged{ID: o.ID, UserID: o.UserID, Version: o.Version, Ticket: ticketRef{ID: o.Ticket.ID}})
	return err
}

// expire cancels an order whose reservation window ended
// (expiration:complete), unless it is complete or already cancelled.
func (s *Store) expire(ctx context.Context, tx *db.Tx, id string) error {
	o, err := findOrder(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("expire order %s: %w", id, err)
	}
	if !o.Cancellable() {
		return nil
	}
	return s.setStatus(ctx, tx, &o, Cancelled, eventOrderCancelled)
}

// complete marks an order paid (payment:created) inside tx. A cancelled
// order is never completed: the payments module refunds that payment.
// Completing a complete order changes nothing.
func (s *Store) complete(ctx context.Context, tx *db.Tx, id string) error {
	o, err := findOrder(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("complete order %s: %w", id, err)
	}
	switch o.Status {
	case Complete:
		return nil
	case Cancelled:
		s.logger.WarnContext(ctx, "payment for a cancelled order: not completing it", "order", id)
		return nil
	}
	return s.setStatus(ctx, tx, &o, Complete, eventOrderCompleted)
}

// CompleteOrder is complete in a transaction of its own.
func (s *Store) CompleteOrder(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *db.Tx) error { return s.complete(ctx, tx, id) })
}

var errVersionGap = errors.New("version gap")

// copyStep is what applying a version to a copy (a replica row) means.
type copyStep int

const (
	copyInsert copyStep = iota // the copy has none yet, and this is version 1
	copyUpdate                 // this is the version after the copy's
	copySkip                   // the copy has it already (a replay)
)

// nextStep reads the version the copy in table has of id, and says what
// applying version v is: version v goes only over v-1; a repeated or
// older version is ignored, a gap is an error (retried, and shown as a
// stuck consumer if it persists). table is one of this module's copies.
func nextStep(ctx context.Context, tx *db.Tx, table, id string, v int64) (copyStep, error) {
	var have int64
	err := tx.QueryRowContext(ctx, "SELECT version FROM "+table+" WHERE id = ?", id).Scan(&have)
	switch {
	case errors.Is(err, sql.ErrNoRows) && v == 1:
		return copyInsert, nil
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("%s %s version %d before version 1: %w", table, id, v, errVersionGap)
	case err != nil:
		return 0, fmt.Errorf("read %s %s: %w", table, id, err)
	case v <= have:
		return copySkip, nil
	case v > have+1:
		return 0, fmt.Errorf("%s %s version %d over %d: %w", table, id, v, have, errVersionGap)
	}
	return copyUpdate, nil
}

// applyTicket keeps the copy of a ticket (ticket:created, ticket:updated).
func (s *Store) applyTicket(ctx context.Context, tx *db.Tx, t Ticket) error {
	step, err := nextStep(ctx, tx, "tickets", t.ID, t.Version)
	switch {
	case err != nil || step == copySkip:
		return err
	case step == copyInsert:
		_, err = tx.ExecContext(ctx, "INSERT INTO tickets (id, title, price, user_id, version, show_id, section, seat_row, seat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			t.ID, t.Title, t.PriceCents, t.UserID, t.Version, optionalString(t.ShowID), t.Section, t.Row, t.Seat)
		return err
	}
	_, err = tx.ExecContext(ctx, "UPDATE tickets SET title = ?, price = ?, user_id = ?, version = ?, show_id = ?, section = ?, seat_row = ?, seat = ? WHERE id = ?",
		t.Title, t.PriceCents, t.UserID, t.Version, optionalString(t.ShowID), t.Section, t.Row, t.Seat, t.ID)
	return err
}

// delivered records that the ticket's seller attached it
// (ticket:delivered); when it had sold already, its order's page is told
// (order:ticket-ready).
func (s *Store) delivered(ctx context.Context, tx *db.Tx, ticketID string) error {
	res, err := tx.ExecContext(ctx, "INSERT INTO delivered (ticket_id) VALUES (?) ON CONFLICT DO NOTHING", ticketID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // replaced before the sale, or a replay
	}
	var id string
	err = tx.QueryRowContext(ctx, "SELECT id FROM orders WHERE ticket_id = ? AND status = ?", ticketID, Complete).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sale of ticket %s: %w", ticketID, err)
	}
	o, err := findOrder(ctx, tx, id)
	if err != nil {
		return err
	}
	_, err = s.log.Append(ctx, tx, eventOrderTicketReady, o.ID, o.Version, orderChanged{ID: o.ID, UserID: o.UserID, Version: o.Version, Ticket: ticketRef{ID: o.Ticket.ID}})
	return err
}

// applyShow keeps the copy of a show (show:created, show:updated).
func (s *Store) applyShow(ctx context.Context, tx *db.Tx, sh Show) error {
	step, err := nextStep(ctx, tx, "shows", sh.ID, sh.Version)
	switch {
	case err != nil || step == copySkip:
		return err
	case step == copyInsert:
		_, err = tx.ExecContext(ctx, "INSERT INTO shows (id, title, venue, city, starts_at, time_zone, version) VALUES (?, ?, ?, ?, ?, ?, ?)",
			sh.ID, sh.Title, sh.Venue, sh.City, db.Timestamp(sh.StartsAt), sh.TimeZone, sh.Version)
		return err
	}
	_, err = tx.ExecContext(ctx, "UPDATE shows SET title = ?, venue = ?, city = ?, starts_at = ?, time_zone = ?, version = ? WHERE id = ?",
		sh.Title, sh.Venue, sh.City, db.Timestamp(sh.StartsAt), sh.TimeZone, sh.Version, sh.ID)
	return err
}

// optionalString is NULL for "".
func optionalString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// markRefunded records that a payment for the order was refunded
// (payment:refunded), as a change of the order's own: version bumped and
// order:refunded appended, so whoever follows the order (its page's
// stream, the payments module's copy) learns it from this module's log.
// The order's status does not change: a refunded payment is one the order
// never took.
func (s *Store) markRefunded(ctx context.Context, tx *db.Tx, id string) error {
	o, err := findOrder(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("mark order %s refunded: %w", id, err)
	}
	if o.Refunded {
		return nil
	}
	o.Refunded = true
	o.Version++
	o.UpdatedAt = s.Now().UTC()
	if _, err := tx.ExecContext(ctx, "UPDATE orders SET refunded = 1, version = ?, updated_at = ? WHERE id = ?",
		o.Version, db.Timestamp(o.UpdatedAt), o.ID); err != nil {
		return fmt.Errorf("mark order %s refunded: %w", id, err)
	}
	_, err = s.log.Append(ctx, tx, eventOrderRefunded, o.ID, o.Version, orderChanged{ID: o.ID, UserID: o.UserID, Version: o.Version, Ticket: ticketRef{ID: o.Ticket.ID}})
	return err
}
