package db

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

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
