package db_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/db"
)

// makeFile writes a real module-like file with enough rows to span many
// pages, and closes it.
func makeFile(t *testing.T, dir string) string {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, dir, "orders")
	require.NoError(t, err)
	require.NoError(t, d.Tx(ctx, func(tx *db.Tx) error {
		if _, err := tx.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "CREATE INDEX t_v ON t (v)"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 5000) INSERT INTO t SELECT i, printf('row %08d padding padding padding', i) FROM n")
		return err
	}))
	require.NoError(t, d.Close())
	return filepath.Join(dir, "orders.db")
}

func TestCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := makeFile(t, t.TempDir())
	for _, full := range []bool{false, true} {
		_, err := db.Check(ctx, path, full)
		require.NoError(t, err, "a good file")
	}

	_, err := db.Check(ctx, filepath.Join(t.TempDir(), "none.db"), false)
	assert.ErrorIs(t, err, os.ErrNotExist)

	empty := filepath.Join(t.TempDir(), "orders.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, err = db.Check(ctx, empty, false)
	assert.ErrorIs(t, err, db.ErrDamaged)
	assert.Contains(t, err.Error(), "empty (0 bytes)")

	notDB := filepath.Join(t.TempDir(), "orders.db")
	require.NoError(t, os.WriteFile(notDB, []byte("not a database at all, just text, long enough to have a header"), 0o644))
	_, err = db.Check(ctx, notDB, false)
	assert.ErrorIs(t, err, db.ErrDamaged)

	// A page of garbage in the middle of the file.
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for i := len(b) / 2; i < len(b)/2+4096; i++ {
		b[i] = 0xA5
	}
	garbled := filepath.Join(t.TempDir(), "orders.db")
	require.NoError(t, os.WriteFile(garbled, b, 0o644))
	for _, full := range []bool{false, true} {
		_, err = db.Check(ctx, garbled, full)
		assert.True(t, errors.Is(err, db.ErrDamaged), "garbage mid-file (full=%v): %v", full, err)
	}

	// Truncated to half.
	truncated := filepath.Join(t.TempDir(), "orders.db")
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(truncated, good[:len(good)/2/4096*4096], 0o644))
	_, err = db.Check(ctx, truncated, false)
	assert.ErrorIs(t, err, db.ErrDamaged)
}
