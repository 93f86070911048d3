package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
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
	dir := t.TempDir()
	ctx := context.Background()
	a := apptest.Open(t, apptest.WithDataDir(dir))
	apptest.Reserve(t, a, 3)
	for _, d := range []string{"tickets", "expiration", "payments"} {
		_, err := a.Bus.Consumers(a.DB(d)).PollOnce(ctx)
		require.NoError(t, err)
	}
	require.NoError(t, a.Close())
	old := filepath.Join(t.TempDir(), "orders.db")
	copyFile(t, filepath.Join(dir, "orders.db"), old)

	a = apptest.Open(t, apptest.WithDataDir(dir))
	// Three more orders, applied by tickets and expiration.
	for range 3 {
		tk, err := a.Tickets.Create(ctx, "seller", "Later show", 1000)
		require.NoError(t, err)
		_, err = a.Bus.Consumers(a.DB("orders")).PollOnce(ctx)
		require.NoError(t, err)
		_, err = a.Orders.Reserve(ctx, "buyer", tk.ID)
		require.NoError(t, err)
	}
	for _, d := range []string{"tickets", "expiration", "payments"} {
		_, err := a.Bus.Consumers(a.DB(d)).PollOnce(ctx)
		require.NoError(t, err)
	}
	require.NoError(t, a.Close())

	// orders.db comes back from the older backup.
	copyFile(t, old, filepath.Join(dir, "orders.db"))
	_, err := app.Open(ctx, app.Config{DataDir: dir, SessionSecret: make([]byte, 32), BaseURL: "http://127.0.0.1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing to start")
	assert.Contains(t, err.Error(), "tickets.db has applied orders.db's events up to 6, but orders.db's log ends at 3")
	assert.Contains(t, err.Error(), "expiration.db has applied orders.db's events up to 6")
}
