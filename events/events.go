// Package events is the event log every module writes and the consumers that
// carry events between modules.
//
// Each module's file holds an append-only events table (its outbox) and a
// consumer_positions table. A module appends an event inside the same
// transaction as the change it announces, so both happen or neither does.
// A consumer reads a source module's log after its recorded position and
// applies each event in the consuming module's own write transaction,
// together with the new position: an event's effect is applied exactly once,
// in order per source, whatever crashes in between.
//
// Polling the source file is the transport. An append wakes the consumers of
// its log right after commit; the poll interval is only a safety net.
//
// This package is the only code that knows the tables; modules see Log.Append
// and Consumers.Handle.
package events

import (
	"context"
	"embed"
	"encoding/json"
	"time"

	"ticketing/db"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the events tables' migrations, applied to every module
// file before the module's own.
func Migrations() db.Migrations {
	return db.Embedded("events", migrationFS)
}

// Event is one row of a module's log.
type Event struct {
	Source    string          // the module whose log it is in ("orders")
	Seq       int64           // its position in that log
	Type      string          // "order:created"
	Subject   string          // the id of the thing it is about
	Version   int64           // that thing's version after the change
	Data      json.RawMessage // the payload, a JSON object
	CreatedAt time.Time
}

// Decode unmarshals the event's data into v.
func (e Event) Decode(v any) error {
	return json.Unmarshal(e.Data, v)
}

// Handler applies one event inside the consuming module's transaction. It
// must do all its writes through tx; returning an error rolls them back
// together with the position, and the event is retried.
type Handler func(ctx context.Context, tx *db.Tx, e Event) error

// Options tune a Bus. Zero values take the defaults.
type Options struct {
	PollInterval time.Duration // safety-net poll; default 1s
	WaitTimeout  time.Duration // read-your-writes bound; default 2s
	MinBackoff   time.Duration // first retry delay of a failing handler; default 50ms
	MaxBackoff   time.Duration // retry delay cap; default 10s
	StuckAfter   int           // consecutive failures before a consumer counts as stuck; default 3
	BatchSize    int           // events applied per transaction; default 256
	// Linger is how long a woken consumer waits for more events before
	// reading when more than one request is waiting on its log
	// (read-your-writes): under load, fewer and larger transactions; a
	// lone request's event is applied at once. Default 500µs; negative
	// disables.
	Linger time.Duration
	// BackgroundLinger is how long a background consumer (InBackground)
	// waits after a wake-up before reading: nothing waits for it, so it
	// lets the events of a rush pile up and applies them in one
	// transaction. Every commit costs the same few fsyncs whatever its
	// size, and on a LiteFS mount each is milliseconds. Default 100ms;
	// negative disables.
	BackgroundLinger time.Duration
	// PositionEvery bounds how often a consumer records its position when
	// nothing it reads has a handler (the delivery module ignores most of
	// the orders log): those batches commit nothing, the position is kept
	// in memory and written with the next real change or after this long.
	// A crash then re-reads, and ignores again, at most that much.
	// Default 1s; negative writes every batch.
	PositionEvery time.Duration

	// FailPoint, when set, runs inside every consumer transaction after
	// the handlers and before the position is recorded; an error it
	// returns rolls the transaction back like a crash at that point.
	// Fault-injection for tests and drills only.
	FailPoint func(consumer, source string, last Event) error
}

func (o Options) withDefaults() Options {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 2 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = 3
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Linger == 0 {
		o.Linger = 500 * time.Microsecond
	}
	if o.BackgroundLinger == 0 {
		o.BackgroundLinger = 100 * time.Millisecond
	}
	if o.PositionEvery == 0 {
		o.PositionEvery = time.Second
	}
	return o
}
