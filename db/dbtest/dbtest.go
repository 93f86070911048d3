// Package dbtest opens real module files for tests: SQLite in the test's
// temporary directory, with the event tables every module file has.
package dbtest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"ticketing/db"
	"ticketing/events"
)

// Quiet is the logger of tests that do not look at logs.
var Quiet = slog.New(slog.DiscardHandler)

// Open opens (creating it) the module file dir/<name>.db with the event
// tables and then schema, and closes it when the test ends.
func Open(tb testing.TB, dir, name string, schema ...db.Migrations) *db.DB {
	tb.Helper()
	d, err := db.Open(context.Background(), dir, name, append([]db.Migrations{events.Migrations()}, schema...)...)
	require.NoError(tb, err)
	tb.Cleanup(func() { d.Close() })
	return d
}
