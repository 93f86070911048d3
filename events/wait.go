package events

import (
	"context"
	"fmt"
	"sync"
)

// Wait blocks until every consumer of source has applied everything up to
// seq, or ctx ends, or Options.WaitTimeout passes; the error then says which
// consumer lags and by how much.
func (b *Bus) Wait(ctx context.Context, source string, seq int64) error {
	return b.wait(ctx, source, seq, true)
}

// wait is Wait, for the background consumers too or not.
func (b *Bus) wait(ctx context.Context, source string, seq int64, background bool) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.WaitTimeout)
	defer cancel()
	if l, ok := b.log(source); ok {
		l.waiters.Add(1)
		defer l.waiters.Add(-1)
	}
	for _, l := range b.loopsOf(source, background) {
		if err := l.waitFor(ctx, seq); err != nil {
			return err
		}
	}
	return nil
}

// tracker records, per source, the highest seq committed under one request.
type tracker struct {
	mu   sync.Mutex
	seqs map[string]int64
}

func (t *tracker) record(source string, seq int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seqs == nil {
		t.seqs = map[string]int64{}
	}
	if seq > t.seqs[source] {
		t.seqs[source] = seq
	}
}

func (t *tracker) take() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.seqs
	t.seqs = nil
	return s
}

type trackerKey struct{}

func trackerFrom(ctx context.Context) *tracker {
	t, _ := ctx.Value(trackerKey{}).(*tracker)
	return t
}

// Track returns a ctx that records the events committed under it, for
// Settle. The HTTP layer tracks every request.
func (b *Bus) Track(ctx context.Context) context.Context {
	return context.WithValue(ctx, trackerKey{}, &tracker{})
}

// Settle waits until the in-process consumers have applied every event
// committed under ctx (see Track), so a response sent after it reflects the
// request's effects in every module; background consumers are not waited
// for (Consumers.InBackground). It is bounded by WaitTimeout: past it, it
// logs the lag and returns, and the request still succeeds.
func (b *Bus) Settle(ctx context.Context) {
	t := trackerFrom(ctx)
	if t == nil {
		return
	}
	for source, seq := range t.take() {
		if err := b.wait(ctx, source, seq, false); err != nil {
			b.logger.Warn("read-your-writes wait timed out; answering anyway", "source", source, "seq", seq, "err", err)
		}
	}
}

// WaitIdle waits until every consumer has applied every log's current head,
// again and again until a pass finds nothing new (handlers append events of
// their own). Tests and drills use it before checking invariants.
func (b *Bus) WaitIdle(ctx context.Context) error {
	for {
		b.mu.Lock()
		logs := make([]*Log, 0, len(b.logs))
		for _, l := range b.logs {
			logs = append(logs, l)
		}
		b.mu.Unlock()
		heads := make(map[string]int64, len(logs))
		for _, l := range logs {
			h, err := l.Head(ctx)
			if err != nil {
				return err
			}
			heads[l.Name()] = h
			if err := b.Wait(ctx, l.Name(), h); err != nil {
				return err
			}
		}
		changed := false
		for _, l := range logs {
			if h, _ := l.Head(ctx); h != heads[l.Name()] {
				changed = true
			}
		}
		if !changed {
			return nil
		}
	}
}

// WaitHead waits until every consumer of source has applied everything the
// source's log holds right now.
func (b *Bus) WaitHead(ctx context.Context, source string) error {
	l, ok := b.log(source)
	if !ok {
		return fmt.Errorf("events: no log named %q", source)
	}
	head, err := l.Head(ctx)
	if err != nil {
		return err
	}
	return b.Wait(ctx, source, head)
}
