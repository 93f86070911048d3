package mail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"ticketing/db"
	"ticketing/views"
)

// Store is all SQL on mail.db, and the sender of what it holds.
type Store struct {
	db        *db.DB
	views     *views.Views
	baseURL   string
	from      string
	host      string // of BASE_URL, the right side of every Message-ID
	transport Transport
	logger    *slog.Logger
	// ResetToken makes the token of a password reset link from the
	// reset's id (the auth module's key; wired by the app).
	ResetToken func(id string) string
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewStore returns the store. transport nil keeps every message in the
// table (no SMTP); from "" is Ticketing <tickets@BASE_URL's host>.
func NewStore(d *db.DB, v *views.Views, baseURL, from string, transport Transport, logger *slog.Logger) *Store {
	host := "localhost"
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	if from == "" {
		from = "Ticketing <tickets@" + host + ">"
	}
	return &Store{db: d, views: v, baseURL: baseURL, from: from, host: host, transport: transport, logger: logger, Now: time.Now}
}

// person is whom a message goes to.
type person struct {
	ID, Email, Name string
}

func findPerson(ctx context.Context, tx *db.Tx, id string) (person, error) {
	p := person{ID: id}
	err := tx.QueryRowContext(ctx, "SELECT email, name FROM recipients WHERE user_id = ?", id).Scan(&p.Email, &p.Name)
	if err != nil {
		return person{}, fmt.Errorf("recipient %s: %w", id, err)
	}
	return p, nil
}

func (s *Store) addRecipient(ctx context.Context, tx *db.Tx, id, email, name string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO recipients (user_id, email, name) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, name = excluded.name`, id, email, name)
	return err
}

func (s *Store) renameRecipient(ctx context.Context, tx *db.Tx, id, name string) error {
	_, err := tx.ExecContext(ctx, "UPDATE recipients SET name = ? WHERE user_id = ?", name, id)
	return err
}

// applyTicket and applyShow keep the copies, newest version winning.
func (s *Store) applyTicket(ctx context.Context, tx *db.Tx, t ticketChanged) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO tickets (id, seller_id, title, show_id, section, seat_row, seat, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET title = excluded.title, section = excluded.section, seat_row = excluded.seat_row, seat = excluded.seat, version = excluded.version
		WHERE excluded.version > tickets.version`,
		t.ID, t.UserID, t.Title, nullable(t.ShowID), t.Section, t.Row, t.Seat, t.Version)
	return err
}

func (s *Store) applyShow(ctx context.Context, tx *db.Tx, sh showChanged) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO shows (id, title, venue, city, starts_at, time_zone, version) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET title = excluded.title, venue = excluded.venue, city = excluded.city, starts_at = excluded.starts_at,
		time_zone = excluded.time_zone, version = excluded.version WHERE excluded.version > shows.version`,
		sh.ID, sh.Title, sh.Venue, sh.City, db.Timestamp(sh.StartsAt), sh.TimeZone, sh.Version)
	return err
}

func (s *Store) addOrder(ctx context.Context, tx *db.Tx, o orderCreated, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO orders (id, buyer_id, ticket_id, price, status, created_at, expires_at) VALUES (?, ?, ?, ?, 'created', ?, ?)
		ON CONFLICT (id) DO NOTHING`, o.ID, o.UserID, o.Ticket.ID, o.Ticket.Price, db.Timestamp(at), db.Timestamp(o.ExpiresAt))
	return err
}

// remindBefore is when an unpaid order is reminded of its deadline, once;
// a reservation whose whole window is no longer gets none (it was just
// made, and its page counts down).
const remindBefore = 5 * time.Minute

// RemindOnce writes the reminder of every unpaid order whose deadline is
// remindBefore away or less and not passed, and returns how many.
func (s *Store) RemindOnce(ctx context.Context) (int, error) {
	now := s.Now().UTC()
	rows, err := s.db.Read().QueryContext(ctx, `SELECT id FROM orders INDEXED BY orders_to_remind
		WHERE status = 'created' AND reminded = 0 AND expires_at <= ? AND expires_at > ?`, db.Timestamp(now.Add(remindBefore)), db.Timestamp(now))
	if err != nil {
		return 0, fmt.Errorf("orders to remind: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		err := s.db.Tx(ctx, func(tx *db.Tx) error {
			var status, created, expires string
			var reminded bool
			if err := tx.QueryRowContext(ctx, "SELECT status, created_at, expires_at, reminded FROM orders WHERE id = ?", id).Scan(&status, &created, &expires, &reminded); err != nil {
				return err
			}
			if status != "created" || reminded {
				return nil // paid or ended meanwhile
			}
			if _, err := tx.ExecContext(ctx, "UPDATE orders SET reminded = 1 WHERE id = ?", id); err != nil {
				return err
			}
			c, _ := db.ParseTime(created)
			e, _ := db.ParseTime(expires)
			if e.Sub(c) <= remindBefore {
				return nil // too short a window to need one
			}
			m, err := s.loadOrder(ctx, tx, id)
			if err != nil {
				return err
			}
			n++
			return s.owe(ctx, tx, kindReminder, kindReminder+":"+id, m.Buyer, reminderMail{orderMail: m, ExpiresAt: e})
		})
		if err != nil {
			return n, fmt.Errorf("remind order %s: %w", id, err)
		}
	}
	return n, nil
}

// reminderMail is an order about to run out.
type reminderMail struct {
	orderMail
	ExpiresAt time.Time
}

func (s *Store) setStatus(ctx context.Context, tx *db.Tx, id, status string) error {
	_, err := tx.ExecContext(ctx, "UPDATE orders SET status = ? WHERE id = ?", status, id)
	return err
}

// orderMail is what the order messages say: the order, its ticket and
// show, and the people on both sides.
type orderMail struct {
	// Delivered says the seller attached the ticket: the buyer downloads
	// it from the order page; else the seller still owes it.
	Delivered    bool
	OrderID      string
	OrderURL     string
	DashboardURL string
	TicketURL    string
	PriceCents   int64
	Title        string
	Seats        string
	Show         *showInfo
	Buyer        person
	Seller       person
}

type showInfo struct {
	Title, Venue, City string
	Local              time.Time
}

func (s *Store) loadOrder(ctx context.Context, tx *db.Tx, id string) (orderMail, error) {
	m := orderMail{OrderID: id, OrderURL: s.baseURL + "/orders/" + id, DashboardURL: s.baseURL + "/sell"}
	var buyer, seller, section, row, seat, ticketID string
	var showID sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT o.buyer_id, o.price, t.id, t.seller_id, t.title, t.show_id, t.section, t.seat_row, t.seat,
		EXISTS (SELECT 1 FROM delivered d WHERE d.ticket_id = t.id)
		FROM orders o JOIN tickets t ON t.id = o.ticket_id WHERE o.id = ?`, id).
		Scan(&buyer, &m.PriceCents, &ticketID, &seller, &m.Title, &showID, &section, &row, &seat, &m.Delivered)
	if err != nil {
		return orderMail{}, fmt.Errorf("order %s for mail: %w", id, err)
	}
	m.TicketURL = s.baseURL + "/tickets/" + ticketID + "#attachment"
	if showID.Valid {
		var sh showInfo
		var starts, zone string
		err := tx.QueryRowContext(ctx, "SELECT title, venue, city, starts_at, time_zone FROM shows WHERE id = ?", showID.String).
			Scan(&sh.Title, &sh.Venue, &sh.City, &starts, &zone)
		if err != nil {
			return orderMail{}, fmt.Errorf("show %s for mail: %w", showID.String, err)
		}
		at, _ := db.ParseTime(starts)
		sh.Local = views.InZone(at, zone)
		m.Show, m.Seats = &sh, views.Seats(section, row, seat)
	}
	if m.Buyer, err = findPerson(ctx, tx, buyer); err != nil {
		return orderMail{}, err
	}
	if m.Seller, err = findPerson(ctx, tx, seller); err != nil {
		return orderMail{}, err
	}
	return m, nil
}

// owe writes the message of kind for key to p, from the template named
// kind, unless one for key was written already.
func (s *Store) owe(ctx context.Context, tx *db.Tx, kind, key string, to person, data any) error {
	subject, text, html, err := s.views.Mail(kind, data)
	if err != nil {
		return err
	}
	id := db.NewID()
	now := s.Now().UTC()
	status := "pending"
	if s.transport == nil {
		status = "kept"
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO messages (id, key, kind, to_user, to_email, subject, text_body, html_body, message_id, created_at, status, next_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		id, key, kind, to.ID, to.Email, subject, text, html, "<"+id+"@"+s.host+">", db.Timestamp(now), status, db.Timestamp(now))
	if err != nil {
		return fmt.Errorf("write %s message: %w", kind, err)
	}
	if n, _ := res.RowsAffected(); n == 1 && status == "kept" {
		s.logger.Info("mail kept (no SMTP_URL): read it at /mailbox", "to", to.Email, "subject", subject)
	}
	return nil
}

// resetMail is the password reset message.
type resetMail struct {
	To   person
	Link string
}

// resetRequested sends the reset link to its user.
func (s *Store) resetRequested(ctx context.Context, tx *db.Tx, r resetRequested) error {
	to, err := findPerson(ctx, tx, r.UserID)
	if err != nil {
		return err
	}
	return s.owe(ctx, tx, kindReset, kindReset+":"+r.ID, to, resetMail{To: to, Link: s.baseURL + "/auth/reset?token=" + s.ResetToken(r.ID)})
}

// completed writes the buyer's receipt and the seller's news of the sale.
func (s *Store) completed(ctx context.Context, tx *db.Tx, id string) error {
	if err := s.setStatus(ctx, tx, id, "complete"); err != nil {
		return err
	}
	m, err := s.loadOrder(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := s.owe(ctx, tx, kindReceipt, kindReceipt+":"+id, m.Buyer, m); err != nil {
		return err
	}
	if err := s.owe(ctx, tx, kindSold, kindSold+":"+id, m.Seller, m); err != nil {
		return err
	}
	if !m.Delivered {
		return s.owe(ctx, tx, kindOwed, kindOwed+":"+id, m.Seller, m)
	}
	return nil
}

// deliveredTicket records that the seller attached the ticket and, when
// it sold already, tells its buyer it can be downloaded now.
func (s *Store) deliveredTicket(ctx context.Context, tx *db.Tx, ticketID string) error {
	res, err := tx.ExecContext(ctx, "INSERT INTO delivered (ticket_id) VALUES (?) ON CONFLICT DO NOTHING", ticketID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // a replacement, before the sale: nobody to tell
	}
	var orderID string
	err = tx.QueryRowContext(ctx, "SELECT id FROM orders WHERE ticket_id = ? AND status = 'complete'", ticketID).Scan(&orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not sold yet: the receipt will say it is ready
	}
	if err != nil {
		return fmt.Errorf("order of ticket %s: %w", ticketID, err)
	}
	m, err := s.loadOrder(ctx, tx, orderID)
	if err != nil {
		return err
	}
	return s.owe(ctx, tx, kindAvailable, kindAvailable+":"+orderID, m.Buyer, m)
}

// refunded tells the buyer their late payment was given back.
func (s *Store) refunded(ctx context.Context, tx *db.Tx, id string) error {
	m, err := s.loadOrder(ctx, tx, id)
	if err != nil {
		return err
	}
	return s.owe(ctx, tx, kindRefund, kindRefund+":"+id, m.Buyer, m)
}

const messageColumns = `id, kind, to_user, to_email, subject, text_body, html_body, message_id, created_at, status, attempts, coalesce(sent_at, ''), last_error`

func scanMessage(row interface{ Scan(...any) error }) (Message, error) {
	var m Message
	var created, sent string
	err := row.Scan(&m.ID, &m.Kind, &m.ToUser, &m.ToEmail, &m.Subject, &m.Text, &m.HTML, &m.MessageID, &created, &m.Status, &m.Attempts, &sent, &m.LastError)
	if err != nil {
		return Message{}, err
	}
	m.CreatedAt, _ = db.ParseTime(created)
	if sent != "" {
		m.SentAt, _ = db.ParseTime(sent)
	}
	return m, nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Message, error) {
	rows, err := s.db.Read().QueryContext(ctx, "SELECT "+messageColumns+" FROM messages "+q, args...)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("read messages: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Mailbox returns the newest messages to a user, sent or not.
func (s *Store) Mailbox(ctx context.Context, userID string) ([]Message, error) {
	return s.query(ctx, "WHERE to_user = ? ORDER BY created_at DESC, id DESC LIMIT 50", userID)
}

// Pending is how many messages wait to be sent, and how long the oldest
// has waited.
func (s *Store) Pending(ctx context.Context) (int, time.Duration, error) {
	var n int
	var oldest sql.NullString
	err := s.db.Read().QueryRowContext(ctx, "SELECT count(*), min(created_at) FROM messages WHERE status = 'pending'").Scan(&n, &oldest)
	if err != nil {
		return 0, 0, fmt.Errorf("count pending mail: %w", err)
	}
	var age time.Duration
	if oldest.Valid {
		if t, err := db.ParseTime(oldest.String); err == nil {
			age = s.Now().Sub(t)
		}
	}
	return n, age, nil
}

// due are the pending messages whose time has come, oldest first.
func (s *Store) due(ctx context.Context, limit int) ([]Message, error) {
	return s.query(ctx, "WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?", db.Timestamp(s.Now()), limit)
}

func (s *Store) markSent(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE messages SET status = 'sent', sent_at = ?, last_error = '' WHERE id = ? AND status = 'pending'", db.Timestamp(s.Now()), id)
		return err
	})
}

// backoff is the wait before attempt n+1 of a message: 1 s, doubling, at
// most 5 minutes.
func backoff(attempts int) time.Duration {
	return min(time.Second<<min(attempts, 20), 5*time.Minute)
}

func (s *Store) markFailed(ctx context.Context, m Message, cause error) error {
	return s.db.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE messages SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ? AND status = 'pending'",
			db.Timestamp(s.Now().Add(backoff(m.Attempts))), cause.Error(), m.ID)
		return err
	})
}

// errNoTransport is SendOnce's answer without SMTP.
var errNoTransport = errors.New("mail: no SMTP transport")

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
