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

// eventDeadlinePassed is appended when an order's deadline passes (the
// seed's expiration:complete).
const eventDeadlinePassed = "expiration:complete"

// deadlinePassed is the payload of expiration:complete.
type deadlinePassed struct {
	OrderID string `json:"orderId"`
}

// The parts of the orders module's payloads this module reads.
type (
	// orderCreated is order:created.
	orderCreated struct {
		ID        string    `json:"id"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	// orderEnded is order:cancelled and order:completed.
	orderEnded struct {
		ID string `json:"id"`
	}
)
