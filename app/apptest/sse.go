package apptest

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SSE is one Server-Sent Event as read off the wire.
type SSE struct{ ID, Event, Data string }

// Stream opens an event stream with the client's cookies and returns its
// events; the stream closes with the test. lastID, when set, is sent as
// Last-Event-ID, as a reconnecting browser does.
func (c *Client) Stream(t testing.TB, path, lastID string) <-chan SSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// No client timeout: the stream stays open.
	resp, err := (&http.Client{Jar: c.http.Jar, Transport: c.http.Transport}).Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan SSE, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var e SSE
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.Event != "" {
					out <- e
				}
				e = SSE{}
			case strings.HasPrefix(line, "id: "):
				e.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.Data += line[6:] + "\n"
			}
		}
	}()
	return out
}

// Next returns the stream's next event, failing the test after 5 s.
func Next(t testing.TB, events <-chan SSE) SSE {
	t.Helper()
	select {
	case e, ok := <-events:
		require.True(t, ok, "stream ended")
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return SSE{}
	}
}
