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

	runMu   sync.Mutex
	sched   gocron.Scheduler // nil after Stop
	cancel  context.CancelFunc
	running bool

	mu      sync.Mutex
	last    time.Duration
	lastN   int
	lastErr error
}

// NewSweeper prepares a sweeper; nothing runs until Start.
func NewSweeper(s *Store, interval time.Duration, logger *slog.Logger) (*Sweeper, error) {
	if logger == nil {
		logger = slog.Default()
	}
	sw := &Sweeper{store: s, interval: interval, logger: logger}
	// The schedule is built once here to refuse a bad interval now, not
	// at Start; each Start after a Stop builds a new one.
	if err := sw.schedule(); err != nil {
		return nil, err
	}
	return sw, nil
}

// schedule builds the gocron scheduler and its one job.
func (sw *Sweeper) schedule() error {
	sched, err := gocron.NewScheduler(gocron.WithStopTimeout(4 * time.Second))
	if err != nil {
		return fmt.Errorf("new scheduler: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = sched.NewJob(
		gocron.DurationJob(sw.interval),
		gocron.NewTask(func() { sw.sweep(ctx) }),
		gocron.WithName("expiration sweep"),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()),
	)
	if err != nil {
		cancel()
		return fmt.Errorf("schedule sweep: %w", err)
	}
	sw.sched, sw.cancel = sched, cancel
	return nil
}

func (sw *Sweeper) sweep(ctx context.Context) {
	start := time.Now()
	n, err := sw.store.SweepOnce(ctx)
	took := time.Since(start)
	sw.mu.Lock()
	sw.last, sw.lastN, sw.lastErr = took, n, err
	sw.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil:
		sw.logger.Error("expiration sweep failed; retrying next interval", "err", err, "swept", n)
	case n > 0:
		sw.logger.Info("expired reservations", "count", n, "took", took)
	}
}

// Start begins sweeping. After a Stop it begins again (a node of a
// cluster sweeps only while it is the primary).
func (sw *Sweeper) Start() {
	sw.runMu.Lock()
	defer sw.runMu.Unlock()
	if sw.running {
		return
	}
	if sw.sched == nil {
		if err := sw.schedule(); err != nil {
			sw.logger.Error("expiration sweep cannot start", "err", err)
			return
		}
	}
	sw.sched.Start()
	sw.running = true
}

// Stop ends the schedule. A sweep in progress is cancelled first (its
// transaction rolls back; the next start sweeps those deadlines again), so
// stopping never waits on a slow sweep. Stopping a sweeper that is not
// running does nothing.
func (sw *Sweeper) Stop() error {
	sw.runMu.Lock()
	defer sw.runMu.Unlock()
	if sw.sched == nil {
		return nil
	}
	sw.cancel()
	err := sw.sched.Shutdown()
	sw.sched, sw.cancel, sw.running = nil, nil, false
	return err
}

// Last reports the most recent sweep: how long it took, how many
// deadlines it swept, and its error.
func (sw *Sweeper) Last() (time.Duration, int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.last, sw.lastN, sw.lastErr
}
