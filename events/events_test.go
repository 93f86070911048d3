package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/db"
	"ticketing/db/dbtest"
	"ticketing/events"
)

// counts is the consuming module's own table in these tests: how many times
// each subject's events were applied.
var countsMigrations = db.Migrations{Name: "test", FS: fstest.MapFS{
	"0001_counts.sql": {Data: []byte("CREATE TABLE counts (subject TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT;")},
}}

var fast = events.Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, StuckAfter: 3, WaitTimeout: 2 * time.Second}

type fixture struct {
	dir      string
	src, dst *db.DB
	other    *db.DB
	bus      *events.Bus
	log      *events.Log
}

// setup opens a source module "src" and two consuming modules, "dst" and
// "other", on files in dir.
func setup(t *testing.T, dir string, opts events.Options) *fixture {
	t.Helper()
	open := func(name string) *db.DB { return dbtest.Open(t, dir, name, countsMigrations) }
	f := &fixture{dir: dir, src: open("src"), dst: open("dst"), other: open("other")}
	f.bus = events.NewBus(dbtest.Quiet, opts)
	t.Cleanup(f.bus.Stop)
	f.log = f.bus.Log(f.src)
	return f
}

func (f *fixture) append(t testing.TB, ctx context.Context, n int, subject func(i int) string) {
	t.Helper()
	require.NoError(t, f.src.Tx(ctx, func(tx *db.Tx) error {
		for i := range n {
			if _, err := f.log.Append(ctx, tx, "thing:happened", subject(i), 1, map[string]int{"i": i}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// count is a handler that increments counts[subject].
func count(ctx context.Context, tx *db.Tx, e events.Event) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO counts (subject, n) VALUES (?, 1) ON CONFLICT (subject) DO UPDATE SET n = n + 1", e.Subject)
	return err
}

func counts(t testing.TB, d *db.DB) map[string]int {
	t.Helper()
	rows, err := d.Read().Query("SELECT subject, n FROM counts")
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		require.NoError(t, rows.Scan(&s, &n))
		out[s] = n
	}
	return out
}

func position(t testing.TB, d *db.DB, source string) int64 {
	t.Helper()
	var seq int64
	err := d.Read().QueryRow("SELECT seq FROM consumer_positions WHERE source = ?", source).Scan(&seq)
	require.NoError(t, err)
	return seq
}

func byIndex(i int) string { return fmt.Sprintf("s%d", i) }

// A handler whose writes are followed by a failure before commit (a crash
// between handler and position) leaves no trace; the retry applies the
// event exactly once.
func TestExactlyOnceAcrossAFailedTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	var attempts atomic.Int32
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		if err := count(ctx, tx, e); err != nil {
			return err
		}
		// Fails in the batch and again alone, then succeeds.
		if e.Subject == "s2" && attempts.Add(1) <= 2 {
			return errors.New("crash after the handler's writes")
		}
		return nil
	})
	f.append(t, ctx, 5, byIndex)

	_, err := f.bus.Consumers(f.dst).PollOnce(ctx)
	require.Error(t, err)
	assert.Equal(t, map[string]int{"s0": 1, "s1": 1}, counts(t, f.dst), "events before the failing one applied, the failing one rolled back")
	assert.Equal(t, int64(2), position(t, f.dst, "src"))

	_, err = f.bus.Consumers(f.dst).PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"s0": 1, "s1": 1, "s2": 1, "s3": 1, "s4": 1}, counts(t, f.dst))
	assert.Equal(t, int64(5), position(t, f.dst, "src"))
}

// The FailPoint fails the transaction after every handler ran and before
// the position is written: the same as a crash at that instant.
func TestFailPointBeforePositionRollsBackEffects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var fail atomic.Bool
	fail.Store(true)
	opts := fast
	opts.FailPoint = func(consumer, source string, last events.Event) error {
		if fail.Load() {
			return errors.New("killed before commit")
		}
		return nil
	}
	f := setup(t, t.TempDir(), opts)
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", count)
	f.append(t, ctx, 3, byIndex)

	_, err := f.bus.Consumers(f.dst).PollOnce(ctx)
	require.Error(t, err)
	assert.Empty(t, counts(t, f.dst))

	fail.Store(false)
	_, err = f.bus.Consumers(f.dst).PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"s0": 1, "s1": 1, "s2": 1}, counts(t, f.dst))
}

// Polling again, or a second bus over the same files, applies nothing twice.
func TestDuplicateDeliveryIsANoOp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	f := setup(t, dir, fast)
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", count)
	f.append(t, ctx, 10, byIndex)

	n, err := f.bus.Consumers(f.dst).PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	n, err = f.bus.Consumers(f.dst).PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n)

	bus2 := events.NewBus(dbtest.Quiet, fast)
	bus2.Log(f.src)
	bus2.Consumers(f.dst).Handle("src", "thing:happened", count)
	n, err = bus2.Consumers(f.dst).PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	for _, c := range counts(t, f.dst) {
		assert.Equal(t, 1, c)
	}
}

// After closing and reopening the files, a new bus resumes at the stored
// position and applies only what is new.
func TestRestartResumesAtPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	f := setup(t, dir, fast)
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", count)
	f.append(t, ctx, 7, byIndex)
	_, err := f.bus.Consumers(f.dst).PollOnce(ctx)
	require.NoError(t, err)
	f.bus.Stop()
	require.NoError(t, f.src.Close())
	require.NoError(t, f.dst.Close())
	require.NoError(t, f.other.Close())

	g := setup(t, dir, fast)
	var seen []int64
	g.bus.Consumers(g.dst).Handle("src", "thing:happened", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		seen = append(seen, e.Seq)
		return count(ctx, tx, e)
	})
	g.append(t, ctx, 3, func(i int) string { return byIndex(100 + i) })
	_, err = g.bus.Consumers(g.dst).PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int64{8, 9, 10}, seen)
	assert.Len(t, counts(t, g.dst), 10)
}

// 10k events are applied in strict seq order, across many batches.
func TestTenThousandEventsInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	var seen []int64
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		seen = append(seen, e.Seq)
		return nil
	})
	for range 10 {
		f.append(t, ctx, 1000, byIndex)
	}
	require.NoError(t, f.bus.Start(ctx))
	require.NoError(t, f.bus.Wait(ctx, "src", 10000))
	f.bus.Stop()
	require.Len(t, seen, 10000)
	for i, seq := range seen {
		require.Equal(t, int64(i+1), seq)
	}
	assert.Equal(t, int64(10000), position(t, f.dst, "src"))
}

// A handler stuck on one event holds back only its own consumer: another
// module consuming the same log carries on. The stuck one shows in Status
// and recovers once the handler stops failing.
func TestStuckHandlerDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	var broken atomic.Bool
	broken.Store(true)
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		if e.Subject == "s1" && broken.Load() {
			return errors.New("poison event")
		}
		return count(ctx, tx, e)
	})
	f.bus.Consumers(f.other).Handle("src", "thing:happened", count)
	require.NoError(t, f.bus.Start(ctx))
	f.append(t, ctx, 3, byIndex)

	require.NoError(t, waitOther(f, 3))
	assert.Len(t, counts(t, f.other), 3)

	var st events.ConsumerStatus
	require.Eventually(t, func() bool {
		st = statusOf(f.bus, "dst")
		return st.Stuck
	}, 5*time.Second, time.Millisecond)
	assert.Equal(t, int64(2), st.StuckSeq)
	assert.Contains(t, st.Error, "poison event")
	assert.Equal(t, int64(1), st.Position)
	assert.Equal(t, int64(2), st.Lag)
	assert.Equal(t, map[string]int{"s0": 1}, counts(t, f.dst), "never skipped")

	err := f.bus.Wait(ctx, "src", 3)
	require.Error(t, err, "Wait is bounded")
	assert.Contains(t, err.Error(), "dst<-src")

	broken.Store(false)
	require.NoError(t, f.bus.Wait(ctx, "src", 3))
	assert.Equal(t, map[string]int{"s0": 1, "s1": 1, "s2": 1}, counts(t, f.dst))
	st = statusOf(f.bus, "dst")
	assert.False(t, st.Stuck)
	assert.Zero(t, st.Lag)
	assert.Empty(t, st.Error)
}

func waitOther(f *fixture, seq int64) error {
	// Only "other" must be done: poll its status rather than Wait, which
	// waits for every consumer of src.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if statusOf(f.bus, "other").Position >= seq {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("other did not catch up")
}

func statusOf(b *events.Bus, consumer string) events.ConsumerStatus {
	for _, s := range b.Status(context.Background()) {
		if s.Consumer == consumer {
			return s
		}
	}
	return events.ConsumerStatus{}
}

func TestEventsAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	f.append(t, ctx, 1, byIndex)
	for _, stmt := range []string{"UPDATE events SET type = 'x'", "DELETE FROM events"} {
		err := f.src.Tx(ctx, func(tx *db.Tx) error {
			_, err := tx.ExecContext(ctx, stmt)
			return err
		})
		require.Error(t, err, stmt)
		assert.Contains(t, err.Error(), "append-only")
	}
	var n int
	require.NoError(t, f.src.Read().QueryRow("SELECT count(*) FROM events WHERE type = 'thing:happened'").Scan(&n))
	assert.Equal(t, 1, n)
}

func TestAppendRejectsNonObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	err := f.src.Tx(ctx, func(tx *db.Tx) error {
		_, err := f.log.Append(ctx, tx, "x", "s", 1, []int{1})
		return err
	})
	require.Error(t, err)
}

// Read-your-writes: after Settle, the consumer's effect is visible.
func TestSettleWaitsForConsumers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := fast
	opts.PollInterval = time.Hour // only the wake-up after commit can deliver in time
	f := setup(t, t.TempDir(), opts)
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		time.Sleep(5 * time.Millisecond) // a slow consumer
		return count(ctx, tx, e)
	})
	f.bus.Consumers(f.other).Handle("src", "thing:happened", count)
	require.NoError(t, f.bus.Start(ctx))

	for i := range 20 {
		rctx := f.bus.Track(ctx)
		require.NoError(t, f.src.Tx(rctx, func(tx *db.Tx) error {
			_, err := f.log.Append(rctx, tx, "thing:happened", byIndex(i), 1, map[string]int{})
			return err
		}))
		f.bus.Settle(rctx)
		assert.Equal(t, 1, counts(t, f.dst)[byIndex(i)], "dst applied event %d before Settle returned", i)
		assert.Equal(t, 1, counts(t, f.other)[byIndex(i)], "other applied event %d before Settle returned", i)
	}
}

// A background consumer is not waited for by Settle (a response never
// waits for mail), but WaitIdle waits for it.
func TestSettleDoesNotWaitForBackgroundConsumers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	release := make(chan struct{})
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", func(ctx context.Context, tx *db.Tx, e events.Event) error {
		<-release // stuck until the test says
		return count(ctx, tx, e)
	})
	f.bus.Consumers(f.dst).InBackground()
	f.bus.Consumers(f.other).Handle("src", "thing:happened", count)
	require.NoError(t, f.bus.Start(ctx))

	rctx := f.bus.Track(ctx)
	require.NoError(t, f.src.Tx(rctx, func(tx *db.Tx) error {
		_, err := f.log.Append(rctx, tx, "thing:happened", "a", 1, map[string]int{})
		return err
	}))
	f.bus.Settle(rctx)
	assert.Equal(t, 1, counts(t, f.other)["a"], "the awaited consumer applied it")
	assert.Zero(t, counts(t, f.dst)["a"], "the background one had not, and was not waited for")
	close(release)
	require.NoError(t, f.bus.WaitIdle(ctx))
	assert.Equal(t, 1, counts(t, f.dst)["a"], "WaitIdle waits for every consumer")
}

// A rolled-back transaction wakes nobody and leaves nothing to wait for.
func TestRolledBackAppendIsInvisible(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", count)
	rctx := f.bus.Track(ctx)
	err := f.src.Tx(rctx, func(tx *db.Tx) error {
		if _, err := f.log.Append(rctx, tx, "thing:happened", "ghost", 1, map[string]int{}); err != nil {
			return err
		}
		return errors.New("changed my mind")
	})
	require.Error(t, err)
	head, err := f.log.Head(ctx)
	require.NoError(t, err)
	assert.Zero(t, head)

	// Nothing was recorded: Settle returns at once even with no consumer
	// running (it would otherwise wait out the timeout).
	start := time.Now()
	f.bus.Settle(rctx)
	assert.Less(t, time.Since(start), time.Second)
	n, err := f.bus.Consumers(f.dst).PollOnce(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// An append wakes its consumers at once: with the safety-net poll an hour
// away, Wait still returns.
func TestAppendWakesConsumers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := fast
	opts.PollInterval = time.Hour
	f := setup(t, t.TempDir(), opts)
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", count)
	require.NoError(t, f.bus.Start(ctx))
	// Once the first event is applied the loop has read the log and waits
	// for the next wake-up; every later event can only arrive by one.
	for i := range 51 {
		f.append(t, ctx, 1, func(int) string { return byIndex(i) })
		head, err := f.log.Head(ctx)
		require.NoError(t, err)
		require.NoError(t, f.bus.Wait(ctx, "src", head), "event %d arrives within WaitTimeout, far before the hourly poll", i)
		require.Len(t, counts(t, f.dst), i+1)
	}
}

// Events of types nobody handles still move the position forward.
func TestUnhandledTypesAdvancePosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	f.bus.Consumers(f.dst).Handle("src", "other:type", count)
	f.append(t, ctx, 4, byIndex)
	n, err := f.bus.Consumers(f.dst).PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	assert.Equal(t, int64(4), position(t, f.dst, "src"))
	assert.Empty(t, counts(t, f.dst))
}

func TestStartRejectsUnknownSource(t *testing.T) {
	t.Parallel()
	f := setup(t, t.TempDir(), fast)
	f.bus.Consumers(f.dst).Handle("nosuch", "x", count)
	err := f.bus.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nosuch")
}

func TestConcurrentAppendsAllApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	f.bus.Consumers(f.dst).Handle("src", "thing:happened", count)
	require.NoError(t, f.bus.Start(ctx))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				rctx := f.bus.Track(ctx)
				_ = f.src.Tx(rctx, func(tx *db.Tx) error {
					_, err := f.log.Append(rctx, tx, "thing:happened", fmt.Sprintf("w%d-%d", w, i), 1, map[string]int{})
					return err
				})
				f.bus.Settle(rctx)
			}
		})
	}
	wg.Wait()
	assert.Len(t, counts(t, f.dst), 400)
}

// BenchmarkAppendApply measures events appended and applied by a consumer
// in another module's file, end to end, in batches of 100 per transaction.
func BenchmarkAppendApply(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	open := func(name string) *db.DB {
		d := dbtest.Open(b, dir, name, countsMigrations)
		b.Cleanup(func() { d.Close() })
		return d
	}
	src, dst := open("src"), open("dst")
	bus := events.NewBus(dbtest.Quiet, events.Options{})
	log := bus.Log(src)
	bus.Consumers(dst).Handle("src", "thing:happened", count)
	require.NoError(b, bus.Start(ctx))
	b.Cleanup(bus.Stop)

	const per = 100
	b.ResetTimer()
	start := time.Now()
	var last int64
	for i := 0; i < b.N; i++ {
		require.NoError(b, src.Tx(ctx, func(tx *db.Tx) error {
			for j := range per {
				seq, err := log.Append(ctx, tx, "thing:happened", fmt.Sprintf("s%d", j), 1, map[string]int{"i": i})
				if err != nil {
					return err
				}
				last = seq
			}
			return nil
		}))
	}
	require.NoError(b, bus.Wait(ctx, "src", last))
	b.ReportMetric(float64(b.N*per)/time.Since(start).Seconds(), "events/s")
}

// Consumers read recent events from memory; what they get is exactly what
// the file holds, which a second process (a new bus on the same files)
// reads from disk, whatever order concurrent commits finished in.
func TestRecentEventsFromMemoryMatchTheFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	f := setup(t, dir, fast)
	var wg sync.WaitGroup
	var appended atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				n := 1 + i%3
				f.append(t, ctx, n, func(j int) string { return fmt.Sprintf("w%d-%d-%d", w, i, j) })
				appended.Add(int64(n))
			}
		})
	}
	wg.Wait()

	fromMemory, err := f.log.Read(ctx, 0, 10_000)
	require.NoError(t, err)
	require.Len(t, fromMemory, int(appended.Load()))

	other := events.NewBus(dbtest.Quiet, fast)
	t.Cleanup(other.Stop)
	fromFile, err := other.Log(f.src).Read(ctx, 0, 10_000)
	require.NoError(t, err)
	require.Equal(t, fromFile, fromMemory)

	// A read from the middle, and one bounded by its limit.
	mid, err := f.log.Read(ctx, 100, 7)
	require.NoError(t, err)
	require.Equal(t, fromFile[100:107], mid)
}

// A consumer past its source's head (the source's last events were lost
// in a failover, the consumer's file had received their effects):
// CloseGaps moves the source's next seq past it, so the next event is not
// skipped.
func TestCloseGapsSkipsNoNewEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir(), fast)
	c := f.bus.Consumers(f.dst)
	c.Handle("src", "thing:happened", count)
	f.append(t, ctx, 1, byIndex)
	_, err := c.PollOnce(ctx)
	require.NoError(t, err)
	require.NoError(t, f.dst.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE consumer_positions SET seq = 5 WHERE source = 'src'")
		return err
	}))
	require.NoError(t, f.bus.Refresh(ctx, "dst"))

	gaps, err := f.bus.CloseGaps(ctx)
	require.NoError(t, err)
	require.Len(t, gaps, 1)
	assert.Equal(t, events.Gap{Consumer: "dst", Source: "src", Position: 5, Head: 1}, gaps[0])

	f.append(t, ctx, 1, func(int) string { return "after" })
	head, err := f.log.Head(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(6), head, "the next event comes after everything the consumer applied")
	_, err = c.PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, counts(t, f.dst)["after"], "and the consumer applies it")

	gaps, err = f.bus.CloseGaps(ctx)
	require.NoError(t, err)
	assert.Empty(t, gaps)
}

// Batches with nothing to apply commit nothing: the position moves in
// memory and reaches the file with the next event that has a handler (or
// after PositionEvery).
func TestIgnoredEventsCommitNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := fast
	opts.PositionEvery = time.Hour
	f := setup(t, t.TempDir(), opts)
	c := f.bus.Consumers(f.dst)
	c.Handle("src", "thing:happened", count)
	require.NoError(t, f.src.Tx(ctx, func(tx *db.Tx) error {
		_, err := f.log.Append(ctx, tx, "thing:happened", "first", 1, map[string]int{})
		return err
	}))
	_, err := c.PollOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), position(t, f.dst, "src"))

	for range 3 {
		require.NoError(t, f.src.Tx(ctx, func(tx *db.Tx) error {
			_, err := f.log.Append(ctx, tx, "thing:other", "x", 1, map[string]int{})
			return err
		}))
		_, err := c.PollOnce(ctx)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), position(t, f.dst, "src"), "nothing was committed for the ignored events")
	require.NoError(t, f.bus.Wait(ctx, "src", 4), "yet the consumer is past them")

	f.append(t, ctx, 1, func(int) string { return "next" })
	_, err = c.PollOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(5), position(t, f.dst, "src"))
	assert.Equal(t, map[string]int{"first": 1, "next": 1}, counts(t, f.dst))
}
