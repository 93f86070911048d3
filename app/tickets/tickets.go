// Package tickets owns the tickets for sale (tickets.db): title, price in
// integer cents, seller, version, and the order holding the ticket while it
// is reserved or sold. It publishes ticket:created and ticket:updated, and
// consumes the orders module's order:created (lock) and order:cancelled
// (unlock), so that a reserved ticket leaves the list and cannot be edited.
package tickets

import (
	"embed"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"ticketing/app/problem"
	"ticketing/app/text"
	"ticketing/app/web"
	"ticketing/db"
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
}

// Sold reports whether the ticket was paid for.
func (t Ticket) Sold() bool { return !t.SoldAt.IsZero() }

// Reserved reports whether an order holds the ticket.
func (t Ticket) Reserved() bool { return t.OrderID != "" }

// MarshalJSON writes the seed's shape: {id, title, price, userId, version,
// orderId}, the price in currency units and orderId null while on sale.
func (t Ticket) MarshalJSON() ([]byte, error) {
	var orderID *string
	if t.OrderID != "" {
		orderID = &t.OrderID
	}
	return json.Marshal(struct {
		ID      string      `json:"id"`
		Title   string      `json:"title"`
		Price   json.Number `json:"price"`
		UserID  string      `json:"userId"`
		Version int64       `json:"version"`
		OrderID *string     `json:"orderId"`
	}{t.ID, t.Title, web.Units(t.PriceCents), t.UserID, t.Version, orderID})
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
	ID      string `json:"id"`
	Title   string `json:"title"`
	Price   int64  `json:"price"`
	UserID  string `json:"userId"`
	OrderID string `json:"orderId"`
	Version int64  `json:"version"`
	Change  change `json:"change"`
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
	return ticketChanged{ID: t.ID, Title: t.Title, Price: t.PriceCents, UserID: t.UserID, OrderID: t.OrderID, Version: t.Version, Change: c}
}

const (
	maxTitle = 120
	// maxPrice keeps prices sane (and far from int64 overflow): $1,000,000.
	maxPrice = 100_000_000
)

// ParsePrice reads a price in currency units ("20", "10.5", "10.55") into
// integer cents, exactly: no floating point on the way.
func ParsePrice(s string) (int64, error) {
	invalid := func(msg string) error {
		return &problem.Error{Kind: problem.Invalid, Message: msg, Fields: map[string]string{"price": msg}}
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
