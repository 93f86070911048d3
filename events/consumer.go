package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"ticketing/db"
)

// Consumers is the consuming side of one module: its handlers, by source
// and event type, and one loop per source it reads.
type Consumers struct {
	bus *Bus
	db  *db.DB

	mu       sync.Mutex
	handlers map[string]map[string]Handler      // source → type → handler
	payloads map[string]map[string]reflect.Type // source → type → declared payload (Handle[T])
	loops    map[string]*loop                   // source → loop
	// background are the sources (all, with "") whose events these
	// consumers apply without read-your-writes (Settle) waiting for them.
	background map[string]bool
}

// InBackground says nothing a response shows depends on these consumers
// applying the named sources' events (every source when none is named):
// the mail module's (a message is sent after the purchase, never as part
// of it), the delivery module's copy of the orders (read at download
// time, long after). A request's answer does not wait for them; WaitIdle
// still does.
func (c *Consumers) InBackground(sources ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.background == nil {
		c.background = map[string]bool{}
	}
	if len(sources) == 0 {
		c.background[""] = true
	}
	for _, s := range sources {
		c.background[s] = true
	}
}

// Handle registers h for events of type typ from the log named source. Call
// it before Start. Registering the same source and type twice is a wiring
// bug and panics.
func (c *Consumers) Handle(source, typ string, h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handlers[source] == nil {
		c.handlers[source] = map[string]Handler{}
	}
	if _, dup := c.handlers[source][typ]; dup {
		panic(fmt.Sprintf("events: %s already handles %s from %s", c.db.Name, typ, source))
	}
	c.handlers[source][typ] = h
}

func (c *Consumers) sources() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.handlers))
}

// loop returns the loop reading source, creating it on first use.
func (c *Consumers) loop(source string) (*loop, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.loops[source]; ok {
		return l, nil
	}
	src, ok := c.bus.log(source)
	if !ok {
		return nil, fmt.Errorf("events: %s consumes %q, but no module log has that name", c.db.Name, source)
	}
	l := &loop{
		c:        c,
		src:      src,
		handlers: c.handlers[source],
		wake:     src.subscribe(),
		changed:  make(chan struct{}),
	}
	c.loops[source] = l
	return l, nil
}

// PollOnce applies everything currently in every source this module
// consumes and returns how many events it went past (handled or not) and
// the first error. Tests call it instead of sleeping.
func (c *Consumers) PollOnce(ctx context.Context) (int, error) {
	total := 0
	for _, source := range c.sources() {
		l, err := c.loop(source)
		if err != nil {
			return total, err
		}
		for {
			n, err := l.step(ctx, true)
			total += n
			if err != nil {
				return total, err
			}
			if n < c.bus.opts.BatchSize {
				break
			}
		}
	}
	return total, nil
}

// loop carries one source's events into one consuming module.
type loop struct {
	c        *Consumers
	src      *Log
	handlers map[string]Handler
	wake     chan struct{}

	step1 sync.Mutex // one step at a time: the running loop and PollOnce
	saved time.Time  // when the position was last written (under step1)

	mu        sync.Mutex
	pos       int64
	posLoaded bool
	changed   chan struct{} // closed and replaced whenever pos advances
	failures  int           // consecutive failures on failSeq
	failSeq   int64
	lastErr   error
	errors    int64     // failed attempts since start
	latency   latencies // append-to-apply times of recent events
}

// background reports whether nothing waits for this loop (InBackground).
func (l *loop) background() bool {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.c.background[""] || l.c.background[l.src.Name()]
}

func (l *loop) name() string { return l.c.db.Name + "<-" + l.src.Name() }

// position returns the consumer's position, reading it from the consuming
// module's file the first time.
func (l *loop) position(ctx context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.posLoaded {
		return l.pos, nil
	}
	var seq int64
	err := l.c.db.Read().QueryRowContext(ctx, "SELECT seq FROM consumer_positions WHERE source = ?", l.src.Name()).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read position of %s: %w", l.name(), err)
	}
	l.pos, l.posLoaded = seq, true
	return seq, nil
}

func (l *loop) advance(seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq > l.pos {
		l.pos = seq
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.failures, l.failSeq, l.lastErr = 0, 0, nil
}

func (l *loop) fail(seq int64, err error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failSeq != seq {
		l.failures, l.failSeq = 0, seq
	}
	l.failures++
	l.errors++
	l.lastErr = err
	return l.failures
}

// step reads the next batch after the position and applies it. Unless
// force is set it trusts the log's in-memory head and skips the query when
// there is nothing new, which keeps idle wake-ups cheap. It returns how many
// events it went past.
func (l *loop) step(ctx context.Context, force bool) (int, error) {
	l.step1.Lock()
	defer l.step1.Unlock()
	pos, err := l.position(ctx)
	if err != nil {
		return 0, err
	}
	if !force {
		head, err := l.src.Head(ctx)
		if err == nil && head <= pos {
			return 0, nil
		}
	}
	batch, err := l.src.read(ctx, pos, l.c.bus.opts.BatchSize)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	if len(batch) > 1 {
		if err := l.apply(ctx, batch); err == nil {
			return len(batch), nil
		}
	}
	// Something in the batch failed and rolled the batch back. Apply one
	// event per transaction, so the events before the failing one land
	// and the failing one is pinned down, retried, and reported.
	for i, e := range batch {
		if err := l.apply(ctx, batch[i:i+1]); err != nil {
			if ctx.Err() != nil {
				return i, err // shutting down, not failing
			}
			n := l.fail(e.Seq, err)
			l.c.bus.logger.Error("event handler failed; will retry",
				"consumer", l.c.db.Name, "source", l.src.Name(), "seq", e.Seq, "type", e.Type,
				"subject", e.Subject, "failures", n, "err", err)
			return i, err
		}
	}
	return len(batch), nil
}

// apply runs the handlers for events and records the new position in one
// transaction of the consuming module: the effect and the position commit
// together or not at all.
func (l *loop) apply(ctx context.Context, events []Event) error {
	last := events[len(events)-1]
	opts := l.c.bus.opts
	handled := opts.FailPoint != nil || opts.PositionEvery < 0
	for _, e := range events {
		handled = handled || l.handlers[e.Type] != nil
	}
	if !handled && time.Since(l.saved) < opts.PositionEvery {
		// Nothing to apply: the position moves in memory only (behind
		// in the file is safe, those events are ignored again).
		l.advance(last.Seq)
		return nil
	}
	err := l.c.db.Tx(ctx, func(tx *db.Tx) error {
		for _, e := range events {
			h := l.handlers[e.Type]
			if h == nil {
				continue
			}
			if err := h(ctx, tx, e); err != nil {
				return fmt.Errorf("%s seq %d (%s %s): %w", l.name(), e.Seq, e.Type, e.Subject, err)
			}
		}
		if fp := l.c.bus.opts.FailPoint; fp != nil {
			if err := fp(l.c.db.Name, l.src.Name(), last); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx,
			"INSERT INTO consumer_positions (source, seq) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET seq = excluded.seq",
			l.src.Name(), last.Seq)
		return err
	})
	if err != nil {
		return err
	}
	l.saved = time.Now()
	l.advance(last.Seq)
	now := time.Now()
	l.mu.Lock()
	for _, e := range events {
		l.latency.add(now.Sub(e.CreatedAt))
	}
	l.mu.Unlock()
	return nil
}

// run is the loop's goroutine: apply what there is, then sleep until an
// append wakes it or the safety-net poll ticks. A failing event is retried
// with exponential backoff and never skipped.
func (l *loop) run(ctx context.Context) {
	opts := l.c.bus.opts
	tick := time.NewTicker(opts.PollInterval)
	defer tick.Stop()
	force := true
	for {
		n, err := l.step(ctx, force)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.mu.Lock()
			failures := l.failures
			l.mu.Unlock()
			delay := opts.MinBackoff << min(max(failures-1, 0), 20)
			if delay > opts.MaxBackoff || delay <= 0 {
				delay = opts.MaxBackoff
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			force = true
			continue
		}
		if n == opts.BatchSize {
			force = true // more may be waiting
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
			force = false
			if opts.BackgroundLinger > 0 && l.background() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(opts.BackgroundLinger):
				}
			} else if opts.Linger > 0 && l.src.waiters.Load() > 1 {
				// Several requests are waiting on this log: let a few
				// more of their events commit, so one transaction
				// applies them all.
				time.Sleep(opts.Linger)
			}
		case <-tick.C:
			force = true
		}
	}
}

// waitFor blocks until the loop has applied everything up to seq.
func (l *loop) waitFor(ctx context.Context, seq int64) error {
	if _, err := l.position(ctx); err != nil {
		return err
	}
	for {
		l.mu.Lock()
		pos, ch := l.pos, l.changed
		l.mu.Unlock()
		if pos >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%s at %d, waiting for %d (lag %d): %w", l.name(), pos, seq, seq-pos, ctx.Err())
		}
	}
}

func (l *loop) status(ctx context.Context) ConsumerStatus {
	pos, err := l.position(ctx)
	head, herr := l.src.Head(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ConsumerStatus{
		Consumer: l.c.db.Name,
		Source:   l.src.Name(),
		Position: pos,
		Head:     head,
		Lag:      max(head-pos, 0),
		Failures: l.failures,
		Errors:   l.errors,
	}
	if l.failures >= l.c.bus.opts.StuckAfter {
		s.Stuck, s.StuckSeq = true, l.failSeq
	}
	if lat := l.latency.snapshot(); len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		s.ApplyP50Ms, s.ApplyP99Ms = ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])
	}
	switch {
	case l.lastErr != nil:
		s.Error = l.lastErr.Error()
	case err != nil:
		s.Error = err.Error()
	case herr != nil:
		s.Error = herr.Error()
	}
	return s
}
