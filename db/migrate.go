package db

import (
	"context"
	"fmt"
	"io/fs"
	"time"
)

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
