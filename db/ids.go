package db

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"time"
)

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
