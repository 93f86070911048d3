// Package db opens the SQLite files the modules own.
//
// Each module keeps its data in one file in the data directory (auth.db,
// tickets.db, ...). A file is opened as two pools: a writer with exactly one
// connection, whose transactions begin IMMEDIATE so that writes queue in Go
// instead of failing with SQLITE_BUSY, and a pool of read-only readers that
// WAL lets run beside the writer. Writes that queue for the writer share
// one transaction and one commit (see DB.Tx), each in its own savepoint.
// Every pragma is part of the DSN so that each connection the pools open
// has it, not only the first.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DB is one module's SQLite file.
type DB struct {
	// Name is the module that owns the file ("orders"); it names the
	// file (orders.db) and, in events/, the module's event log.
	Name string
	// Path is the file's location.
	Path string

	writer *sql.DB
	sets   []Migrations
	reader *sql.DB
	// stmts caches prepared statements on the writer connection, by SQL
	// text: parsing is a sixth of a reservation's CPU otherwise.
	stmts     sync.Map // string → *sql.Stmt
	stmtCount atomic.Int32

	// lead is held by the caller running a batch of write calls; qmu
	// guards the calls queued for the next batch (see Tx).
	lead  chan struct{}
	qmu   sync.Mutex
	queue []*call
}

// maxStmts bounds the statement cache; the writer's SQL is a fixed set.
const maxStmts = 256

// pragmas every connection gets. busy_timeout only matters when another
// process holds the file (a backup tool, the sqlite3 shell): inside this
// process the single writer connection already serialises writes.
var pragmas = []string{
	"busy_timeout(5000)",
	"foreign_keys(1)",
	"synchronous(NORMAL)",
}

// Open opens (creating if needed) the file <dir>/<name>.db, checks that it is
// a SQLite database, and applies the migration sets in order.
func Open(ctx context.Context, dir, name string, sets ...Migrations) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, name+".db")
	d := &DB{Name: name, Path: path, lead: make(chan struct{}, 1)}

	w := url.Values{}
	for _, p := range append([]string{"journal_mode(WAL)"}, pragmas...) {
		w.Add("_pragma", p)
	}
	w.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", "file:"+path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	d.writer = writer

	if err := d.check(ctx); err != nil {
		writer.Close()
		return nil, err
	}

	r := url.Values{}
	for _, p := range append([]string{"query_only(1)"}, pragmas...) {
		r.Add("_pragma", p)
	}
	reader, err := sql.Open("sqlite", "file:"+path+"?"+r.Encode())
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	reader.SetConnMaxIdleTime(0)
	d.reader = reader

	d.sets = sets
	if err := d.migrate(ctx, sets); err != nil {
		d.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return d, nil
}

// Migrate applies the migrations Open was given that the file does not
// have yet. Open does it; a node of a cluster calls it again when it
// becomes the primary, since a replica's file is only ever migrated there.
func (d *DB) Migrate(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	if err := d.migrate(ctx, d.sets); err != nil {
		return fmt.Errorf("migrate %s: %w", d.Path, err)
	}
	return nil
}

// check turns the first connection's failures into messages an operator can
// act on: a file that is not SQLite, a directory we cannot write.
func (d *DB) check(ctx context.Context) error {
	var mode string
	err := d.writer.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err == nil && mode != "wal" {
		err = fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	if err == nil {
		// A write proves the file and its directory (for -wal and -shm)
		// are writable; a read-only data dir fails here, at start.
		_, err = d.writer.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL) STRICT")
	}
	if err == nil {
		// One row that ProbeWrite rewrites: the health check's write.
		_, err = d.writer.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL) STRICT")
	}
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("open %s: not a SQLite database (move it away or restore it): %w", d.Path, err)
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR:
			return fmt.Errorf("open %s: cannot write the data file or its directory (check DATA_DIR permissions): %w", d.Path, err)
		}
	}
	return fmt.Errorf("open %s: %w", d.Path, err)
}

// Read returns the reader pool. Its connections are query_only: a write
// through it fails instead of racing the writer.
func (d *DB) Read() *sql.DB { return d.reader }

// Querier is what reads a row: the reader pool (DB.Read) outside a
// transaction, or a *Tx inside one, so a store's lookup serves both.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Ping checks that the file answers a query.
func (d *DB) Ping(ctx context.Context) error {
	var n int
	return d.reader.QueryRowContext(ctx, "SELECT 1").Scan(&n)
}

// ProbeWrite commits a one-row write through the writer, as every module
// write does: it fails when writes fail (a full or read-only disk, an I/O
// error), which a read (Ping) would not notice.
func (d *DB) ProbeWrite(ctx context.Context) error {
	return d.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO health_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at", Timestamp(time.Now()))
		return err
	})
}

// Close closes both pools.
func (d *DB) Close() error {
	var errs []error
	d.stmts.Range(func(_, s any) bool {
		s.(*sql.Stmt).Close()
		return true
	})
	if d.reader != nil {
		errs = append(errs, d.reader.Close())
	}
	if d.writer != nil {
		errs = append(errs, d.writer.Close())
	}
	return errors.Join(errs...)
}

// IsUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure, which stores turn into a kind (Conflict, Invalid).
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// IsUnavailable reports whether err means the file cannot take writes right
// now (read-only, disk full, I/O error): a 503, not a bug.
func IsUnavailable(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY:
		return true
	}
	return false
}
