package db_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/db"
)

var testMigrations = db.Migrations{Name: "test", FS: fstest.MapFS{
	"0001_create_things.sql": {Data: []byte("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;")},
	"0002_add_note.sql":      {Data: []byte("ALTER TABLE things ADD COLUMN note TEXT NOT NULL DEFAULT '';")},
}}

func open(t *testing.T, dir string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), dir, "test", testMigrations)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := open(t, dir)
	ctx := context.Background()
	require.NoError(t, d.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO things (name, note) VALUES ('a', 'n')")
		return err
	}))
	require.NoError(t, d.Close())

	// Reopening applies nothing again and keeps the data.
	d2 := open(t, dir)
	var n, applied int
	require.NoError(t, d2.Read().QueryRow("SELECT count(*) FROM things").Scan(&n))
	require.NoError(t, d2.Read().QueryRow("SELECT count(*) FROM schema_migrations").Scan(&applied))
	assert.Equal(t, 1, n)
	assert.Equal(t, 2, applied)
}

// Pragmas are in the DSN, so every pooled connection has them, not only
// the first one.
func TestPragmasOnEveryConnection(t *testing.T) {
	t.Parallel()
	d := open(t, t.TempDir())
	ctx := context.Background()
	conns := make([]interface{ Close() error }, 0, 4)
	for range 4 {
		c, err := d.Read().Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
		var fk, busy, sync, queryOnly int
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA query_only").Scan(&queryOnly))
		assert.Equal(t, 1, fk)
		assert.Equal(t, 5000, busy)
		assert.Equal(t, 1, sync) // NORMAL
		assert.Equal(t, 1, queryOnly)
	}
	for _, c := range conns {
		c.Close()
	}
	var mode string
	require.NoError(t, d.Read().QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
}

func TestReaderCannotWrite(t *testing.T) {
	t.Parallel()
	d := open(t, t.TempDir())
	_, err := d.Read().Exec("INSERT INTO things (name) VALUES ('x')")
	require.Error(t, err)
}

func TestTxRollsBackOnErrorAndRunsAfterCommitOnlyOnCommit(t *testing.T) {
	t.Parallel()
	d := open(t, t.TempDir())
	ctx := context.Background()
	ran := 0
	err := d.Tx(ctx, func(tx *db.Tx) error {
		tx.AfterCommit(func() { ran++ })
		if _, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES ('a')"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES ('a')") // UNIQUE
		return err
	})
	require.Error(t, err)
	assert.True(t, db.IsUniqueViolation(err))
	assert.Equal(t, 0, ran)
	var n int
	require.NoError(t, d.Read().QueryRow("SELECT count(*) FROM things").Scan(&n))
	assert.Equal(t, 0, n, "the first insert rolled back with the second")

	require.NoError(t, d.Tx(ctx, func(tx *db.Tx) error {
		tx.AfterCommit(func() { ran++ })
		_, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES ('b')")
		return err
	}))
	assert.Equal(t, 1, ran)
}

// Writes from many goroutines queue on the one writer connection instead
// of failing with SQLITE_BUSY.
func TestConcurrentWritesSerialise(t *testing.T) {
	t.Parallel()
	d := open(t, t.TempDir())
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			errs <- d.Tx(ctx, func(tx *db.Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES (?)", db.NewID()+string(rune('a'+i%26)))
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, d.Read().QueryRow("SELECT count(*) FROM things").Scan(&n))
	assert.Equal(t, 200, n)
}

func TestOpenRejectsAFileThatIsNotSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test.db"), []byte("this is not a database, it is a shopping list: milk, eggs, bread, and more text to fill a page header"), 0o644))
	_, err := db.Open(context.Background(), dir, "test", testMigrations)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a SQLite database")
}

func TestOpenRejectsReadOnlyDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	readOnly(t, dir)
	_, err := db.Open(context.Background(), dir, "test", testMigrations)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DATA_DIR")
}

func TestNewIDIsUniqueAndValid(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := db.NewID()
		require.True(t, db.ValidID(id), id)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
	assert.False(t, db.ValidID("not-an-id"))
	assert.False(t, db.ValidID("ZZZZZZZZZZZZZZZZZZZZZZZZ"))
}

// readOnly makes dir unwritable. Root ignores permission bits, so as root
// the directory is made immutable with chattr instead.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("running as root and cannot make %s immutable: %v %s", dir, err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
}
