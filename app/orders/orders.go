// Package orders owns reservations (orders.db). Reserving a ticket writes
// an order and order:created in one transaction; a partial unique index
// allows one live (not cancelled) order per ticket, so the database itself
// refuses a second reservation however close the race. An order is
// cancelled by its buyer or by the expiration module's expiration:complete,
// unless it is complete; it completes only on the payments module's
// payment:created, and never once cancelled.
//
// Orders keeps its own copy of the tickets (title, price, seller, show and
// seat) and of the shows (where and when) from the tickets module's
// events, as the seed's orders service did. A show's start bounds its
// tickets' reservations: none once it has begun (checked in the
// reservation's transaction, on this copy), and none that outlives it.
package orders

import (
	"embed"
	"encoding/json"
	"fmt"
	"time"

	"ticketing/app/web"
	"ticketing/db"
	"ticketing/views"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns orders.db's schema.
func Migrations() db.Migrations { return db.Embedded("orders", migrations) }

// Status is where an order is in its life. The values are the seed's.
type Status string

// The statuses. created → (awaiting:payment) → complete, or cancelled from
// any status but complete.
const (
	Created         Status = "created"
	AwaitingPayment Status = "awaiting:payment"
	Complete        Status = "complete"
	Cancelled       Status = "cancelled"
)

// Ticket is the orders module's copy of a ticket.
type Ticket struct {
	ID                 string
	Title              string
	PriceCents         int64
	UserID             string
	Version            int64
	ShowID             string // "" for a ticket without a show
	Section, Row, Seat string
	Delivered          bool // the seller attached the ticket itself
}

// Seats is where the ticket is for: "Section A · Row 12 · Seat 7", or
// "General admission".
func (t Ticket) Seats() string { return views.Seats(t.Section, t.Row, t.Seat) }

// Show is the orders module's copy of a show: what the order page says
// of it, and its start.
type Show struct {
	ID       string
	Title    string
	Venue    string
	City     string
	StartsAt time.Time
	TimeZone string
	Version  int64
}

// Local is the show's start in the venue's zone.
func (s Show) Local() time.Time { return views.InZone(s.StartsAt, s.TimeZone) }

// Order is one reservation.
type Order struct {
	ID         string
	UserID     string
	Status     Status
	ExpiresAt  time.Time
	PriceCents int64 // the price when reserved
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Ticket     Ticket
	Show       Show // zero for a ticket without a show
	// Refunded is set when a payment for the order was given back (it
	// arrived after the order was cancelled or expired).
	Refunded bool
}

// Cancellable reports whether the order can still be cancelled.
func (o Order) Cancellable() bool { return o.Status != Complete && o.Status != Cancelled }

// RanOut reports whether the order was cancelled by its deadline (it
// ended at or after it) rather than by its buyer before.
func (o Order) RanOut() bool { return o.Status == Cancelled && !o.UpdatedAt.Before(o.ExpiresAt) }

// Changing reports whether the order page should follow changes: anything but
// a completed order can still change (a cancelled one, to refunded), and a
// completed one until its ticket can be downloaded.
func (o Order) Changing() bool { return o.Status != Complete || !o.Ticket.Delivered }

// StreamKey names the order's visible state, for its live stream.
func (o Order) StreamKey() string {
	return fmt.Sprintf("%d-%t-%t", o.Version, o.Refunded, o.Ticket.Delivered)
}

// Expired reports whether an unpaid order's deadline has passed at now.
func (o Order) Expired(now time.Time) bool { return o.Cancellable() && !now.Before(o.ExpiresAt) }

// MarshalJSON writes the seed's shape: {id, userId, status, expiresAt,
// version, ticket: {id, title, price}}, with the price the order was
// reserved at, in currency units.
func (o Order) MarshalJSON() ([]byte, error) {
	type ticket struct {
		ID    string      `json:"id"`
		Title string      `json:"title"`
		Price json.Number `json:"price"`
	}
	return json.Marshal(struct {
		ID        string `json:"id"`
		UserID    string `json:"userId"`
		Status    Status `json:"status"`
		ExpiresAt string `json:"expiresAt"`
		Version   int64  `json:"version"`
		Ticket    ticket `json:"ticket"`
	}{o.ID, o.UserID, o.Status, o.ExpiresAt.UTC().Format(time.RFC3339), o.Version,
		ticket{o.Ticket.ID, o.Ticket.Title, web.Units(o.PriceCents)}})
}

// Events this module appends.
const (
	eventOrderCreated   = "order:created"
	eventOrderCancelled = "order:cancelled"
	eventOrderCompleted = "order:completed"
	// eventOrderRefunded says a payment for the order was given back (it
	// raced the order's end); the status stays what it was.
	eventOrderRefunded = "order:refunded"
	// eventOrderTicketReady says the ticket of a complete order can be
	// downloaded now (its seller attached it after the sale): the order
	// page, which follows this log, offers it at once.
	eventOrderTicketReady = "order:ticket-ready"
)

// ticketRef is how order events name their ticket.
type ticketRef struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"` // set on order:created
	Price int64  `json:"price,omitempty"` // cents; set on order:created
}

// orderCreated is the payload of order:created.
type orderCreated struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	Status    Status    `json:"status"`
	ExpiresAt time.Time `json:"expiresAt"`
	Version   int64     `json:"version"`
	Ticket    ticketRef `json:"ticket"`
}

// orderChanged is the payload of order:cancelled, order:completed and
// order:refunded.
type orderChanged struct {
	ID      string    `json:"id"`
	UserID  string    `json:"userId"` // the buyer
	Version int64     `json:"version"`
	Ticket  ticketRef `json:"ticket"`
}
