package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"ticketing/app/problem"
	"ticketing/db"
	"ticketing/events"
)

// Store is all SQL on payments.db, and the calls to the gateway that go
// with it.
type Store struct {
	db      *db.DB
	log     *events.Log
	gateway Gateway
	waiter  Waiter
	logger  *slog.Logger
	// kick wakes the worker after a commit that left work for it.
	kick chan struct{}
}

// NewStore returns the store; w (the event bus) lets a direct charge wait
// for the order's outcome.
func NewStore(d *db.DB, log *events.Log, g Gateway, w Waiter, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.Default()
	}
	events.Publishes[paymentCreated](log, eventPaymentCreated)
	events.Publishes[paymentRefunded](log, eventPaymentRefunded)
	return &Store{db: d, log: log, gateway: g, waiter: w, logger: logger, kick: make(chan struct{}, 1)}
}

// Gateway is the processor the store calls.
func (s *Store) Gateway() Gateway { return s.gateway }

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

var (
	errOrderNotFound = problem.New(problem.NotFound, "Order not found")
	errNotYours      = problem.New(problem.Forbidden, "Not authorized")
	errCancelled     = problem.New(problem.Invalid, "Cannot pay for an cancelled order")
	errAlreadyPaid   = problem.New(problem.Invalid, "Order already paid")
)

func findOrder(ctx context.Context, q db.Querier, id string) (order, error) {
	var o order
	err := q.QueryRowContext(ctx, "SELECT id, user_id, title, price, status, version FROM orders WHERE id = ?", id).
		Scan(&o.ID, &o.UserID, &o.Title, &o.PriceCents, &o.Status, &o.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return order{}, errOrderNotFound
	}
	if err != nil {
		return order{}, fmt.Errorf("find order %s: %w", id, err)
	}
	return o, nil
}

// order returns the module's copy of an order.
func (s *Store) order(ctx context.Context, id string) (order, error) {
	if !db.ValidID(id) {
		return order{}, errOrderNotFound
	}
	return findOrder(ctx, s.db.Read(), id)
}

// payableOrder returns the user's order if it can be paid: 404, 401 (not
// the owner), then the status checks of the seed's payment route.
func (s *Store) payableOrder(ctx context.Context, id, userID string) (order, error) {
	o, err := s.order(ctx, id)
	if err != nil {
		return order{}, err
	}
	if o.UserID != userID {
		return order{}, errNotYours
	}
	switch o.Status {
	case orderStatusCancelled:
		return order{}, errCancelled
	case orderStatusComplete:
		return order{}, errAlreadyPaid
	}
	return o, nil
}

// received is money Stripe (or the test gateway) says was paid.
type received struct {
	OrderID       string
	PaymentIntent string
	SessionID     string
	AmountCents   int64
	Currency      string // as Stripe reports it: "usd"
	// EventID and EventType name the Stripe event that reported it, if
	// any; the event id is recorded in the same transaction, so a second
	// delivery changes nothing.
	EventID   string
	EventType string
}

// outcome is what recording a payment did.
type outcome int

// The outcomes.
const (
	duplicate outcome = iota // seen before: nothing changed
	kept                     // recorded; payment:created appended
	refunding                // recorded for refund: the order cannot take it
)

// record records money received, once. If the order can still be paid the
// payment is kept and payment:created appended (the orders module then
// completes the order); if the order is cancelled, unknown, or already has
// a kept payment, the payment is recorded as refund_pending. Either way in
// one transaction with the Stripe event id.
func (s *Store) record(ctx context.Context, r received) (Payment, outcome, error) {
	var (
		p   Payment
		out outcome
	)
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		if r.EventID != "" {
			res, err := tx.ExecContext(ctx, "INSERT INTO stripe_events (id, type, received_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
				r.EventID, r.EventType, db.Timestamp(time.Now()))
			if err != nil {
				return fmt.Errorf("record stripe event %s: %w", r.EventID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				out = duplicate
				p, _ = findPaymentByStripeID(ctx, tx, r.PaymentIntent)
				return nil
			}
		}
		if existing, err := findPaymentByStripeID(ctx, tx, r.PaymentIntent); err == nil {
			p, out = existing, duplicate // reported by another event, or reconciled
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}

		now := time.Now().UTC()
		p = Payment{ID: db.NewID(), OrderID: r.OrderID, StripeID: r.PaymentIntent, SessionID: r.SessionID, AmountCents: r.AmountCents, Status: succeeded, CreatedAt: now}
		o, err := findOrder(ctx, tx, r.OrderID)
		switch {
		case errors.Is(err, errOrderNotFound):
			p.Status = refundPending
		case err != nil:
			return err
		case !o.Payable():
			p.Status = refundPending
		case r.AmountCents != o.PriceCents || !strings.EqualFold(r.Currency, currency):
			// Never complete an order for less (or other money) than its
			// price: a tampered or misconfigured session goes back.
			s.logger.Warn("payment does not match its order's price; refunding it",
				"order", o.ID, "payment_intent", r.PaymentIntent, "amount", r.AmountCents, "currency", r.Currency,
				"price", o.PriceCents, "price_currency", currency)
			p.Status = refundPending
		}
		var session any
		if p.SessionID != "" {
			session = p.SessionID
		}
		insert := func() error {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO payments (id, order_id, stripe_id, session_id, amount, status, created_at, updated_at)
				 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				p.ID, p.OrderID, p.StripeID, session, p.AmountCents, p.Status, db.Timestamp(now), db.Timestamp(now))
			return err
		}
		err = insert()
		if db.IsUniqueViolation(err) && p.Status == succeeded {
			// The order already has a kept payment: this one goes back.
			p.Status = refundPending
			err = insert()
		}
		if err != nil {
			return fmt.Errorf("insert payment for order %s: %w", r.OrderID, err)
		}
		if p.SessionID != "" {
			if _, err := tx.ExecContext(ctx, "UPDATE checkout_sessions SET status = ? WHERE id = ?", sessionComplete, p.SessionID); err != nil {
				return fmt.Errorf("complete session %s: %w", p.SessionID, err)
			}
		}
		if p.Status == refundPending {
			out = refunding
			tx.AfterCommit(s.wake)
			return nil
		}
		out = kept
		_, err = s.log.Append(ctx, tx, eventPaymentCreated, p.ID, 1, paymentCreated{ID: p.ID, OrderID: p.OrderID, StripeID: p.StripeID})
		return err
	})
	if err != nil {
		return Payment{}, 0, err
	}
	return p, out, nil
}

// Waiter is what a direct charge needs from events.Bus to answer only once
// the order's outcome is known.
type Waiter interface {
	Settle(ctx context.Context)
	WaitHead(ctx context.Context, source string) error
}

// charge is the seed's direct charge of userID's order with a card token.
// It returns the payment only once the orders module has completed the
// order; if the order was cancelled while the card was charged, the charge
// is refunded and the answer is the reason (cancelled, or already paid by
// another payment), so a client never sees both a cancelled order and a
// successful payment. A declined card is PaymentRequired.
func (s *Store) charge(ctx context.Context, userID, orderID, token string) (Payment, error) {
	o, err := s.payableOrder(ctx, orderID, userID)
	if err != nil {
		return Payment{}, err
	}
	pi, err := s.gateway.Charge(ctx, chargeParams{OrderID: o.ID, AmountCents: o.PriceCents, Token: token, Key: "charge-" + o.ID + "-" + token})
	if errors.Is(err, errDeclined) {
		return Payment{}, problem.New(problem.PaymentRequired, "Your card was declined")
	}
	if err != nil {
		return Payment{}, err
	}
	p, _, err := s.record(ctx, received{OrderID: o.ID, PaymentIntent: pi, AmountCents: o.PriceCents, Currency: currency})
	if err != nil {
		return Payment{}, err
	}
	if p.Status == succeeded {
		// Let orders decide, then let our copy of the order learn it.
		s.waiter.Settle(ctx)
		if err := s.waiter.WaitHead(ctx, "orders"); err != nil {
			return Payment{}, err
		}
		if o, err = s.order(ctx, o.ID); err != nil {
			return Payment{}, err
		}
		if o.Status == orderStatusComplete {
			return p, nil
		}
		// Cancelled meanwhile: the order:cancelled handler marked the
		// payment for refund.
		ps, err := s.ForOrder(ctx, o.ID)
		if err != nil {
			return Payment{}, err
		}
		for _, q := range ps {
			if q.StripeID == pi {
				p = q
			}
		}
	}
	if err := s.refundPayment(ctx, p); err != nil {
		s.logger.Error("refund after a refused charge failed; the worker retries", "err", err)
	}
	if cur, err := s.order(ctx, o.ID); err == nil {
		o = cur // say why as of now: cancelled meanwhile, or paid by another payment
	}
	if o.Status == orderStatusComplete {
		return Payment{}, errAlreadyPaid
	}
	return Payment{}, errCancelled
}

const paymentColumns = "id, order_id, stripe_id, coalesce(session_id, ''), amount, status, coalesce(refund_id, ''), created_at"

func scanPayment(row interface{ Scan(...any) error }) (Payment, error) {
	var p Payment
	var created string
	err := row.Scan(&p.ID, &p.OrderID, &p.StripeID, &p.SessionID, &p.AmountCents, &p.Status, &p.RefundID, &created)
	p.CreatedAt, _ = db.ParseTime(created)
	return p, err
}

func findPaymentByStripeID(ctx context.Context, q db.Querier, stripeID string) (Payment, error) {
	return scanPayment(q.QueryRowContext(ctx, "SELECT "+paymentColumns+" FROM payments WHERE stripe_id = ?", stripeID))
}

// ForOrder returns the payments recorded for an order, oldest first.
func (s *Store) ForOrder(ctx context.Context, orderID string) ([]Payment, error) {
	return s.payments(ctx, "SELECT "+paymentColumns+" FROM payments WHERE order_id = ? ORDER BY created_at, id", orderID)
}

// pendingRefunds returns the payments waiting to be refunded, for the
// worker.
func (s *Store) pendingRefunds(ctx context.Context) ([]Payment, error) {
	return s.payments(ctx, "SELECT "+paymentColumns+" FROM payments WHERE status = ? ORDER BY created_at LIMIT 100", refundPending)
}

// payments runs a whole query that selects paymentColumns.
func (s *Store) payments(ctx context.Context, query string, args ...any) ([]Payment, error) {
	rows, err := s.db.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read payments: %w", err)
	}
	defer rows.Close()
	var out []Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// refundPayment carries out a pending refund through the gateway and
// records it, appending payment:refunded. A payment that is not pending is
// left alone; two callers at once send the same idempotency key, so Stripe
// makes one refund, and only one of them records it.
func (s *Store) refundPayment(ctx context.Context, p Payment) error {
	if p.Status != refundPending {
		return nil
	}
	refundID, err := s.gateway.Refund(ctx, p.StripeID, "refund-"+p.ID)
	if err != nil {
		return fmt.Errorf("refund payment %s of order %s: %w", p.ID, p.OrderID, err)
	}
	return s.db.Tx(ctx, func(tx *db.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE payments SET status = 'refunded', refund_id = ?, updated_at = ? WHERE id = ? AND status = 'refund_pending'",
			refundID, db.Timestamp(time.Now()), p.ID)
		if err != nil {
			return fmt.Errorf("record refund of payment %s: %w", p.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		s.logger.Info("payment refunded", "payment", p.ID, "order", p.OrderID, "refund", refundID)
		_, err = s.log.Append(ctx, tx, eventPaymentRefunded, p.ID, 2, paymentRefunded{ID: p.ID, OrderID: p.OrderID, RefundID: refundID})
		return err
	})
}

// OpenSession returns the order's open Checkout Session, if it has one,
// and the number of attempts so far.
func (s *Store) OpenSession(ctx context.Context, orderID string) (Session, int, error) {
	var attempts int
	if err := s.db.Read().QueryRowContext(ctx, "SELECT count(*) FROM checkout_sessions WHERE order_id = ?", orderID).Scan(&attempts); err != nil {
		return Session{}, 0, fmt.Errorf("count sessions of order %s: %w", orderID, err)
	}
	var sess Session
	err := s.db.Read().QueryRowContext(ctx, "SELECT id, url, status FROM checkout_sessions WHERE order_id = ? AND status = ? ORDER BY attempt DESC LIMIT 1", orderID, sessionOpen).
		Scan(&sess.ID, &sess.URL, &sess.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, attempts, nil
	}
	if err != nil {
		return Session{}, 0, fmt.Errorf("open session of order %s: %w", orderID, err)
	}
	return sess, attempts, nil
}

// checkout returns an open checkout Session for the order, creating one
// (attempt n+1, with its own idempotency key) when there is none.
func (s *Store) checkout(ctx context.Context, o order, successURL, cancelURL string) (Session, error) {
	open, attempts, err := s.OpenSession(ctx, o.ID)
	if err != nil || open.ID != "" {
		return open, err
	}
	sess, err := s.gateway.CreateCheckoutSession(ctx, checkoutParams{
		OrderID: o.ID, Attempt: attempts + 1, Title: o.Title, AmountCents: o.PriceCents,
		SuccessURL: successURL, CancelURL: cancelURL,
	})
	if err != nil {
		return Session{}, err
	}
	err = s.db.Tx(ctx, func(tx *db.Tx) error {
		// The order may have ended while Stripe answered: then the new
		// session is expired right away by the worker.
		cur, err := findOrder(ctx, tx, o.ID)
		if err != nil {
			return err
		}
		status := sessionOpen
		if !cur.Payable() {
			status = sessionExpirePending
			tx.AfterCommit(s.wake)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO checkout_sessions (id, order_id, attempt, url, status, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
			sess.ID, o.ID, attempts+1, sess.URL, status, db.Timestamp(time.Now()))
		if err != nil {
			return fmt.Errorf("record session %s: %w", sess.ID, err)
		}
		if status != sessionOpen {
			return errCancelled
		}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return sess, nil
}

// SessionInfo is a session with its order, for the test checkout page.
type SessionInfo struct {
	Session Session
	Order   order
}

var errSessionNotFound = problem.New(problem.NotFound, "Checkout session not found")

// buyersSession returns a test checkout session and its order, only to the
// order's owner: anyone else gets the same 404 as for a session that does
// not exist, so a session's page and its Pay button are the buyer's alone.
func (s *Store) buyersSession(ctx context.Context, id, userID string) (SessionInfo, error) {
	info, err := s.SessionByID(ctx, id)
	if err != nil {
		return SessionInfo{}, err
	}
	if userID == "" || info.Order.UserID != userID {
		return SessionInfo{}, errSessionNotFound
	}
	return info, nil
}

// SessionByID returns a Checkout Session we created and its order.
func (s *Store) SessionByID(ctx context.Context, id string) (SessionInfo, error) {
	var info SessionInfo
	var orderID string
	err := s.db.Read().QueryRowContext(ctx, "SELECT id, url, status, order_id FROM checkout_sessions WHERE id = ?", id).
		Scan(&info.Session.ID, &info.Session.URL, &info.Session.Status, &orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return SessionInfo{}, errSessionNotFound
	}
	if err != nil {
		return SessionInfo{}, fmt.Errorf("find session %s: %w", id, err)
	}
	info.Order, err = findOrder(ctx, s.db.Read(), orderID)
	return info, err
}

// pendingExpiries returns the Checkout Sessions waiting to be expired
// through the API, for the worker.
func (s *Store) pendingExpiries(ctx context.Context) ([]string, error) {
	rows, err := s.db.Read().QueryContext(ctx, "SELECT id FROM checkout_sessions WHERE status = ? ORDER BY created_at LIMIT 100", sessionExpirePending)
	if err != nil {
		return nil, fmt.Errorf("pending session expiries: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// markSessionExpired records that a session the worker expired is gone.
func (s *Store) markSessionExpired(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE checkout_sessions SET status = ? WHERE id = ? AND status = ?", sessionExpired, id, sessionExpirePending)
		return err
	})
}

// addOrder adds an order to the module's copy (order:created); a repeated
// event changes nothing.
func (s *Store) addOrder(ctx context.Context, tx *db.Tx, o order) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO orders (id, user_id, title, price, status, version) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		o.ID, o.UserID, o.Title, o.PriceCents, o.Status, o.Version)
	if err != nil {
		return fmt.Errorf("copy order %s: %w", o.ID, err)
	}
	return nil
}

var errVersionGap = errors.New("order version gap")

// setOrderVersion takes the order's copy to version (v only over v-1)
// and reports whether it moved; a repeated event is no change, a gap an
// error (the consumer retries it).
func (s *Store) setOrderVersion(ctx context.Context, tx *db.Tx, id string, version int64) (bool, error) {
	var have int64
	if err := tx.QueryRowContext(ctx, "SELECT version FROM orders WHERE id = ?", id).Scan(&have); err != nil {
		return false, fmt.Errorf("version of order %s: %w", id, err)
	}
	if version <= have {
		return false, nil // applied before
	}
	if version > have+1 {
		return false, fmt.Errorf("order %s version %d over %d: %w", id, version, have, errVersionGap)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE orders SET version = ? WHERE id = ?", version, id); err != nil {
		return false, fmt.Errorf("update order %s: %w", id, err)
	}
	return true, nil
}

// orderEnded applies order:cancelled or order:completed at version. Its
// open Checkout Sessions are to be expired; if it was cancelled, any
// payment kept for it is to be refunded: the payment raced the
// cancellation, and the orders module did not complete the order.
func (s *Store) orderEnded(ctx context.Context, tx *db.Tx, id string, version int64, status string, at time.Time) error {
	moved, err := s.setOrderVersion(ctx, tx, id, version)
	if err != nil || !moved {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE orders SET status = ? WHERE id = ?", status, id); err != nil {
		return fmt.Errorf("update order %s: %w", id, err)
	}
	res, err := tx.ExecContext(ctx, "UPDATE checkout_sessions SET status = ? WHERE order_id = ? AND status = ?", sessionExpirePending, id, sessionOpen)
	if err != nil {
		return fmt.Errorf("expire sessions of order %s: %w", id, err)
	}
	work, _ := res.RowsAffected()
	if status == orderStatusCancelled {
		res, err := tx.ExecContext(ctx, "UPDATE payments SET status = ?, updated_at = ? WHERE order_id = ? AND status = ?",
			refundPending, db.Timestamp(at), id, succeeded)
		if err != nil {
			return fmt.Errorf("refund payments of order %s: %w", id, err)
		}
		n, _ := res.RowsAffected()
		work += n
		if n > 0 {
			s.logger.Warn("payment arrived for an order that was cancelled; refunding", "order", id)
		}
	}
	if work > 0 {
		tx.AfterCommit(s.wake)
	}
	return nil
}

// For CheckInvariants, which reads two modules' files: every payment in
// payments.db, and every order's status in the orders module's own file.

func allPayments(ctx context.Context, paymentsDB *db.DB) ([]Payment, error) {
	rows, err := paymentsDB.Read().QueryContext(ctx, "SELECT id, order_id, status FROM payments")
	if err != nil {
		return nil, fmt.Errorf("read payments: %w", err)
	}
	defer rows.Close()
	var out []Payment
	for rows.Next() {
		var p Payment
		if err := rows.Scan(&p.ID, &p.OrderID, &p.Status); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func orderStatuses(ctx context.Context, ordersDB *db.DB) (map[string]string, error) {
	rows, err := ordersDB.Read().QueryContext(ctx, "SELECT id, status FROM orders")
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	defer rows.Close()
	status := map[string]string{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		status[id] = st
	}
	return status, rows.Err()
}
