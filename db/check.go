package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrDamaged is a module file that must not be served as it is: empty
// (0 bytes), not SQLite, or failing SQLite's own consistency check. An
// empty file is not a new module: it is one whose data is gone.
var ErrDamaged = errors.New("damaged module file")

// Check inspects the existing file at path before anything opens it for
// the app: PRAGMA quick_check (O(N), the start's check), or with full
// PRAGMA integrity_check (also matches every index to its table, for
// `ticketing check`). A damaged file is ErrDamaged with the reason; a file
// that does not exist is os.ErrNotExist. It returns how long it took.
func Check(ctx context.Context, path string, full bool) (time.Duration, error) {
	start := time.Now()
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if info.Size() == 0 {
		return time.Since(start), fmt.Errorf("%w: %s is empty (0 bytes)", ErrDamaged, path)
	}
	conn, err := OpenReadOnly(path)
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", path, err)
	}
	defer conn.Close()
	pragma := "PRAGMA quick_check"
	if full {
		pragma = "PRAGMA integrity_check"
	}
	rows, err := conn.QueryContext(ctx, pragma)
	if err != nil {
		if isNotADB(err) {
			return time.Since(start), fmt.Errorf("%w: %s is not a SQLite database, or too damaged to read: %v", ErrDamaged, path, err)
		}
		return time.Since(start), fmt.Errorf("check %s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return time.Since(start), fmt.Errorf("check %s: %w", path, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		if isNotADB(err) {
			return time.Since(start), fmt.Errorf("%w: %s is not a SQLite database, or too damaged to read: %v", ErrDamaged, path, err)
		}
		return time.Since(start), fmt.Errorf("check %s: %w", path, err)
	}
	if len(problems) > 0 {
		return time.Since(start), fmt.Errorf("%w: %s fails %s: %s", ErrDamaged, path, pragma, strings.Join(problems, "; "))
	}
	return time.Since(start), nil
}

// OpenReadOnly opens an existing file for reading only, creating nothing
// and changing nothing: for looking at a file before (or instead of) the
// app opening it. A WAL beside it is read.
func OpenReadOnly(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
}

// isNotADB reports SQLite's "file is not a database" (or one so damaged
// that SQLite says its image is malformed).
func isNotADB(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return true
		}
	}
	return false
}

// MoveAside renames a file (and its -wal and -shm) out of the way, to
// <path>.<why>-<time>, so a restore can take its place and nothing of it
// is lost. It returns the new name of the file.
func MoveAside(path, why string) (string, error) {
	to := path + "." + why + "-" + time.Now().UTC().Format("20060102T150405.000Z")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Rename(path+suffix, to+suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("move %s aside: %w", path+suffix, err)
		}
	}
	return to, nil
}
