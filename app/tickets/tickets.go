// Package tickets owns the tickets for sale and the shows they are for
// (tickets.db): a listing's title, price in integer cents, seller,
// version, seat and face value, and the order holding the ticket while it
// is reserved or sold; a show's performer, venue, city and start in the
// venue's time zone. Shows live here rather than in a module of their own
// because a show is what groups listings: its lowest price and count on
// sale change with every listing, in the same transaction, and no other
// module writes them. It publishes ticket:created, ticket:updated,
// show:created and show:updated, and consumes the orders module's
// order:created (lock), order:cancelled (unlock) and order:completed
// (sold), so that a reserved ticket leaves the lists and cannot be edited.
package tickets

import (
	"embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ticketing/app/problem"
	"ticketing/app/text"
	"ticketing/app/web"
	"ticketing/db"
	"ticketing/views"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns tickets.db's schema.
func Migrations() db.Migrations { return db.Embedded("tickets", migrations) }

// Ticket is one ticket.
type Ticket struct {
	ID         string
	Title      string
	PriceCents int64
	UserID     string
	Version    int64
	OrderID    string // "" unless reserved or sold
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// ReservedUntil is the holding order's deadline while it is unpaid;
	// SoldAt is set once the order is paid.
	ReservedUntil time.Time
	SoldAt        time.Time
	BuyerID       string // the holding order's buyer, while reserved or sold
	Seller        string // the seller's display name
	// ShowID is the show the ticket is for, "" for a listing that belongs
	// to none (the seed's {title, price}); Show is what it shows of it.
	ShowID string
	Show   ShowRef
	// Section, Row and Seat are as printed on the ticket, each optional
	// ("" for general admission); FaceValueCents is its printed price, 0
	// when not given.
	Section, Row, Seat string
	FaceValueCents     int64
	// Delivered says the seller attached the ticket itself: its buyer
	// downloads it the moment they have paid.
	Delivered bool
}

// Seats is where the ticket is for: "Section A · Row 12 · Seat 7", or
// "General admission" when it names none.
func (t Ticket) Seats() string { return views.Seats(t.Section, t.Row, t.Seat) }

// Sold reports whether the ticket was paid for.
func (t Ticket) Sold() bool { return !t.SoldAt.IsZero() }

// Reserved reports whether an order holds the ticket.
func (t Ticket) Reserved() bool { return t.OrderID != "" }

// MarshalJSON writes the seed's shape: {id, title, price, userId, version,
// orderId}, the price in currency units and orderId null while on sale,
// with the show's listing fields: showId, section, row, seat, faceValue,
// each null when unset.
func (t Ticket) MarshalJSON() ([]byte, error) {
	null := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	var face *json.Number
	if t.FaceValueCents > 0 {
		n := web.Units(t.FaceValueCents)
		face = &n
	}
	return json.Marshal(struct {
		ID        string       `json:"id"`
		Title     string       `json:"title"`
		Price     json.Number  `json:"price"`
		UserID    string       `json:"userId"`
		Version   int64        `json:"version"`
		OrderID   *string      `json:"orderId"`
		ShowID    *string      `json:"showId"`
		Section   *string      `json:"section"`
		Row       *string      `json:"row"`
		Seat      *string      `json:"seat"`
		FaceValue *json.Number `json:"faceValue"`
	}{t.ID, t.Title, web.Units(t.PriceCents), t.UserID, t.Version, null(t.OrderID),
		null(t.ShowID), null(t.Section), null(t.Row), null(t.Seat), face})
}

// Events this module appends.
const (
	eventTicketCreated = "ticket:created"
	eventTicketUpdated = "ticket:updated"
)

// ticketChanged is the payload of ticket:created and ticket:updated: the whole
// ticket after the change, and what the change was. Price is in integer
// cents; OrderID is "" while the ticket is on sale.
type ticketChanged struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Price     int64  `json:"price"`
	UserID    string `json:"userId"`
	OrderID   string `json:"orderId"`
	Version   int64  `json:"version"`
	Change    change `json:"change"`
	ShowID    string `json:"showId,omitempty"`
	Section   string `json:"section,omitempty"`
	Row       string `json:"row,omitempty"`
	Seat      string `json:"seat,omitempty"`
	FaceValue int64  `json:"faceValue,omitempty"` // cents
}

// change says what a ticket event did.
type change string

// The changes.
const (
	listed   change = "listed"   // created
	edited   change = "edited"   // title or price
	reserved change = "reserved" // an order holds it
	released change = "released" // back on sale
	sold     change = "sold"
)

func changed(t Ticket, c change) ticketChanged {
	return ticketChanged{ID: t.ID, Title: t.Title, Price: t.PriceCents, UserID: t.UserID, OrderID: t.OrderID, Version: t.Version, Change: c,
		ShowID: t.ShowID, Section: t.Section, Row: t.Row, Seat: t.Seat, FaceValue: t.FaceValueCents}
}

const (
	maxTitle = 120
	// maxPrice keeps prices sane (and far from int64 overflow): $1,000,000.
	maxPrice = 100_000_000
)

// ParsePrice reads a price in currency units ("20", "10.5", "10.55") into
// integer cents, exactly: no floating point on the way.
func ParsePrice(s string) (int64, error) { return parseMoney("price", "Price", s) }

// parseMoney is ParsePrice for any amount field: field names it in the
// error, name starts the message.
func parseMoney(field, name, s string) (int64, error) {
	invalid := func(msg string) error {
		msg = name + strings.TrimPrefix(msg, "Price")
		return &problem.Error{Kind: problem.Invalid, Message: msg, Fields: map[string]string{field: msg}}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, invalid("Price is required")
	}
	neg := strings.HasPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if whole == "" || !digits(whole) || (hasDot && !digits(frac)) || (hasDot && frac == "") {
		return 0, invalid("Price must be a number")
	}
	if len(frac) > 2 {
		return 0, invalid("Price must have at most two decimals")
	}
	if len(whole) > 9 {
		return 0, invalid("Price must be at most 1,000,000")
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	frac += strings.Repeat("0", 2-len(frac))
	f, _ := strconv.ParseInt(frac, 10, 64)
	cents := w*100 + f
	if neg || cents <= 0 {
		return 0, invalid("Price must be greater than 0")
	}
	if cents > maxPrice {
		return 0, invalid("Price must be at most 1,000,000")
	}
	return cents, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Listing is what a seller says about a ticket: the seed's title and
// price, and for a show's ticket the show, the seat and the face value.
type Listing struct {
	Title              string
	PriceCents         int64
	ShowID             string
	Section, Row, Seat string
	FaceValueCents     int64 // 0: not given
}

// validateListing checks a listing for sh (nil for none) at now, every
// field at once, and returns it as stored. A show's listing may leave the
// title out (it is the show's), may not be for a show that has started,
// and with a price cap (capPercent > 0) needs its face value and may ask
// at most that much above it.
func validateListing(l Listing, sh *Show, capPercent int, now time.Time) (Listing, error) {
	l.Title, l.Section, l.Row, l.Seat = strings.TrimSpace(l.Title), strings.TrimSpace(l.Section), strings.TrimSpace(l.Row), strings.TrimSpace(l.Seat)
	if l.Title == "" && sh != nil {
		l.Title = sh.Title
	}
	_, err := validate(l.Title, l.PriceCents)
	fields := map[string]string{}
	if p, ok := problem.As(err); ok {
		fields = p.Fields
	}
	for _, part := range []struct{ field, name, v string }{{"section", "Section", l.Section}, {"row", "Row", l.Row}, {"seat", "Seat", l.Seat}} {
		if msg := text.Line(part.name, part.v, maxSeatPart); msg != "" {
			fields[part.field] = msg
		}
	}
	if l.FaceValueCents > maxPrice {
		fields["faceValue"] = "Face value must be at most 1,000,000"
	}
	switch {
	case sh == nil:
	case sh.Started(now):
		fields["showId"] = "This show has started; its tickets can no longer be listed"
	case capPercent > 0 && l.FaceValueCents == 0:
		fields["faceValue"] = fmt.Sprintf("Face value is required: the asking price may be at most %d%% above it", capPercent)
	case capPercent > 0 && fields["price"] == "" && l.PriceCents > priceCap(l.FaceValueCents, capPercent):
		fields["price"] = fmt.Sprintf("Price must be at most %s (the face value plus %d%%)", views.Money(priceCap(l.FaceValueCents, capPercent)), capPercent)
	}
	return l, problem.Fields(fields)
}

// priceCap is the highest asking price for a face value: plus percent,
// rounded down to the cent.
func priceCap(faceCents int64, percent int) int64 { return faceCents * int64(100+percent) / 100 }

func validate(title string, priceCents int64) (string, error) {
	title = strings.TrimSpace(title)
	fields := map[string]string{}
	switch {
	case title == "":
		fields["title"] = "Title is required"
	default:
		if msg := text.Line("Title", title, maxTitle); msg != "" {
			fields["title"] = msg
		}
	}
	if priceCents <= 0 {
		fields["price"] = "Price must be greater than 0"
	} else if priceCents > maxPrice {
		fields["price"] = "Price must be at most 1,000,000"
	}
	return title, problem.Fields(fields)
}
