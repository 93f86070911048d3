package tickets

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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
	// capPercent is how far above its face value a show's ticket may be
	// offered (PRICE_CAP_PERCENT); 0 is no cap.
	capPercent int
	// Now is the clock; tests replace it.
	Now func() time.Time
	// cities caches Cities: every front page shows them, and finding
	// them reads every upcoming show.
	cities citiesCache
}

// citiesCache is the last answer of Cities and when it was read; a show
// added or changed here clears it, and it is read again after
// citiesMaxAge (a city goes when its last show starts). gen counts the
// clears: a list read while one happened is not kept (it may miss the
// show that caused it).
type citiesCache struct {
	mu   sync.Mutex
	at   time.Time
	list []string
	gen  uint64
}

const citiesMaxAge = 30 * time.Second

// ForgetCities drops the cached list of cities, for a replica of a cluster
// when tickets.db changes under it (shows are written on the primary).
func (s *Store) ForgetCities() { s.cities.clear() }

func (c *citiesCache) clear() {
	c.mu.Lock()
	c.at = time.Time{}
	c.gen++
	c.mu.Unlock()
}

// NewStore returns the store; capPercent is the resale price cap (0: none).
func NewStore(d *db.DB, log *events.Log, capPercent int) *Store {
	events.Publishes[ticketChanged](log, eventTicketCreated)
	events.Publishes[ticketChanged](log, eventTicketUpdated)
	events.Publishes[showChanged](log, eventShowCreated)
	events.Publishes[showChanged](log, eventShowUpdated)
	return &Store{db: d, log: log, capPercent: capPercent, Now: time.Now}
}

// PriceCapPercent is the resale price cap (0: none).
func (s *Store) PriceCapPercent() int { return s.capPercent }

var errNotFound = problem.New(problem.NotFound, "Ticket not found")

// columns and from read a ticket with its seller's name and its show's.
const (
	columns = `t.id, t.title, t.price, t.user_id, t.version, coalesce(t.order_id, ''), t.created_at, t.updated_at,
	coalesce(t.reserved_until, ''), coalesce(t.sold_at, ''), coalesce(t.buyer_id, ''), coalesce(s.name, ''),
	coalesce(t.show_id, ''), t.section, t.seat_row, t.seat, coalesce(t.face_value, 0), t.delivered,
	coalesce(sh.title, ''), coalesce(sh.venue, ''), coalesce(sh.city, ''), coalesce(sh.starts_at, ''), coalesce(sh.time_zone, '')`
	joins = " LEFT JOIN sellers s ON s.id = t.user_id LEFT JOIN shows sh ON sh.id = t.show_id"
	from  = " FROM tickets t" + joins
)

type scanner interface{ Scan(...any) error }

func scan(row scanner) (Ticket, error) {
	var t Ticket
	var created, updated, reserved, sold, starts string
	if err := row.Scan(&t.ID, &t.Title, &t.PriceCents, &t.UserID, &t.Version, &t.OrderID, &created, &updated, &reserved, &sold, &t.BuyerID, &t.Seller,
		&t.ShowID, &t.Section, &t.Row, &t.Seat, &t.FaceValueCents, &t.Delivered,
		&t.Show.Title, &t.Show.Venue, &t.Show.City, &starts, &t.Show.TimeZone); err != nil {
		return Ticket{}, err
	}
	if t.ShowID != "" {
		t.Show.ID = t.ShowID
		t.Show.StartsAt, _ = db.ParseTime(starts)
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

// Create lists a new ticket and appends ticket:created with it (see
// validateListing for what a show's listing must say).
func (s *Store) Create(ctx context.Context, userID string, l Listing) (Ticket, error) {
	now := s.Now().UTC()
	var t Ticket
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		sh, err := listingShow(ctx, tx, l.ShowID)
		if err != nil {
			return err
		}
		if l, err = validateListing(l, sh, s.capPercent, now); err != nil {
			return err
		}
		t = Ticket{ID: db.NewID(), Title: l.Title, PriceCents: l.PriceCents, UserID: userID, Version: 1, CreatedAt: now, UpdatedAt: now,
			ShowID: l.ShowID, Section: l.Section, Row: l.Row, Seat: l.Seat, FaceValueCents: l.FaceValueCents}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO tickets (id, title, price, user_id, version, created_at, updated_at, show_id, section, seat_row, seat, face_value)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Title, t.PriceCents, t.UserID, t.Version, db.Timestamp(now), db.Timestamp(now),
			optionalString(t.ShowID), t.Section, t.Row, t.Seat, optionalCents(t.FaceValueCents))
		if err != nil {
			return fmt.Errorf("insert ticket: %w", err)
		}
		if err := refreshShow(ctx, tx, t.ShowID); err != nil {
			return err
		}
		_, err = s.log.Append(ctx, tx, eventTicketCreated, t.ID, t.Version, changed(t, listed))
		return err
	})
	if err != nil {
		return Ticket{}, err
	}
	return find(ctx, s.db.Read(), t.ID)
}

// listingShow finds the show a listing names: nil for none, a field
// error for one that does not exist.
func listingShow(ctx context.Context, q db.Querier, id string) (*Show, error) {
	if id == "" {
		return nil, nil
	}
	sh, err := findShow(ctx, q, id)
	if p, ok := problem.As(err); ok && p.Kind == problem.NotFound {
		return nil, problem.Fields(map[string]string{"showId": "No such show"})
	}
	if err != nil {
		return nil, err
	}
	return &sh, nil
}

// Update changes what a listing says. Only its seller may, and not while
// an order holds it; the check and the write share one transaction, so an
// order that locks the ticket cannot slip in between. A listing's show
// does not change (l.ShowID is "" or the same).
func (s *Store) Update(ctx context.Context, id, userID string, l Listing) (Ticket, error) {
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
		if l.ShowID != "" && l.ShowID != t.ShowID {
			return problem.Fields(map[string]string{"showId": "A listing's show cannot change; list the ticket for the other show instead"})
		}
		l.ShowID = t.ShowID
		sh, err := listingShow(ctx, tx, l.ShowID)
		if err != nil {
			return err
		}
		if l, err = validateListing(l, sh, s.capPercent, s.Now()); err != nil {
			return err
		}
		if t.Reserved() {
			return problem.New(problem.Conflict, "Cannot edit a reserved ticket")
		}
		t.Title, t.PriceCents, t.Section, t.Row, t.Seat, t.FaceValueCents = l.Title, l.PriceCents, l.Section, l.Row, l.Seat, l.FaceValueCents
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
		`UPDATE tickets SET title = ?, price = ?, version = ?, order_id = ?, updated_at = ?, reserved_until = ?, sold_at = ?, buyer_id = ?,
		 section = ?, seat_row = ?, seat = ?, face_value = ? WHERE id = ?`,
		t.Title, t.PriceCents, t.Version, optionalString(t.OrderID), db.Timestamp(t.UpdatedAt), optionalTime(t.ReservedUntil), optionalTime(t.SoldAt), optionalString(t.BuyerID),
		t.Section, t.Row, t.Seat, optionalCents(t.FaceValueCents), t.ID)
	if err != nil {
		return fmt.Errorf("update ticket %s: %w", t.ID, err)
	}
	if err := refreshShow(ctx, tx, t.ShowID); err != nil {
		return err
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
	Query string // case-insensitive substring of the title
	Limit int    // default 50, at most 100
	// Before is the cursor from a previous Page.Next (of the same query).
	Before string
	// ShowID keeps one show's tickets, cheapest first; NoShow keeps those
	// that belong to no show. Otherwise every ticket on sale, newest
	// first, but for shows that have started.
	ShowID string
	NoShow bool
}

// byPrice says the query's order: cheapest first (a show's page), or
// newest first.
func (q ListQuery) byPrice() bool { return q.ShowID != "" }

// Page is one page of tickets; Next is the cursor of the following page,
// "" on the last.
type Page struct {
	Tickets []Ticket
	Next    string
}

// The lists read through partial indexes of the tickets on sale, with a
// keyset cursor: the cost of a page does not grow with the number of
// reserved tickets or with the page number.
const (
	listAllSQL    = "SELECT " + columns + " FROM tickets t INDEXED BY tickets_on_sale" + joins + " WHERE t.order_id IS NULL AND (sh.id IS NULL OR sh.starts_at > ?)"
	listNoShowSQL = "SELECT " + columns + " FROM tickets t INDEXED BY tickets_showless_on_sale" + joins + " WHERE t.order_id IS NULL AND t.show_id IS NULL"
	listShowSQL   = "SELECT " + columns + " FROM tickets t INDEXED BY tickets_show_on_sale" + joins + " WHERE t.order_id IS NULL AND t.show_id = ?"
)

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
	var query string
	var args []any
	switch {
	case q.ShowID != "":
		query, args = listShowSQL, []any{q.ShowID}
	case q.NoShow:
		query = listNoShowSQL
	default:
		query, args = listAllSQL, []any{db.Timestamp(s.Now())}
	}
	if q.Before != "" {
		key, id, ok := decodeCursor(q.Before, q.byPrice())
		if !ok {
			return Page{}, &problem.Error{Kind: problem.Invalid, Message: "Invalid page cursor", Fields: map[string]string{"before": "Invalid page cursor"}}
		}
		if q.byPrice() {
			query += " AND (t.price, t.id) > (?, ?)"
		} else {
			query += " AND (t.created_at, t.id) < (?, ?)"
		}
		args = append(args, key, id)
	}
	if term := strings.TrimSpace(q.Query); term != "" {
		query += " AND t.title LIKE ? ESCAPE '\\'"
		args = append(args, "%"+likeEscape(term)+"%")
	}
	if q.byPrice() {
		query += " ORDER BY t.price, t.id LIMIT ?"
	} else {
		query += " ORDER BY t.created_at DESC, t.id DESC LIMIT ?"
	}
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
		p.Next = cursorAfter(p.Tickets[limit-1], q.byPrice())
	}
	return p, nil
}

// cursorAfter is the cursor of the page that follows t in its list.
func cursorAfter(t Ticket, byPrice bool) string {
	if byPrice {
		return encodeCursor(strconv.FormatInt(t.PriceCents, 10), t.ID)
	}
	return encodeCursor(db.Timestamp(t.CreatedAt), t.ID)
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

func encodeCursor(key, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key + "|" + id))
}

// decodeCursor reads a cursor: its key is a price in cents (byPrice) or
// a creation time, and it returns the key as the query compares it.
func decodeCursor(c string, byPrice bool) (key any, id string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, "", false
	}
	k, id, ok := strings.Cut(string(b), "|")
	if !ok || !db.ValidID(id) {
		return nil, "", false
	}
	if byPrice {
		cents, err := strconv.ParseInt(k, 10, 64)
		return cents, id, err == nil
	}
	if _, err := db.ParseTime(k); err != nil {
		return nil, "", false
	}
	return k, id, true
}

func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return db.Timestamp(t)
}

// optionalCents is NULL for 0.
func optionalCents(c int64) any {
	if c == 0 {
		return nil
	}
	return c
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

// delivered records that the seller attached the ticket
// (ticket:delivered).
func (s *Store) delivered(ctx context.Context, tx *db.Tx, id string) error {
	_, err := tx.ExecContext(ctx, "UPDATE tickets SET delivered = 1 WHERE id = ?", id)
	return err
}

// nameSeller records the display name a user chose (user:created,
// user:renamed; the log's order makes the latest win).
func (s *Store) nameSeller(ctx context.Context, tx *db.Tx, id, name string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO sellers (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name", id, name)
	return err
}

var errShowNotFound = problem.New(problem.NotFound, "Show not found")

const showColumns = `id, title, venue, city, country, starts_at, time_zone, description, user_id, version, created_at, updated_at, on_sale, coalesce(min_price, 0)`

func scanShow(row scanner) (Show, error) {
	var sh Show
	var starts, created, updated string
	if err := row.Scan(&sh.ID, &sh.Title, &sh.Venue, &sh.City, &sh.Country, &starts, &sh.TimeZone, &sh.Description, &sh.UserID, &sh.Version,
		&created, &updated, &sh.OnSale, &sh.MinPriceCents); err != nil {
		return Show{}, err
	}
	sh.StartsAt, _ = db.ParseTime(starts)
	sh.CreatedAt, _ = db.ParseTime(created)
	sh.UpdatedAt, _ = db.ParseTime(updated)
	return sh, nil
}

func findShow(ctx context.Context, q db.Querier, id string) (Show, error) {
	if !db.ValidID(id) {
		return Show{}, errShowNotFound
	}
	sh, err := scanShow(q.QueryRowContext(ctx, "SELECT "+showColumns+" FROM shows WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Show{}, errShowNotFound
	}
	if err != nil {
		return Show{}, fmt.Errorf("find show %s: %w", id, err)
	}
	return sh, nil
}

// GetShow returns a show, started or not.
func (s *Store) GetShow(ctx context.Context, id string) (Show, error) {
	return findShow(ctx, s.db.Read(), id)
}

// CreateShow adds a show and appends show:created with it. Any signed-in
// user may; the start must be in the future.
func (s *Store) CreateShow(ctx context.Context, userID string, in ShowInput) (Show, error) {
	now := s.Now().UTC()
	sh, err := in.parse(now)
	if err != nil {
		return Show{}, err
	}
	sh.ID, sh.UserID, sh.Version, sh.CreatedAt, sh.UpdatedAt = db.NewID(), userID, 1, now, now
	err = s.db.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO shows (id, title, venue, city, country, starts_at, time_zone, local_date, description, user_id, version, created_at, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sh.ID, sh.Title, sh.Venue, sh.City, sh.Country, db.Timestamp(sh.StartsAt), sh.TimeZone, sh.Local().Format(time.DateOnly),
			sh.Description, sh.UserID, sh.Version, db.Timestamp(now), db.Timestamp(now))
		if err != nil {
			return fmt.Errorf("insert show: %w", err)
		}
		_, err = s.log.Append(ctx, tx, eventShowCreated, sh.ID, sh.Version, showEvent(sh))
		return err
	})
	if err != nil {
		return Show{}, err
	}
	s.cities.clear()
	return sh, nil
}

// errShowSold refuses an edit of a show a ticket was sold for: its buyer
// bought what the show said then.
var errShowSold = problem.New(problem.Conflict, "A ticket for this show has sold, so the show can no longer be edited")

// ShowEditable reports whether userID may edit the show: they added it,
// and no ticket for it has sold.
func (s *Store) ShowEditable(ctx context.Context, sh Show, userID string) (bool, error) {
	if sh.UserID != userID {
		return false, nil
	}
	sold, err := showSold(ctx, s.db.Read(), sh.ID)
	return !sold, err
}

func showSold(ctx context.Context, q db.Querier, id string) (bool, error) {
	var sold bool
	err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM tickets WHERE show_id = ? AND sold_at IS NOT NULL)", id).Scan(&sold)
	if err != nil {
		return false, fmt.Errorf("show %s sold: %w", id, err)
	}
	return sold, nil
}

// UpdateShow changes a show and appends show:updated. Only who added it
// may, until a ticket for it sells (checked in the same transaction as
// the write, so a sale cannot slip in between); the start must still be
// in the future.
func (s *Store) UpdateShow(ctx context.Context, id, userID string, in ShowInput) (Show, error) {
	var sh Show
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		old, err := findShow(ctx, tx, id)
		if err != nil {
			return err
		}
		if old.UserID != userID {
			return problem.New(problem.Forbidden, "Only who added the show can edit it")
		}
		if sh, err = in.parse(s.Now()); err != nil {
			return err
		}
		if sold, err := showSold(ctx, tx, id); err != nil {
			return err
		} else if sold {
			return errShowSold
		}
		sh.ID, sh.UserID, sh.Version, sh.CreatedAt, sh.UpdatedAt = old.ID, old.UserID, old.Version+1, old.CreatedAt, s.Now().UTC()
		sh.OnSale, sh.MinPriceCents = old.OnSale, old.MinPriceCents
		_, err = tx.ExecContext(ctx,
			`UPDATE shows SET title = ?, venue = ?, city = ?, country = ?, starts_at = ?, time_zone = ?, local_date = ?, description = ?,
			 version = ?, updated_at = ? WHERE id = ?`,
			sh.Title, sh.Venue, sh.City, sh.Country, db.Timestamp(sh.StartsAt), sh.TimeZone, sh.Local().Format(time.DateOnly), sh.Description,
			sh.Version, db.Timestamp(sh.UpdatedAt), sh.ID)
		if err != nil {
			return fmt.Errorf("update show %s: %w", id, err)
		}
		_, err = s.log.Append(ctx, tx, eventShowUpdated, sh.ID, sh.Version, showEvent(sh))
		return err
	})
	if err != nil {
		return Show{}, err
	}
	s.cities.clear()
	return sh, nil
}

// refreshShow recomputes a show's count and lowest price on sale from its
// listings, inside the transaction that changed one (through the
// tickets_show_on_sale index: a show's page of listings, not the table).
func refreshShow(ctx context.Context, tx *db.Tx, showID string) error {
	if showID == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE shows SET
		on_sale   = (SELECT count(*) FROM tickets INDEXED BY tickets_show_on_sale WHERE show_id = ?1 AND order_id IS NULL),
		min_price = (SELECT min(price) FROM tickets INDEXED BY tickets_show_on_sale WHERE show_id = ?1 AND order_id IS NULL)
		WHERE id = ?1`, showID)
	if err != nil {
		return fmt.Errorf("count show %s's tickets: %w", showID, err)
	}
	return nil
}

// ShowQuery selects upcoming shows: Query matches performer, venue or
// city; City is one city exactly (any case); From and To bound the show's
// date at the venue (YYYY-MM-DD, inclusive); Sort is "date" (soonest
// first, the default) or "price" (lowest price on sale first, shows with
// none last). Page counts from 1.
type ShowQuery struct {
	Query, City, From, To, Sort string
	Limit, Page                 int
}

// ShowPage is one page of shows; Next is the following page's number, 0
// on the last.
type ShowPage struct {
	Shows []Show
	Next  int
}

// maxShowPages bounds how deep a list of shows pages (offset paging: its
// cost grows with the page).
const maxShowPages = 1000

// ListShows returns a page of the shows that have not started.
func (s *Store) ListShows(ctx context.Context, q ShowQuery) (ShowPage, error) {
	fields := map[string]string{}
	if msg := text.Line("Search", q.Query, maxSearch); msg != "" {
		fields["q"] = msg
	}
	if msg := text.Line("City", q.City, maxCity); msg != "" {
		fields["city"] = msg
	}
	for _, d := range []struct{ field, name, v string }{{"from", "From", q.From}, {"to", "To", q.To}} {
		if _, err := time.Parse(time.DateOnly, d.v); d.v != "" && err != nil {
			fields[d.field] = d.name + " must be a date such as 2027-06-12"
		}
	}
	switch q.Sort {
	case "", "date", "price":
	default:
		fields["sort"] = "Sort must be date or price"
	}
	if q.Page < 0 || q.Page > maxShowPages {
		fields["page"] = fmt.Sprintf("Page must be between 1 and %d", maxShowPages)
	}
	if len(fields) > 0 {
		return ShowPage{}, problem.Fields(fields)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 24
	}
	limit = min(limit, 100)
	page := max(q.Page, 1)

	query, args := "SELECT "+showColumns+" FROM shows WHERE starts_at > ?", []any{db.Timestamp(s.Now())}
	if term := strings.TrimSpace(q.Query); term != "" {
		query += " AND (title LIKE ? ESCAPE '\\' OR venue LIKE ? ESCAPE '\\' OR city LIKE ? ESCAPE '\\')"
		like := "%" + likeEscape(term) + "%"
		args = append(args, like, like, like)
	}
	if city := strings.TrimSpace(q.City); city != "" {
		query += " AND city = ? COLLATE NOCASE"
		args = append(args, city)
	}
	if q.From != "" {
		query += " AND local_date >= ?"
		args = append(args, q.From)
	}
	if q.To != "" {
		query += " AND local_date <= ?"
		args = append(args, q.To)
	}
	if q.Sort == "price" {
		query += " ORDER BY min_price IS NULL, min_price, starts_at, id"
	} else {
		query += " ORDER BY starts_at, id"
	}
	query += " LIMIT ? OFFSET ?"
	args = append(args, limit+1, (page-1)*limit)

	rows, err := s.db.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return ShowPage{}, fmt.Errorf("list shows: %w", err)
	}
	defer rows.Close()
	var p ShowPage
	for rows.Next() {
		sh, err := scanShow(rows)
		if err != nil {
			return ShowPage{}, fmt.Errorf("list shows: %w", err)
		}
		p.Shows = append(p.Shows, sh)
	}
	if err := rows.Err(); err != nil {
		return ShowPage{}, fmt.Errorf("list shows: %w", err)
	}
	if len(p.Shows) > limit {
		p.Shows = p.Shows[:limit]
		if page < maxShowPages {
			p.Next = page + 1
		}
	}
	return p, nil
}

// Cities are the cities with upcoming shows, for the city filter; at
// most citiesMaxAge old.
func (s *Store) Cities(ctx context.Context) ([]string, error) {
	now := s.Now()
	s.cities.mu.Lock()
	if now.Sub(s.cities.at) < citiesMaxAge && !s.cities.at.After(now) {
		list := s.cities.list
		s.cities.mu.Unlock()
		return list, nil
	}
	gen := s.cities.gen
	s.cities.mu.Unlock()
	list, err := s.readCities(ctx, now)
	if err != nil {
		return nil, err
	}
	s.cities.mu.Lock()
	if s.cities.gen == gen {
		s.cities.at, s.cities.list = now, list
	}
	s.cities.mu.Unlock()
	return list, nil
}

func (s *Store) readCities(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.db.Read().QueryContext(ctx,
		"SELECT min(city) FROM shows WHERE starts_at > ? GROUP BY city COLLATE NOCASE ORDER BY city COLLATE NOCASE", db.Timestamp(now))
	if err != nil {
		return nil, fmt.Errorf("list cities: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("list cities: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
