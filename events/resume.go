package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"ticketing/db"
)

// EventResumed marks where a log carries on after a restore took its file
// back: the seqs after Kept up to the marker's own were used by the
// history the restore abandoned, and are never used again. Consumers have
// no handler for it and pass over it.
const EventResumed = "log:resumed"

// Resumed is the marker's payload. TXID and Abandoned are the replica's
// transactions: the file was restored to TXID, and the replica's points
// after it, up to Abandoned, belong to the abandoned history, so a later
// restore must not pick them.
type Resumed struct {
	Kept      int64  `json:"kept"`
	TXID      uint64 `json:"txid"`
	Abandoned uint64 `json:"abandoned"`
}

// Resume writes the marker into a closed module file (not yet opened by
// the app) at seq next, so that the log's next event is numbered after
// it: above every seq the abandoned history used, which consumers may have
// applied.
func Resume(ctx context.Context, path string, next int64, r Resumed) error {
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer w.Close()
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.ExecContext(ctx, "INSERT INTO events (seq, type, subject, version, data, created_at) VALUES (?, ?, 'log', 0, ?, ?)",
		next, EventResumed, string(data), db.Timestamp(time.Now()))
	if err != nil {
		return fmt.Errorf("resume the log of %s at %d: %w", path, next, err)
	}
	return w.Close()
}

// Resumes returns every restore marker in q's log, oldest first.
func Resumes(ctx context.Context, q *sql.DB) ([]Resumed, error) {
	var tables int
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'").Scan(&tables); err != nil || tables == 0 {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT data FROM events WHERE type = ? ORDER BY seq", EventResumed)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Resumed
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var r Resumed
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return nil, fmt.Errorf("restore marker %s: %w", data, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
