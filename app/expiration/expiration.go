// Package expiration owns the schedule of order deadlines
// (expiration.db). It learns each deadline from order:created, forgets it
// on order:cancelled or order:completed, and a sweeper appends
// expiration:complete for every deadline that has passed, removing those
// rows in the same transaction, so each deadline fires exactly once. The
// orders module cancels the order unless it was paid meanwhile.
//
// It replaces the seed's Bull queue of delayed jobs: a deadline is a row,
// and a restart finds the ones that passed while the process was down.
package expiration

import (
	"embed"
	"time"

	"ticketing/db"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns expiration.db's schema.
func Migrations() db.Migrations { return db.Embedded("expiration", migrations) }

// EventExpirationComplete is appended when an order's deadline passes.
const EventExpirationComplete = "expiration:complete"

// Complete is the payload of expiration:complete.
type Complete struct {
	OrderID string `json:"orderId"`
}

// orderEvent is the part of the orders module's events this module reads.
type orderEvent struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expiresAt"`
}
