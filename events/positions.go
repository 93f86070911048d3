package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"ticketing/db"
)

// Positions is one module file's place in the event flow: where its own
// log ends, and how far it has applied each log it consumes. Two files are
// consistent with each other when neither has applied more of the other's
// log than that log holds.
type Positions struct {
	Head    int64            // the last seq in the file's own log
	Applied map[string]int64 // source module → the last seq applied from its log
}

// ReadPositions reads a module file's Positions (q is any connection to
// it, such as db.OpenReadOnly's). A file without the events tables (a new,
// empty one) is at zero everywhere.
func ReadPositions(ctx context.Context, q *sql.DB) (Positions, error) {
	p := Positions{Applied: map[string]int64{}}
	var tables int
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('events', 'consumer_positions')").Scan(&tables); err != nil {
		return p, err
	}
	if tables < 2 {
		return p, nil
	}
	if err := q.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&p.Head); err != nil {
		return p, err
	}
	rows, err := q.QueryContext(ctx, "SELECT source, seq FROM consumer_positions")
	if err != nil {
		return p, err
	}
	defer rows.Close()
	for rows.Next() {
		var source string
		var seq int64
		if err := rows.Scan(&source, &seq); err != nil {
			return p, err
		}
		p.Applied[source] = seq
	}
	return p, rows.Err()
}

// LostEvents counts, by type, the events in q's log after seq: what a file
// taken back to the point where its log ended at seq loses.
func LostEvents(ctx context.Context, q *sql.DB, seq int64) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, "SELECT type, count(*) FROM events WHERE seq > ? GROUP BY type", seq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	lost := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, err
		}
		lost[typ] = n
	}
	return lost, rows.Err()
}

// Gap is a consumer that has applied more of a source's log than the log
// holds: the source file is older than the consumer's.
type Gap struct {
	Consumer, Source string
	Position, Head   int64
}

func (g Gap) String() string {
	return fmt.Sprintf("%s.db has applied %s.db's events up to %d, but %s.db's log ends at %d (%s.db is older than %s.db)",
		g.Consumer, g.Source, g.Position, g.Source, g.Head, g.Source, g.Consumer)
}

// Gaps returns every consumer position past its source's head among the
// files (module name → Positions), by consumer then source. A source that
// is not among the files counts as an empty log.
func Gaps(files map[string]Positions) []Gap {
	var gaps []Gap
	for consumer, p := range files {
		for source, seq := range p.Applied {
			if head := files[source].Head; seq > head {
				gaps = append(gaps, Gap{Consumer: consumer, Source: source, Position: seq, Head: head})
			}
		}
	}
	sort.Slice(gaps, func(i, j int) bool {
		if gaps[i].Consumer != gaps[j].Consumer {
			return gaps[i].Consumer < gaps[j].Consumer
		}
		return gaps[i].Source < gaps[j].Source
	})
	return gaps
}

// CheckPositions returns a line for every consumer among the files that
// has applied more of another's log than it holds (the rule every restore
// keeps), or the error of a file it could not read. For invariant
// checkers: dbs are open module files.
func CheckPositions(ctx context.Context, dbs ...*db.DB) ([]string, error) {
	files := map[string]Positions{}
	for _, d := range dbs {
		p, err := ReadPositions(ctx, d.Read())
		if err != nil {
			return nil, fmt.Errorf("read %s's positions: %w", d.Name, err)
		}
		files[d.Name] = p
	}
	var bad []string
	for _, g := range Gaps(files) {
		if _, ok := files[g.Source]; ok {
			bad = append(bad, g.String())
		}
	}
	return bad, nil
}

// CloseGaps is for a node of a cluster becoming the primary: its files
// came from another node by asynchronous replication, file by file, so one
// module's file may hold the effects of events another's log lost (the
// consumer is past its source's head). Serving on would hand the next
// events seqs the consumer has already passed, and it would skip them.
// CloseGaps moves each such log's next seq past every consumer's
// position, so nothing new is skipped, and returns the gaps it closed for
// the caller to report: what the lost events did in the consumers stays.
func (b *Bus) CloseGaps(ctx context.Context) ([]Gap, error) {
	gaps, errs := b.gaps(ctx)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	past := map[string]int64{}
	for _, g := range gaps {
		past[g.Source] = max(past[g.Source], g.Position)
	}
	for source, seq := range past {
		l, ok := b.log(source)
		if !ok {
			continue
		}
		err := l.db.Tx(ctx, func(tx *db.Tx) error {
			// AUTOINCREMENT hands out one more than the larger of the
			// table's highest rowid and its sqlite_sequence row.
			_, err := tx.ExecContext(ctx, "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'events'", seq)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) SELECT 'events', ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')", seq)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("move %s's log past %d: %w", source, seq, err)
		}
		if err := l.reload(ctx); err != nil {
			return nil, err
		}
		l.advanceHead(seq)
	}
	return gaps, nil
}
