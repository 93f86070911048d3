package events

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func seqs(es []Event) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// The tail serves only unbroken runs of seqs; a gap (a commit whose hook
// has not run yet) sends the reader to the file, which has it.
func TestTailServesUnbrokenRuns(t *testing.T) {
	var l Log
	for _, seq := range []int64{2, 1, 5, 4} { // hooks finish out of order
		l.remember(Event{Seq: seq})
	}
	got, ok := l.recent(0, 10)
	assert.True(t, ok)
	assert.Equal(t, []int64{1, 2}, seqs(got))

	_, ok = l.recent(2, 10) // 3 is missing
	assert.False(t, ok)

	got, ok = l.recent(3, 10)
	assert.True(t, ok)
	assert.Equal(t, []int64{4, 5}, seqs(got))

	got, ok = l.recent(0, 1)
	assert.True(t, ok)
	assert.Equal(t, []int64{1}, seqs(got))

	_, ok = l.recent(5, 10) // nothing newer
	assert.False(t, ok)
}

// The tail keeps the latest events and forgets old ones.
func TestTailIsBounded(t *testing.T) {
	var l Log
	for seq := int64(1); seq <= 5*tailSize; seq++ {
		l.remember(Event{Seq: seq})
	}
	assert.LessOrEqual(t, len(l.tail), 2*tailSize)
	_, ok := l.recent(0, 10)
	assert.False(t, ok, "the oldest events are read from the file")
	got, ok := l.recent(5*tailSize-3, 10)
	assert.True(t, ok)
	assert.Equal(t, []int64{5*tailSize - 2, 5*tailSize - 1, 5 * tailSize}, seqs(got))
}
