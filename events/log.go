package events

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"ticketing/db"
)

// Log is one module's event log: the events table in the module's file.
type Log struct {
	bus *Bus
	db  *db.DB

	headLoaded atomic.Bool
	head       atomic.Int64 // highest committed seq known to this process
	waiters    atomic.Int32 // requests waiting for this log's consumers

	mu       sync.Mutex
	wakeups  []chan struct{}         // one per consumer loop reading this log
	counts   map[string]int64        // events committed by this process, by type
	payloads map[string]reflect.Type // declared payloads, by type (Publishes)

	tailMu sync.Mutex
	tail   []Event // the latest events this process committed, by seq
}

// tailSize bounds the recent events a log keeps in memory. Consumers run
// milliseconds behind, so they read from memory; one further behind (at
// start, or after a failure) reads the file.
const tailSize = 1024

// Name is the source name consumers use for this log: the module's name.
func (l *Log) Name() string { return l.db.Name }

// Append inserts an event inside the caller's write transaction and returns
// its seq. The event becomes visible to consumers only when tx commits:
// then the log's head advances, its consumers are woken, and the seq is
// recorded in ctx's read-your-writes tracker. If tx rolls back, nothing
// happened.
func (l *Log) Append(ctx context.Context, tx *db.Tx, typ, subject string, version int64, data any) (int64, error) {
	raw, ok := data.(json.RawMessage)
	if ok {
		raw = slices.Clone(raw) // the tail keeps it; the caller may reuse its buffer
	} else {
		b, err := json.Marshal(data)
		if err != nil {
			return 0, fmt.Errorf("append %s %s: encode data: %w", typ, subject, err)
		}
		raw = b
	}
	if len(raw) == 0 || raw[0] != '{' {
		return 0, fmt.Errorf("append %s %s: data must be a JSON object", typ, subject)
	}
	now := time.Now().UTC().Truncate(time.Microsecond) // what the file keeps
	res, err := tx.ExecContext(ctx,
		"INSERT INTO events (type, subject, version, data, created_at) VALUES (?, ?, ?, ?, ?)",
		typ, subject, version, string(raw), db.Timestamp(now))
	if err != nil {
		return 0, fmt.Errorf("append %s %s: %w", typ, subject, err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("append %s %s: %w", typ, subject, err)
	}
	tr := trackerFrom(ctx)
	tx.AfterCommit(func() {
		l.mu.Lock()
		if l.counts == nil {
			l.counts = map[string]int64{}
		}
		l.counts[typ]++
		l.mu.Unlock()
		l.remember(Event{Source: l.Name(), Seq: seq, Type: typ, Subject: subject, Version: version, Data: raw, CreatedAt: now})
		l.committed(seq)
		if tr != nil {
			tr.record(l.Name(), seq)
		}
	})
	return seq, nil
}

// committed advances the in-memory head and wakes the log's consumers.
func (l *Log) committed(seq int64) {
	l.advanceHead(seq)
	l.wake()
}

func (l *Log) advanceHead(seq int64) {
	for {
		cur := l.head.Load()
		if seq <= cur || l.head.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// wake nudges every consumer loop of this log without blocking: a wake-up
// already pending covers this one too, so many appends coalesce.
func (l *Log) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ch := range l.wakeups {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (l *Log) subscribe() chan struct{} {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.wakeups = append(l.wakeups, ch)
	l.mu.Unlock()
	return ch
}

// Head returns the highest committed seq of the log. The first call reads
// it from the file; after that, commits in this process keep it current.
func (l *Log) Head(ctx context.Context) (int64, error) {
	if !l.headLoaded.Load() {
		var seq int64
		err := l.db.Read().QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&seq)
		if err != nil {
			return 0, fmt.Errorf("read head of %s: %w", l.Name(), err)
		}
		l.advanceHead(seq)
		l.headLoaded.Store(true)
	}
	return l.head.Load(), nil
}

// reload reads the head from the file, even when it is lower than the one
// in memory (the file was replaced by another node's), and drops the
// in-memory tail, which may hold events the file no longer has.
func (l *Log) reload(ctx context.Context) error {
	var seq int64
	err := l.db.Read().QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&seq)
	if err != nil {
		return fmt.Errorf("read head of %s: %w", l.Name(), err)
	}
	l.tailMu.Lock()
	l.tail = nil
	l.tailMu.Unlock()
	l.head.Store(seq)
	l.headLoaded.Store(true)
	return nil
}

// remember keeps a committed event in the in-memory tail. Commits finish
// their hooks in any order, so it is inserted in seq order.
func (l *Log) remember(e Event) {
	l.tailMu.Lock()
	defer l.tailMu.Unlock()
	i := len(l.tail)
	for i > 0 && l.tail[i-1].Seq > e.Seq {
		i--
	}
	l.tail = slices.Insert(l.tail, i, e)
	if n := len(l.tail); n > 2*tailSize {
		l.tail = slices.Clone(l.tail[n-tailSize:])
	}
}

// recent returns up to limit events after seq from the in-memory tail, or
// false when the tail does not hold the next one. It returns only an
// unbroken run of seqs: a gap is an event whose commit hook has not run
// yet (or one written by another process), which the next read finds.
func (l *Log) recent(after int64, limit int) ([]Event, bool) {
	l.tailMu.Lock()
	defer l.tailMu.Unlock()
	i, found := slices.BinarySearchFunc(l.tail, after+1, func(e Event, seq int64) int { return cmp.Compare(e.Seq, seq) })
	if !found {
		return nil, false
	}
	j := i + 1
	for j < len(l.tail) && j-i < limit && l.tail[j].Seq == l.tail[j-1].Seq+1 {
		j++
	}
	return slices.Clone(l.tail[i:j]), true
}

// read returns up to limit events after seq, in order: from memory when
// this process committed them lately, else from the file.
func (l *Log) read(ctx context.Context, after int64, limit int) ([]Event, error) {
	if out, ok := l.recent(after, limit); ok {
		return out, nil
	}
	stmt, err := l.db.ReadStmt(ctx, "SELECT seq, type, subject, version, data, created_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
	if err != nil {
		return nil, fmt.Errorf("read %s events after %d: %w", l.Name(), after, err)
	}
	rows, err := stmt.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s events after %d: %w", l.Name(), after, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e := Event{Source: l.Name()}
		var data, created string
		if err := rows.Scan(&e.Seq, &e.Type, &e.Subject, &e.Version, &data, &created); err != nil {
			return nil, fmt.Errorf("read %s events: %w", l.Name(), err)
		}
		e.Data = json.RawMessage(data)
		e.CreatedAt, _ = db.ParseTime(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s events: %w", l.Name(), err)
	}
	if n := len(out); n > 0 {
		l.advanceHead(out[n-1].Seq) // rows written outside this process
	}
	return out, nil
}

// Watch returns a channel that receives a value (coalesced) after each
// commit that appends to the log, and a function to stop watching. Live
// views (Server-Sent Events) use it to wake without polling.
func (l *Log) Watch() (<-chan struct{}, func()) {
	ch := l.subscribe()
	return ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, c := range l.wakeups {
			if c == ch {
				l.wakeups = append(l.wakeups[:i], l.wakeups[i+1:]...)
				return
			}
		}
	}
}

// Read returns up to limit events after seq, in order.
func (l *Log) Read(ctx context.Context, after int64, limit int) ([]Event, error) {
	return l.read(ctx, after, limit)
}

// Counts returns how many events of each type this process has committed
// to the log, for metrics.
func (l *Log) Counts() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.counts))
	for k, v := range l.counts {
		out[k] = v
	}
	return out
}
