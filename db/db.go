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
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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

// Migrations is a named set of numbered SQL files (NNNN_what.sql), applied
// in name order. The set's name keeps two sets in one file apart in the
// record of what has been applied ("events/0001_events.sql").
type Migrations struct {
	Name string
	FS   fs.FS
}

// Embedded returns the migration set named name from the migrations/
// directory of a module's embedded files.
func Embedded(name string, files fs.FS) Migrations {
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return Migrations{Name: name, FS: sub}
}

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

	if err := d.migrate(ctx, sets); err != nil {
		d.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return d, nil
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

func (d *DB) migrate(ctx context.Context, sets []Migrations) error {
	for _, set := range sets {
		names, err := fs.Glob(set.FS, "*.sql")
		if err != nil {
			return err
		}
		for _, file := range names { // fs.Glob sorts
			name := set.Name + "/" + file
			err := d.Tx(ctx, func(tx *Tx) error {
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE name = ?", name).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					return nil
				}
				body, err := fs.ReadFile(set.FS, file)
				if err != nil {
					return err
				}
				// tx.tx: a migration runs once and holds several
				// statements, so it is not one to prepare and cache.
				if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				_, err = tx.ExecContext(ctx, "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", name, Timestamp(time.Now()))
				return err
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Read returns the reader pool. Its connections are query_only: a write
// through it fails instead of racing the writer.
func (d *DB) Read() *sql.DB { return d.reader }

// ReadStmt returns query prepared on the reader pool, cached, for reads on
// hot paths (a consumer's poll of the log); database/sql prepares it on
// each reader connection as needed.
func (d *DB) ReadStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	key := "read:" + query
	if s, ok := d.stmts.Load(key); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := d.reader.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := d.stmts.LoadOrStore(key, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// Tx is a write transaction as the function given to DB.Tx sees it: its
// ExecContext, QueryContext and QueryRowContext run on the writer
// connection, through statements the file prepares once and keeps, and
// AfterCommit asks for work to happen once the changes are durable
// (events/ wakes consumers that way, so they never see a row that might
// still roll back).
//
// Several concurrent DB.Tx calls may share one SQLite transaction (see
// DB.Tx), so a statement ignores its context's cancellation: an interrupted
// statement can roll back the whole SQLite transaction, other callers'
// work with it. A caller whose context ends while it waits for its turn
// leaves the queue and is not run.
type Tx struct {
	tx         *sql.Tx
	d          *DB
	after      []func()
	unprepared []string
}

// stmt returns the cached statement for query bound to this transaction,
// or nil (and notes the query, to prepare once the connection is free).
func (tx *Tx) stmt(query string) *sql.Stmt {
	if s, ok := tx.d.stmts.Load(query); ok {
		return tx.tx.Stmt(s.(*sql.Stmt))
	}
	tx.unprepared = append(tx.unprepared, query)
	return nil
}

// ExecContext executes query in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = context.WithoutCancel(ctx)
	if s := tx.stmt(query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return tx.tx.ExecContext(ctx, query, args...)
}

// QueryContext runs query in the transaction.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	if s := tx.stmt(query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return tx.tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query, expected to return at most one row, in the
// transaction.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = context.WithoutCancel(ctx)
	if s := tx.stmt(query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.tx.QueryRowContext(ctx, query, args...)
}

// prepare caches the statements the last transaction ran unprepared. It
// runs after the transaction ended: with one writer connection, preparing
// during the transaction would wait for itself.
func (d *DB) prepare(ctx context.Context, queries []string) {
	for _, q := range queries {
		if _, ok := d.stmts.Load(q); ok || d.stmtCount.Load() >= maxStmts {
			continue
		}
		s, err := d.writer.PrepareContext(ctx, q)
		if err != nil {
			continue // it ran unprepared; it can keep doing so
		}
		if _, loaded := d.stmts.LoadOrStore(q, s); loaded {
			s.Close()
			continue
		}
		d.stmtCount.Add(1)
	}
}

// AfterCommit runs f after the transaction commits; never if it rolls back.
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// maxBatch bounds how many callers share one SQLite transaction.
const maxBatch = 64

// call is one DB.Tx call waiting for, or done with, its turn.
type call struct {
	ctx   context.Context
	fn    func(*Tx) error
	err   error
	after []func()
	panic any
	done  chan struct{}
}

// Tx runs fn in a write transaction on the single writer connection; fn's
// changes commit if it returns nil and vanish if it returns an error.
// Public store methods own the transaction; helpers they call take the *Tx.
//
// Writes queue for the one writer, and whoever gets it runs everything
// queued by then in one SQLite transaction (group commit): each call in
// its own savepoint, so a call that fails rolls back only its own changes,
// then one commit for all. Each call still sees the calls before it, as if
// run one after another, and learns its outcome only once that commit is
// done. A batch of one runs as a plain transaction.
func (d *DB) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	c := &call{ctx: ctx, fn: fn, done: make(chan struct{})}
	d.qmu.Lock()
	d.queue = append(d.queue, c)
	d.qmu.Unlock()
	cancelled := ctx.Done()
	for done := false; !done; {
		select {
		case <-c.done:
			done = true
		case <-cancelled:
			if d.unqueue(c) {
				return ctx.Err()
			}
			cancelled = nil // a batch has it: wait for its outcome
		case d.lead <- struct{}{}:
			// Our turn to run a batch, unless the last one took
			// this call; a long queue may need more than one.
			select {
			case <-c.done:
				done = true
			default:
				d.runQueued()
			}
			<-d.lead
		}
	}
	if c.panic != nil {
		panic(c.panic)
	}
	for _, f := range c.after {
		f()
	}
	return c.err
}

// unqueue removes c from the queue if no batch has taken it yet.
func (d *DB) unqueue(c *call) bool {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	i := slices.Index(d.queue, c)
	if i < 0 {
		return false
	}
	d.queue = slices.Delete(d.queue, i, i+1)
	return true
}

// runQueued takes up to maxBatch queued calls and runs them as one
// transaction. The caller holds d.lead.
func (d *DB) runQueued() {
	d.qmu.Lock()
	n := min(len(d.queue), maxBatch)
	batch := slices.Clone(d.queue[:n])
	d.queue = slices.Delete(d.queue, 0, n)
	d.qmu.Unlock()

	tx := &Tx{d: d}
	defer func() {
		for _, c := range batch {
			close(c.done)
		}
		if len(tx.unprepared) > 0 {
			d.prepare(context.Background(), tx.unprepared)
		}
	}()
	fail := func(err error) {
		for _, c := range batch {
			if c.err == nil && c.panic == nil {
				c.err, c.after = err, nil
			}
		}
	}

	stx, err := d.writer.BeginTx(context.Background(), nil)
	if err != nil {
		fail(fmt.Errorf("begin %s: %w", d.Name, err))
		return
	}
	defer stx.Rollback() // ignored after Commit
	tx.tx = stx
	alone := len(batch) == 1
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		if !alone {
			if _, err := tx.ExecContext(c.ctx, "SAVEPOINT call"); err != nil {
				fail(fmt.Errorf("savepoint %s: %w", d.Name, err))
				return
			}
		}
		tx.after = nil
		c.panic, c.err = runCall(c, tx)
		failed := c.err != nil || c.panic != nil
		if failed && alone {
			return // the deferred Rollback undoes it
		}
		if failed && !alone {
			if _, err := tx.ExecContext(c.ctx, "ROLLBACK TO call"); err != nil {
				// SQLite already rolled the whole transaction back
				// (an I/O error, a full disk): the calls before this
				// one are gone too, and the rest cannot run.
				fail(fmt.Errorf("%s: transaction lost after an error in a shared batch: %w", d.Name, err))
				return
			}
		}
		if !alone {
			if _, err := tx.ExecContext(c.ctx, "RELEASE call"); err != nil {
				fail(fmt.Errorf("release savepoint %s: %w", d.Name, err))
				return
			}
		}
		if !failed {
			c.after = tx.after
		}
	}
	if err := stx.Commit(); err != nil {
		fail(fmt.Errorf("commit %s: %w", d.Name, err))
	}
}

// runCall runs one call's function, turning a panic into a value to
// re-raise on the caller's goroutine.
func runCall(c *call, tx *Tx) (p any, err error) {
	defer func() {
		if r := recover(); r != nil {
			p = r
		}
	}()
	return nil, c.fn(tx)
}

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

// timeFormat is fixed-width so that timestamps stored as TEXT sort as times.
const timeFormat = "2006-01-02T15:04:05.000000Z"

// Timestamp formats t (in UTC) the way every table stores time.
func Timestamp(t time.Time) string { return t.UTC().Format(timeFormat) }

// ParseTime reads a time stored by Timestamp.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Parse(time.RFC3339Nano, s)
	}
	return t, nil
}

// idCounter makes ids made in the same second by this process distinct
// even if the random bytes collide.
var idCounter atomic.Uint32

// NewID returns a new 24-character hex id, shaped like the seed's MongoDB
// ObjectIDs: a 4-byte timestamp, 5 random bytes and a 3-byte counter. The
// leading timestamp keeps inserts near the end of the primary-key index.
func NewID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(time.Now().Unix()))
	rand.Read(b[4:9])
	c := idCounter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s has NewID's shape; handlers use it to answer
// 404 for garbage ids without a query.
func ValidID(s string) bool {
	if len(s) != 24 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}
