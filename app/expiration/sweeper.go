package expiration

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// Sweeper runs SweepOnce every interval with gocron, in singleton mode: a
// slow sweep is never overlapped by the next one, which is skipped instead.
// The first sweep runs at Start, so deadlines that passed while the process
// was down are handled at once.
type Sweeper struct {
	store    *Store
	interval time.Duration
	logger   *slog.Logger
	sched    gocron.Scheduler
	ctx      context.Context
	cancel   context.CancelFunc

	mu       sync.Mutex
	last     time.Duration
	lastN    int
	lastErr  error
	stopOnce sync.Once
}

// NewSweeper prepares a sweeper; nothing runs until Start.
func NewSweeper(s *Store, interval time.Duration, logger *slog.Logger) (*Sweeper, error) {
	if logger == nil {
		logger = slog.Default()
	}
	sched, err := gocron.NewScheduler(gocron.WithStopTimeout(4 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("new scheduler: %w", err)
	}
	sw := &Sweeper{store: s, interval: interval, logger: logger, sched: sched}
	sw.ctx, sw.cancel = context.WithCancel(context.Background())
	_, err = sched.NewJob(
		gocron.DurationJob(interval),
		gocron.NewTask(sw.sweep),
		gocron.WithName("expiration sweep"),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()),
	)
	if err != nil {
		return nil, fmt.Errorf("schedule sweep: %w", err)
	}
	return sw, nil
}

func (sw *Sweeper) sweep() {
	start := time.Now()
	n, err := sw.store.SweepOnce(sw.ctx)
	took := time.Since(start)
	sw.mu.Lock()
	sw.last, sw.lastN, sw.lastErr = took, n, err
	sw.mu.Unlock()
	switch {
	case err != nil && sw.ctx.Err() == nil:
		sw.logger.Error("expiration sweep failed; retrying next interval", "err", err, "swept", n)
	case n > 0:
		sw.logger.Info("expired reservations", "count", n, "took", took)
	}
}

// Start begins sweeping.
func (sw *Sweeper) Start() { sw.sched.Start() }

// Stop ends the schedule. A sweep in progress is cancelled first (its
// transaction rolls back; the next start sweeps those deadlines again), so
// stopping never waits on a slow sweep. Calling it again does nothing.
func (sw *Sweeper) Stop() error {
	var err error
	sw.stopOnce.Do(func() {
		sw.cancel()
		err = sw.sched.Shutdown()
	})
	return err
}

// Last reports the most recent sweep: how long it took, how many
// deadlines it swept, and its error.
func (sw *Sweeper) Last() (time.Duration, int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.last, sw.lastN, sw.lastErr
}
