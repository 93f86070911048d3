package db

import (
	"context"
	"database/sql"
)

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
