package tickets

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"ticketing/app/problem"
	"ticketing/app/text"
	"ticketing/db"
	"ticketing/events"
)

// Store is all SQL on tickets.db.
type Store struct {
	db  *db.DB
	log *events.Log
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewStore returns the store.
func NewStore(d *db.DB, log *events.Log) *Store {
	events.Publishes[ticketChanged](log, eventTicketCreated)
	events.Publishes[ticketChanged](log, eventTicketUpdated)
	return &Store{db: d, log: log, Now: time.Now}
}

var errNotFound = problem.New(problem.NotFound, "Ticket not found")

// columns and from read a ticket with its seller's name.
const (
	columns = `t.id, t.title, t.price, t.user_id, t.version, coalesce(t.order_id, ''), t.created_at, t.updated_at,
	coalesce(t.reserved_until, ''), coalesce(t.sold_at, ''), coalesce(t.buyer_id, ''), coalesce(s.name, '')`
	from = " FROM tickets t LEFT JOIN sellers s ON s.id = t.user_id"
)

type scanner interface{ Scan(...any) error }

func scan(row scanner) (Ticket, error) {
	var t Ticket
	var created, updated, reserved, sold string
	if err := row.Scan(&t.ID, &t.Title, &t.PriceCents, &t.UserID, &t.Version, &t.OrderID, &created, &updated, &reserved, &sold, &t.BuyerID, &t.Seller); err != nil {
		return Ticket{}, err
	}
	t.CreatedAt, _ = db.ParseTime(created)
	t.UpdatedAt, _ = db.ParseTime(updated)
	if reserved != "" {
		t.ReservedUntil, _ = db.ParseTime(reserved)
	}
	if sold != "" {
		t.SoldAt, _ = db.ParseTime(sold)
	}
	return t, nil
}

// Create lists a new ticket and appends ticket:created with it.
func (s *Store) Create(ctx context.Context, userID, title string, priceCents int64) (Ticket, error) {
	title, err := validate(title, priceCents)
	if err != nil {
		return Ticket{}, err
	}
	now := s.Now().UTC()
	t := Ticket{ID: db.NewID(), Title: title, PriceCents: priceCents, UserID: userID, Version: 1, CreatedAt: now, UpdatedAt: now}
	err = s.db.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO tickets (id, title, price, user_id, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			t.ID, t.Title, t.PriceCents, t.UserID, t.Version, db.Timestamp(now), db.Timestamp(now))
		if err != nil {
			return fmt.Errorf("insert ticket: %w", err)
		}
		_, err = s.log.Append(ctx, tx, eventTicketCreated, t.ID, t.Version, changed(t, listed))
		return err
	})
	if err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// Update changes a ticket's title and price. Only its seller may, and not
// while an order holds it; the check and the write share one transaction,
// so an order that locks the ticket cannot slip in between.
func (s *Store) Update(ctx context.Context, id, userID, title string, priceCents int64) (Ticket, error) {
	var t Ticket
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		var err error
		t, err = find(ctx, tx, id)
		if err != nil {
			return err
		}
		if t.UserID != userID {
			return problem.New(problem.Forbidden, "Not authorized")
		}
		title, err := validate(title, priceCents)
		if err != nil {
			return err
		}
		if t.Reserved() {
			return problem.New(problem.Conflict, "Cannot edit a reserved ticket")
		}
		t.Title, t.PriceCents = title, priceCents
		return s.save(ctx, tx, &t, edited)
	})
	if err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// save bumps the version, writes t and appends ticket:updated saying what
// changed.
func (s *Store) save(ctx context.Context, tx *db.Tx, t *Ticket, c change) error {
	t.Version++
	t.UpdatedAt = s.Now().UTC()
	_, err := tx.ExecContext(ctx,
		"UPDATE tickets SET title = ?, price = ?, version = ?, order_id = ?, updated_at = ?, reserved_until = ?, sold_at = ?, buyer_id = ? WHERE id = ?",
		t.Title, t.PriceCents, t.Version, optionalString(t.OrderID), db.Timestamp(t.UpdatedAt), optionalTime(t.ReservedUntil), optionalTime(t.SoldAt), optionalString(t.BuyerID), t.ID)
	if err != nil {
		return fmt.Errorf("update ticket %s: %w", t.ID, err)
	}
	_, err = s.log.Append(ctx, tx, eventTicketUpdated, t.ID, t.Version, changed(*t, c))
	return err
}

func find(ctx context.Context, q db.Querier, id string) (Ticket, error) {
	if !db.ValidID(id) {
		return Ticket{}, errNotFound
	}
	t, err := scan(q.QueryRowContext(ctx, "SELECT "+columns+from+" WHERE t.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Ticket{}, errNotFound
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("find ticket %s: %w", id, err)
	}
	return t, nil
}

// Get returns a ticket, reserved or not.
func (s *Store) Get(ctx context.Context, id string) (Ticket, error) {
	return find(ctx, s.db.Read(), id)
}

// maxSearch bounds a search term: longer is no real search, and SQLite
// refuses a LIKE pattern past 50,000 bytes.
const maxSearch = 100

// ListQuery selects a page of tickets on sale.
type ListQuery struct {
	Query  string // case-insensitive substring of the title
	Limit  int    // default 50, at most 100
	Before string // cursor from a previous Page.Next
}

// Page is one page of tickets, newest first; Next is the cursor of the
// following page, "" on the last.
type Page struct {
	Tickets []Ticket
	Next    string
}

// listSQL reads the tickets on sale through the tickets_on_sale partial
// index, newest first, with a keyset cursor: the cost of a page does not
// grow with the number of reserved tickets or with the page number.
const listSQL = "SELECT " + columns + " FROM tickets t INDEXED BY tickets_on_sale LEFT JOIN sellers s ON s.id = t.user_id WHERE t.order_id IS NULL"

// ListOnSale returns a page of the tickets not reserved.
func (s *Store) ListOnSale(ctx context.Context, q ListQuery) (Page, error) {
	if msg := text.Line("Search", q.Query, maxSearch); msg != "" {
		return Page{}, problem.Fields(map[string]string{"q": msg})
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 100)
	query, args := listSQL, []any{}
	if q.Before != "" {
		created, id, ok := decodeCursor(q.Before)
		if !ok {
			return Page{}, &problem.Error{Kind: problem.Invalid, Message: "Invalid page cursor", Fields: map[string]string{"before": "Invalid page cursor"}}
		}
		query += " AND (t.created_at, t.id) < (?, ?)"
		args = append(args, created, id)
	}
	if term := strings.TrimSpace(q.Query); term != "" {
		query += " AND t.title LIKE ? ESCAPE '\\'"
		args = append(args, "%"+likeEscape(term)+"%")
	}
	query += " ORDER BY t.created_at DESC, t.id DESC LIMIT ?"
	args = append(args, limit+1)

	rows, err := s.db.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return Page{}, fmt.Errorf("list tickets: %w", err)
	}
	defer rows.Close()
	var p Page
	for rows.Next() {
		t, err := scan(rows)
		if err != nil {
			return Page{}, fmt.Errorf("list tickets: %w", err)
		}
		p.Tickets = append(p.Tickets, t)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("list tickets: %w", err)
	}
	if len(p.Tickets) > limit {
		p.Tickets = p.Tickets[:limit]
		last := p.Tickets[limit-1]
		p.Next = encodeCursor(db.Timestamp(last.CreatedAt), last.ID)
	}
	return p, nil
}

// ForSeller returns every ticket a seller listed, newest first.
func (s *Store) ForSeller(ctx context.Context, userID string) ([]Ticket, error) {
	rows, err := s.db.Read().QueryContext(ctx, "SELECT "+columns+from+" WHERE t.user_id = ? ORDER BY t.created_at DESC, t.id DESC", userID)
	if err != nil {
		return nil, fmt.Errorf("list seller's tickets: %w", err)
	}
	defer rows.Close()
	var out []Ticket
	for rows.Next() {
		t, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list seller's tickets: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func encodeCursor(created, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(created + "|" + id))
}

func decodeCursor(c string) (created, id string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", "", false
	}
	created, id, ok = strings.Cut(string(b), "|")
	if !ok || !db.ValidID(id) {
		return "", "", false
	}
	if _, err := db.ParseTime(created); err != nil {
		return "", "", false
	}
	return created, id, true
}

func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return db.Timestamp(t)
}

// optionalString is NULL for "".
func optionalString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// lock marks the ticket as held by orderID until its deadline
// (order:created). Replays are no-ops: a ticket already held by that order
// is left alone.
func (s *Store) lock(ctx context.Context, tx *db.Tx, ticketID, orderID, buyerID string, until time.Time) error {
	t, err := find(ctx, tx, ticketID)
	if err != nil {
		return fmt.Errorf("lock ticket %s for order %s: %w", ticketID, orderID, err)
	}
	switch t.OrderID {
	case orderID:
		return nil
	case "":
		t.OrderID, t.BuyerID, t.ReservedUntil = orderID, buyerID, until
		return s.save(ctx, tx, &t, reserved)
	default:
		// The orders module's unique index makes this impossible for live
		// orders; if it happens the two files disagree, which must be
		// visible rather than papered over.
		return fmt.Errorf("lock ticket %s for order %s: held by order %s", ticketID, orderID, t.OrderID)
	}
}

// unlock puts the ticket back on sale (order:cancelled), if that order
// holds it.
func (s *Store) unlock(ctx context.Context, tx *db.Tx, ticketID, orderID string) error {
	t, err := find(ctx, tx, ticketID)
	if err != nil {
		return fmt.Errorf("unlock ticket %s for order %s: %w", ticketID, orderID, err)
	}
	if t.OrderID != orderID {
		return nil // already released, or held by a later order
	}
	t.OrderID, t.BuyerID, t.ReservedUntil = "", "", time.Time{}
	return s.save(ctx, tx, &t, released)
}

// sell marks the ticket sold to orderID (order:completed), once.
func (s *Store) sell(ctx context.Context, tx *db.Tx, ticketID, orderID string, at time.Time) error {
	t, err := find(ctx, tx, ticketID)
	if err != nil {
		return fmt.Errorf("sell ticket %s to order %s: %w", ticketID, orderID, err)
	}
	if t.OrderID != orderID || !t.SoldAt.IsZero() {
		return nil // a replay, or a ticket the orders module never gave this order
	}
	t.SoldAt, t.ReservedUntil = at.UTC(), time.Time{}
	return s.save(ctx, tx, &t, sold)
}

// nameSeller records the display name a user chose (user:created,
// user:renamed; the log's order makes the latest win).
func (s *Store) nameSeller(ctx context.Context, tx *db.Tx, id, name string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO sellers (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name", id, name)
	return err
}
