package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"ticketing/db"
)

// Bus knows every module's log and every consumer in the process.
type Bus struct {
	logger *slog.Logger
	opts   Options

	mu        sync.Mutex
	logs      map[string]*Log
	consumers map[*db.DB]*Consumers
	order     []*Consumers // registration order, for stable Status output
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	started   bool
}

// NewBus returns an empty bus. A nil logger means slog.Default().
func NewBus(logger *slog.Logger, opts Options) *Bus {
	if logger == nil {
		logger = slog.Default()
	}
	return &Bus{
		logger:    logger,
		opts:      opts.withDefaults(),
		logs:      map[string]*Log{},
		consumers: map[*db.DB]*Consumers{},
	}
}

// Log returns the log of the module that owns d; the source name is d.Name.
func (b *Bus) Log(d *db.DB) *Log {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.logs[d.Name]; ok {
		return l
	}
	l := &Log{bus: b, db: d}
	b.logs[d.Name] = l
	return l
}

func (b *Bus) log(name string) (*Log, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.logs[name]
	return l, ok
}

// Consumers returns the consuming side of the module that owns d.
func (b *Bus) Consumers(d *db.DB) *Consumers {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.consumers[d]; ok {
		return c
	}
	c := &Consumers{bus: b, db: d, handlers: map[string]map[string]Handler{}, loops: map[string]*loop{}}
	b.consumers[d] = c
	b.order = append(b.order, c)
	return c
}

func (b *Bus) allConsumers() []*Consumers {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*Consumers(nil), b.order...)
}

// Start launches one goroutine per (consuming module, source) pair. They
// run until ctx is cancelled or Stop is called.
func (b *Bus) Start(ctx context.Context) error {
	var loops []*loop
	for _, c := range b.allConsumers() {
		for _, source := range c.sources() {
			l, err := c.loop(source)
			if err != nil {
				return err
			}
			loops = append(loops, l)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return fmt.Errorf("events: bus already started")
	}
	b.started = true
	ctx, b.cancel = context.WithCancel(ctx)
	for _, l := range loops {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			l.run(ctx)
		}()
	}
	return nil
}

// Stop cancels the loops and waits for them to return. A handler running
// when Stop is called finishes (or sees its context cancelled) first.
func (b *Bus) Stop() {
	b.mu.Lock()
	cancel := b.cancel
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.wg.Wait()
	b.mu.Lock()
	b.started, b.cancel = false, nil
	b.mu.Unlock()
}

// Refresh forgets what the process remembers of the module file name and
// reads it again: its log's head (which may have moved either way) and
// the positions of the consumers it holds. The log's watchers are woken.
// A replica calls it when the file has changed under it (a commit
// replicated from the primary), and every node when it becomes or stops
// being the primary: the file is then the only truth. Consumers must not
// be running.
func (b *Bus) Refresh(ctx context.Context, name string) error {
	if l, ok := b.log(name); ok {
		if err := l.reload(ctx); err != nil {
			return err
		}
		l.wake()
	}
	for _, c := range b.allConsumers() {
		if c.db.Name != name {
			continue
		}
		c.mu.Lock()
		loops := slices.Collect(maps.Values(c.loops))
		c.mu.Unlock()
		for _, l := range loops {
			l.mu.Lock()
			l.posLoaded = false
			l.mu.Unlock()
		}
	}
	return nil
}

// loopsOf returns the loops that consume source.
func (b *Bus) loopsOf(source string, background bool) []*loop {
	var out []*loop
	for _, c := range b.allConsumers() {
		c.mu.Lock()
		_, consumes := c.handlers[source]
		awaited := background || !c.background[""] && !c.background[source]
		c.mu.Unlock()
		if !consumes || !awaited {
			continue
		}
		if l, err := c.loop(source); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// ConsumerStatus is one consumer's progress through one source's log.
type ConsumerStatus struct {
	Consumer string `json:"consumer"` // consuming module
	Source   string `json:"source"`
	Position int64  `json:"position"`
	Head     int64  `json:"head"`
	Lag      int64  `json:"lag"`
	Stuck    bool   `json:"stuck"` // failed StuckAfter times in a row on one event
	StuckSeq int64  `json:"stuckSeq,omitempty"`
	Failures int    `json:"failures,omitempty"` // consecutive failures on the current event
	Error    string `json:"error,omitempty"`    // last error while failing
	// ApplyP50Ms and ApplyP99Ms are the append-to-apply times of the
	// recent events (see Latencies), in milliseconds.
	ApplyP50Ms float64 `json:"applyP50Ms"`
	ApplyP99Ms float64 `json:"applyP99Ms"`
	// Errors counts every failed attempt since start.
	Errors int64 `json:"errors"`
}

// ErrAhead is a consumer whose position is past the head of its source's
// log: the source file is older than the consumer's (one came back from an
// older backup). Serving on would reuse seqs the consumer has applied, so
// the events appended under them would be skipped.
var ErrAhead = errors.New("a consumer is past the end of its source's log")

// CheckPositions returns ErrAhead, saying which file is behind which, if
// any consumer's position is past its source's head; the error of a
// position or head it could not read otherwise.
func (b *Bus) CheckPositions(ctx context.Context) error {
	gaps, errs := b.gaps(ctx)
	for _, g := range gaps {
		errs = append(errs, fmt.Errorf("%w: %s", ErrAhead, g))
	}
	return errors.Join(errs...)
}

// gaps returns every consumer past its source's head, and the errors of
// the positions and heads it could not read.
func (b *Bus) gaps(ctx context.Context) ([]Gap, []error) {
	var gaps []Gap
	var errs []error
	for _, s := range b.Status(ctx) {
		switch {
		case s.Error != "":
			errs = append(errs, fmt.Errorf("%s consuming %s: %s", s.Consumer, s.Source, s.Error))
		case s.Position > s.Head:
			gaps = append(gaps, Gap{Consumer: s.Consumer, Source: s.Source, Position: s.Position, Head: s.Head})
		}
	}
	return gaps, errs
}

// Status reports every consumer, for /healthz and metrics.
func (b *Bus) Status(ctx context.Context) []ConsumerStatus {
	var out []ConsumerStatus
	for _, c := range b.allConsumers() {
		for _, source := range c.sources() {
			l, err := c.loop(source)
			if err != nil {
				out = append(out, ConsumerStatus{Consumer: c.db.Name, Source: source, Stuck: true, Error: err.Error()})
				continue
			}
			out = append(out, l.status(ctx))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Consumer != out[j].Consumer {
			return out[i].Consumer < out[j].Consumer
		}
		return out[i].Source < out[j].Source
	})
	return out
}

// Latencies returns the time from append to apply of the most recent
// events (up to 16384) that consumer applied from source, oldest first.
// Append time is taken inside the source's transaction, just before its
// commit. Benchmarks and metrics read it.
func (b *Bus) Latencies(consumer, source string) []time.Duration {
	for _, c := range b.allConsumers() {
		if c.db.Name != consumer {
			continue
		}
		l, err := c.loop(source)
		if err != nil {
			return nil
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.latency.snapshot()
	}
	return nil
}

// latencies is a ring buffer of recent durations.
type latencies struct {
	buf  []time.Duration
	next int
	full bool
}

const latencySamples = 1 << 14

func (r *latencies) add(d time.Duration) {
	if r.buf == nil {
		r.buf = make([]time.Duration, latencySamples)
	}
	r.buf[r.next] = d
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

func (r *latencies) snapshot() []time.Duration {
	if !r.full {
		return append([]time.Duration(nil), r.buf[:r.next]...)
	}
	return append(append([]time.Duration(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}

// Logs returns every module's log.
func (b *Bus) Logs() []*Log {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*Log, 0, len(b.logs))
	for _, l := range b.logs {
		out = append(out, l)
	}
	return out
}
