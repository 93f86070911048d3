package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/tickets"
	"ticketing/db"
	"ticketing/db/dbtest"
	"ticketing/events"
)

// copyFile copies a closed module file (no -wal left after a clean close).
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

// A module file that comes back older than the files that consumed its log
// (one file from an older backup) is not served: its log would reuse seqs
// the consumers have applied, and they would skip the new events. The
// start stops and says which file is behind which.
func TestStartRefusesAFileOlderThanItsConsumers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	old := filepath.Join(t.TempDir(), "orders.db")
	twoRuns(t, dir, "", func() { copyFile(t, filepath.Join(dir, "orders.db"), old) })

	// orders.db comes back from the older backup.
	copyFile(t, old, filepath.Join(dir, "orders.db"))
	_, err := app.Open(ctx, app.Config{DataDir: dir, SessionSecret: make([]byte, 32), BaseURL: "http://127.0.0.1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing to start")
	assert.Contains(t, err.Error(), "tickets.db has applied orders.db's events up to 6, but orders.db's log ends at 3")
	assert.Contains(t, err.Error(), "expiration.db has applied orders.db's events up to 6")
}

// twoRuns runs the app on dir twice, replicating to replica (unless it is
// empty), stopping it cleanly each time (every file synced): three
// reservations, between(), then three more, each applied by every
// consumer.
func twoRuns(t *testing.T, dir, replica string, between func()) {
	t.Helper()
	ctx := context.Background()
	withReplica := apptest.WithConfig(func(c *app.Config) {
		if replica != "" {
			c.Replication = newReplication(t, replica)
		}
	})
	a := apptest.Open(t, apptest.WithDataDir(dir), withReplica)
	apptest.Reserve(t, a, 3)
	settle(t, a)
	require.NoError(t, a.Close())
	between()
	a = apptest.Open(t, apptest.WithDataDir(dir), withReplica)
	for range 3 {
		tk, err := a.Tickets.Create(ctx, "seller", tickets.Listing{Title: "Later show", PriceCents: 1000})
		require.NoError(t, err)
		_, err = a.Bus.Consumers(a.DB("orders")).PollOnce(ctx)
		require.NoError(t, err)
		_, err = a.Orders.Reserve(ctx, "buyer", tk.ID)
		require.NoError(t, err)
	}
	settle(t, a)
	require.NoError(t, a.Close())
}

// splitBackup leaves in a file:// replica a backup in which one module's
// files are older than the others': its backup after the first of two runs
// is put back after the second. It returns the data directory (the files
// as the app left them) and the replica's URL.
func splitBackup(t *testing.T, older string) (dir, replica string) {
	t.Helper()
	backups := t.TempDir()
	dir, replica = filepath.Join(t.TempDir(), "data"), "file://"+backups
	kept := filepath.Join(t.TempDir(), older)
	twoRuns(t, dir, replica, func() {
		require.NoError(t, os.CopyFS(kept, os.DirFS(filepath.Join(backups, older))))
	})
	require.NoError(t, os.RemoveAll(filepath.Join(backups, older)))
	require.NoError(t, os.CopyFS(filepath.Join(backups, older), os.DirFS(kept)))
	return dir, replica
}

// settle lets every consumer of a stopped app apply what is there.
func settle(t *testing.T, a *app.App) {
	t.Helper()
	for range 3 {
		for _, d := range a.DBs {
			_, err := a.Bus.Consumers(d).PollOnce(context.Background())
			require.NoError(t, err)
		}
	}
}

func newReplication(t *testing.T, url string) *db.Replication {
	t.Helper()
	r, err := db.NewReplication(url, os.Getenv, dbtest.Quiet)
	require.NoError(t, err)
	return r
}

// cutOf returns each module's part of a cut.
func cutOf(cut *app.Cut) map[string]app.ModuleCut {
	out := map[string]app.ModuleCut{}
	for _, m := range cut.Modules {
		out[m.Name] = m
	}
	return out
}

// A restore brings every module back to one consistent cut, however far
// apart the files' backups are: a consumer past its source's backup is
// taken back to an earlier point, and that cascades to its own consumers.
// After it every cross-module rule holds and a new sale goes through.
func TestRestoreFindsAConsistentCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, older string
		lose        func(t *testing.T, dir string) // what the operator lost
		back        []string                       // modules taken back past their latest point
	}{
		{"the data directory is lost; orders' backup is the oldest", "orders",
			func(t *testing.T, dir string) { require.NoError(t, os.RemoveAll(dir)) },
			[]string{"tickets", "expiration", "payments"}},
		{"the data directory is lost; tickets' backup is the oldest (the cut cascades)", "tickets",
			func(t *testing.T, dir string) { require.NoError(t, os.RemoveAll(dir)) },
			[]string{"orders", "expiration", "payments"}},
		{"only orders.db is lost, and its backup is older than the other files", "orders",
			func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, "orders.db"))) },
			[]string{"tickets", "expiration", "payments"}},
		{"only tickets.db is lost", "auth",
			func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, "tickets.db"))) },
			nil},
		{"orders.db is empty (0 bytes)", "orders",
			func(t *testing.T, dir string) { require.NoError(t, os.Truncate(filepath.Join(dir, "orders.db"), 0)) },
			[]string{"tickets", "expiration", "payments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, replica := splitBackup(t, tc.older)
			tc.lose(t, dir)

			// The search itself, on a copy: what came from where.
			probe := filepath.Join(t.TempDir(), "data")
			if _, err := os.Stat(dir); err == nil {
				require.NoError(t, os.CopyFS(probe, os.DirFS(dir)))
			}
			cut, err := app.Restore(context.Background(), probe, newReplication(t, replica), app.RestoreOptions{UseLocal: true}, nil)
			require.NoError(t, err)
			mods := cutOf(cut)
			for _, name := range tc.back {
				assert.Equal(t, app.SourceReplica, mods[name].Source, "%s: %s", name, mods[name])
				assert.NotZero(t, mods[name].TXID, "%s is taken back to a point of its backup", name)
			}
			t.Logf("cut after %d versions, %s:\n%v", cut.Probes, cut.Took, cut.Modules)
			for _, name := range tc.back {
				// A log taken back carries on above every seq it had used.
				q, err := db.OpenReadOnly(filepath.Join(probe, name+".db"))
				require.NoError(t, err)
				p, err := events.ReadPositions(context.Background(), q)
				q.Close()
				require.NoError(t, err)
				lost := 0
				for _, n := range mods[name].Lost {
					lost += n
				}
				if lost > 0 {
					assert.Greater(t, p.Head, mods[name].Head+int64(lost), "%s's log resumes past the seqs it lost", name)
				}
			}

			// The start does the same on the real directory, and serves.
			h := apptest.New(t, apptest.WithDataDir(dir), apptest.WithConfig(func(c *app.Config) { c.Replication = newReplication(t, replica) }))
			apptest.CheckInvariants(t, h.App, time.Now().Add(-time.Minute))
			apptest.FreshSale(t, h.URL)
			apptest.CheckInvariants(t, h.App, time.Now().Add(-time.Minute))
		})
	}
}

// A file that comes back from an older backup while the replica has its
// newest state: the start takes the replica's and loses nothing.
func TestStartRepairsAnOldFileFromTheReplica(t *testing.T) {
	t.Parallel()
	dir, replica := filepath.Join(t.TempDir(), "data"), "file://"+t.TempDir()
	old := filepath.Join(t.TempDir(), "orders.db")
	twoRuns(t, dir, replica, func() { copyFile(t, filepath.Join(dir, "orders.db"), old) })
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(filepath.Join(dir, "orders.db"+suffix))
	}
	copyFile(t, old, filepath.Join(dir, "orders.db"))

	h := apptest.New(t, apptest.WithDataDir(dir), apptest.WithConfig(func(c *app.Config) { c.Replication = newReplication(t, replica) }))
	var n int
	require.NoError(t, h.App.DB("orders").Read().QueryRow("SELECT count(*) FROM orders").Scan(&n))
	assert.Equal(t, 6, n, "the replica's orders.db, not the old file")
	apptest.CheckInvariants(t, h.App, time.Now().Add(-time.Minute))
	apptest.FreshSale(t, h.URL)
	matches, err := filepath.Glob(filepath.Join(dir, "orders.db.replaced-*"))
	require.NoError(t, err)
	assert.NotEmpty(t, matches, "the old file is kept aside, not deleted")
}
