package expiration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/expiration"
	"ticketing/db"
	"ticketing/db/dbtest"
	"ticketing/events"
)

// fixture is the expiration module with a stand-in orders module: a file
// named "orders" whose log the test appends to.
type fixture struct {
	dir       string
	orders    *db.DB
	exp       *db.DB
	bus       *events.Bus
	store     *expiration.Store
	consumers *events.Consumers
	now       time.Time
}

func setup(t *testing.T, dir string) *fixture {
	t.Helper()
	f := &fixture{dir: dir, now: time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)}
	f.orders = dbtest.Open(t, dir, "orders")
	f.exp = dbtest.Open(t, dir, "expiration", expiration.Migrations())
	f.bus = events.NewBus(dbtest.Quiet, events.Options{})
	f.bus.Log(f.orders)
	f.store = expiration.NewStore(f.exp, f.bus.Log(f.exp))
	f.store.Now = func() time.Time { return f.now }
	f.consumers = f.bus.Consumers(f.exp)
	expiration.Subscribe(f.consumers, f.store)
	return f
}

func (f *fixture) order(t *testing.T, typ, id string, expiresAt time.Time) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, f.orders.Tx(ctx, func(tx *db.Tx) error {
		_, err := f.bus.Log(f.orders).Append(ctx, tx, typ, id, 1, map[string]any{"id": id, "expiresAt": expiresAt, "version": 1, "ticket": map[string]any{"id": "t-" + id}})
		return err
	}))
}

func (f *fixture) poll(t *testing.T) {
	t.Helper()
	_, err := f.consumers.PollOnce(context.Background())
	require.NoError(t, err)
}

func (f *fixture) expired(t *testing.T) []string {
	t.Helper()
	rows, err := f.exp.Read().Query("SELECT subject FROM events WHERE type = 'expiration:complete' ORDER BY seq")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	return out
}

func TestDeadlinesScheduledSweptAndForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir())
	f.order(t, "order:created", "a", f.now.Add(time.Minute))
	f.order(t, "order:created", "b", f.now.Add(2*time.Minute))
	f.order(t, "order:created", "c", f.now.Add(3*time.Minute))
	f.order(t, "order:created", "d", f.now.Add(time.Minute))
	f.order(t, "order:created", "a", f.now.Add(time.Hour)) // a replay does not move or duplicate it
	f.order(t, "order:cancelled", "c", time.Time{})
	f.order(t, "order:completed", "d", time.Time{})
	f.poll(t)
	n, err := f.store.Pending(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	swept, err := f.store.SweepOnce(ctx)
	require.NoError(t, err)
	assert.Zero(t, swept, "nothing is due yet")

	f.now = f.now.Add(90 * time.Second)
	swept, err = f.store.SweepOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, swept)
	assert.Equal(t, []string{"a"}, f.expired(t))

	swept, err = f.store.SweepOnce(ctx)
	require.NoError(t, err)
	assert.Zero(t, swept, "each deadline fires once")

	f.now = f.now.Add(time.Hour)
	swept, err = f.store.SweepOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, swept)
	assert.Equal(t, []string{"a", "b"}, f.expired(t))
	var data string
	require.NoError(t, f.exp.Read().QueryRow("SELECT data FROM events WHERE subject = 'b'").Scan(&data))
	assert.JSONEq(t, `{"orderId":"b"}`, data)
	n, err = f.store.Pending(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestSweepTenThousandDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, t.TempDir())
	require.NoError(t, f.orders.Tx(ctx, func(tx *db.Tx) error {
		for i := range 10_000 {
			id := fmt.Sprintf("o%05d", i)
			if _, err := f.bus.Log(f.orders).Append(ctx, tx, "order:created", id, 1, map[string]any{"id": id, "expiresAt": f.now}); err != nil {
				return err
			}
		}
		return nil
	}))
	f.poll(t)
	swept, err := f.store.SweepOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 10_000, swept)
	assert.Len(t, f.expired(t), 10_000)
	n, err := f.store.Pending(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// Deadlines that passed while the process was down are swept by the
// sweeper's first run, right at start.
func TestSweeperSweepsAtStartAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := setup(t, dir)
	f.order(t, "order:created", "late", time.Now().Add(-time.Hour))
	f.poll(t)
	require.NoError(t, f.orders.Close())
	require.NoError(t, f.exp.Close())

	g := setup(t, dir)
	g.store.Now = time.Now
	sw, err := expiration.NewSweeper(g.store, time.Hour, dbtest.Quiet) // the next tick is an hour away
	require.NoError(t, err)
	sw.Start()
	t.Cleanup(func() { sw.Stop() })
	require.Eventually(t, func() bool { return len(g.expired(t)) == 1 }, 5*time.Second, 5*time.Millisecond)
	// Last is recorded just after the sweep's commit, which made the event visible.
	require.Eventually(t, func() bool { _, n, _ := sw.Last(); return n == 1 }, 5*time.Second, time.Millisecond)
	_, _, err = sw.Last()
	assert.NoError(t, err)
}

func TestSweeperRunsEveryIntervalAndStops(t *testing.T) {
	t.Parallel()
	f := setup(t, t.TempDir())
	f.store.Now = time.Now
	sw, err := expiration.NewSweeper(f.store, 20*time.Millisecond, dbtest.Quiet)
	require.NoError(t, err)
	sw.Start()
	f.order(t, "order:created", "soon", time.Now().Add(100*time.Millisecond))
	f.poll(t)
	require.Eventually(t, func() bool { return len(f.expired(t)) == 1 }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, sw.Stop())
	require.NoError(t, sw.Stop(), "stopping twice is fine")
	f.order(t, "order:created", "after-stop", time.Now().Add(-time.Second))
	f.poll(t)
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, f.expired(t), 1, "no sweep after Stop")
}

// BenchmarkSweep10k sweeps 10,000 deadlines that fall due at once.
func BenchmarkSweep10k(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		orders := dbtest.Open(b, dir, "orders")
		exp := dbtest.Open(b, dir, "expiration", expiration.Migrations())
		bus := events.NewBus(dbtest.Quiet, events.Options{})
		store := expiration.NewStore(exp, bus.Log(exp))
		c := bus.Consumers(exp)
		expiration.Subscribe(c, store)
		now := time.Now()
		require.NoError(b, orders.Tx(ctx, func(tx *db.Tx) error {
			for i := range 10_000 {
				id := fmt.Sprintf("o%05d", i)
				if _, err := bus.Log(orders).Append(ctx, tx, "order:created", id, 1, map[string]any{"id": id, "expiresAt": now}); err != nil {
					return err
				}
			}
			return nil
		}))
		_, err := c.PollOnce(ctx)
		require.NoError(b, err)
		b.StartTimer()
		n, err := store.SweepOnce(ctx)
		require.NoError(b, err)
		require.Equal(b, 10_000, n)
		b.StopTimer()
		orders.Close()
		exp.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(10_000*b.N)/b.Elapsed().Seconds(), "deadlines/s")
}
