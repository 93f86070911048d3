package db

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
)

var batchMigrations = Migrations{Name: "batch", FS: fstest.MapFS{
	"0001_things.sql": {Data: []byte("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;")},
}}

func openBatch(t *testing.T) *DB {
	t.Helper()
	d, err := Open(context.Background(), t.TempDir(), "batch", batchMigrations)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// queued blocks until n calls wait in d's queue.
func queued(t *testing.T, d *DB, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		d.qmu.Lock()
		defer d.qmu.Unlock()
		return len(d.queue) == n
	}, 5*time.Second, time.Millisecond)
}

// holdWriter starts a write that holds the writer until the returned
// function is called; then fn runs in it, and the function returns once that
// write has committed.
func holdWriter(t *testing.T, d *DB, fn func(tx *Tx) error) (release func()) {
	t.Helper()
	started, released := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- d.Tx(context.Background(), func(tx *Tx) error {
			close(started)
			<-released
			return fn(tx)
		})
	}()
	<-started
	return func() {
		close(released)
		require.NoError(t, <-done)
	}
}

func names(t *testing.T, d *DB) map[string]bool {
	t.Helper()
	rows, err := d.Read().Query("SELECT name FROM things")
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		out[n] = true
	}
	require.NoError(t, rows.Err())
	return out
}

// Calls that queue behind a running transaction share the next one, and
// each keeps its own outcome: a call that fails (by returning an error, by
// a constraint, by panicking, or because its context ended while it
// waited) leaves no trace, and only the calls that succeed see their
// AfterCommit hooks run.
func TestQueuedCallsShareATransactionAndKeepTheirOwnOutcome(t *testing.T) {
	d := openBatch(t)
	ctx := context.Background()

	release := holdWriter(t, d, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES ('first')")
		return err
	})

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	var hooks atomic.Int32
	type outcome struct {
		name string
		err  error
		pan  any
	}
	const n = 12
	results := make(chan outcome, n)
	var ran atomic.Int32
	inQueue := 0
	for i := range n {
		name := fmt.Sprintf("t%02d", i)
		callCtx := ctx
		if i == 9 {
			callCtx = cancelled
		}
		go func() {
			o := outcome{name: name}
			defer func() {
				o.pan = recover()
				results <- o
			}()
			o.err = d.Tx(callCtx, func(tx *Tx) error {
				ran.Add(1)
				tx.AfterCommit(func() { hooks.Add(1) })
				insert := name
				if i == 5 {
					insert = "first" // a unique violation inside the batch
				}
				if _, err := tx.ExecContext(callCtx, "INSERT INTO things (name) VALUES (?)", insert); err != nil {
					return err
				}
				switch i {
				case 3:
					return errors.New("changed my mind")
				case 7:
					panic("handler bug")
				}
				return nil
			})
		}()
		if i != 9 { // the cancelled one leaves the queue at once
			inQueue++
		}
		queued(t, d, inQueue)
	}
	release()

	failed := map[string]bool{"t03": true, "t05": true, "t07": true, "t09": true}
	for range n {
		o := <-results
		switch o.name {
		case "t03":
			assert.EqualError(t, o.err, "changed my mind")
		case "t05":
			assert.True(t, IsUniqueViolation(o.err), "t05: %v", o.err)
		case "t07":
			assert.Equal(t, "handler bug", o.pan)
		case "t09":
			assert.ErrorIs(t, o.err, context.Canceled)
		default:
			assert.NoError(t, o.err, o.name)
			assert.Nil(t, o.pan, o.name)
		}
	}
	assert.Equal(t, int32(n-1), ran.Load(), "the cancelled call never ran")
	assert.Equal(t, int32(n-len(failed)), hooks.Load(), "AfterCommit ran for the calls that committed only")

	want := map[string]bool{"first": true}
	for i := range n {
		if name := fmt.Sprintf("t%02d", i); !failed[name] {
			want[name] = true
		}
	}
	assert.Equal(t, want, names(t, d))
}

// A call sees the writes of the calls before it in its batch, as if they
// ran one after another.
func TestCallsInABatchSeeEarlierCalls(t *testing.T) {
	d := openBatch(t)
	ctx := context.Background()
	release := holdWriter(t, d, func(*Tx) error { return nil })

	const n = 20
	var wg sync.WaitGroup
	seen := make([]int, n)
	for i := range n {
		wg.Go(func() {
			assert.NoError(t, d.Tx(ctx, func(tx *Tx) error {
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&seen[i]); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES (?)", fmt.Sprint(i))
				return err
			}))
		})
		queued(t, d, i+1)
	}
	release()
	wg.Wait()
	for i := range n {
		assert.Equal(t, i, seen[i], "call %d saw the %d calls queued before it", i, i)
	}
}

// More calls than one batch holds all run, whoever leads.
func TestLongQueueDrains(t *testing.T) {
	d := openBatch(t)
	ctx := context.Background()
	const n = 3*maxBatch + 7
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			assert.NoError(t, d.Tx(ctx, func(tx *Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES (?)", fmt.Sprint(i))
				return err
			}))
		})
	}
	wg.Wait()
	assert.Len(t, names(t, d), n)
}

// A call whose context ends while it waits for the writer leaves at once,
// without waiting for the writer, and never runs.
func TestCancelledWhileQueuedLeavesAtOnce(t *testing.T) {
	d := openBatch(t)
	ctx := context.Background()
	release := holdWriter(t, d, func(*Tx) error { return nil })

	waiting, cancel := context.WithCancel(ctx)
	ran := false
	result := make(chan error, 1)
	go func() {
		result <- d.Tx(waiting, func(tx *Tx) error {
			ran = true
			_, err := tx.ExecContext(waiting, "INSERT INTO things (name) VALUES ('late')")
			return err
		})
	}()
	queued(t, d, 1)
	cancel()
	select {
	case err := <-result:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled call waited for the writer")
	}
	queued(t, d, 0)
	release()
	assert.False(t, ran)
	assert.Empty(t, names(t, d))
}
