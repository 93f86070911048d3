package tickets_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

// sseEvent is one Server-Sent Event as read off the wire.
type sseEvent struct{ id, event, data string }

// stream opens an event stream and returns a channel of its events.
func stream(t *testing.T, h *apptest.Harness, path, lastID string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+path, nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.event != "" {
					out <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.data += line[6:] + "\n"
			}
		}
	}()
	return out
}

func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e, ok := <-events:
		require.True(t, ok, "stream ended")
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return sseEvent{}
	}
}

// The ticket list's live stream: a new ticket arrives as a row to put on
// top, a reserved one as a row to delete, and a browser that reconnects
// with Last-Event-ID gets what it missed.
func TestTicketStream(t *testing.T) {
	h := apptest.New(t)
	seller := h.Client(t)
	seller.SignUp(t, "seller@example.com", "password")
	buyer := h.Client(t)
	buyer.SignUp(t, "buyer@example.com", "password")

	_, doc := buyer.Get(t, "/")
	assert.Equal(t, "/tickets/stream", doc.Find("#ticket-list").AttrOr("sse-connect", ""), "the first page is live")
	_, doc = buyer.Get(t, "/?q=jazz")
	assert.Empty(t, doc.Find("#ticket-list").AttrOr("sse-connect", ""), "a search is not")

	events := stream(t, h, "/tickets/stream", "")
	var tk struct{ ID string }
	require.Equal(t, 201, seller.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"title": "Live show", "price": 12}, &tk))
	e := next(t, events)
	assert.Equal(t, "tickets", e.event)
	assert.Contains(t, e.data, `hx-swap-oob="afterbegin:#ticket-rows"`)
	assert.Contains(t, e.data, `id="ticket-`+tk.ID+`"`)
	assert.Contains(t, e.data, "Live show")
	assert.Contains(t, e.data, "$12.00")
	created := e.id

	require.Equal(t, 201, buyer.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": tk.ID}, nil))
	e = next(t, events)
	assert.Contains(t, e.data, `<li id="ticket-`+tk.ID+`" hx-swap-oob="delete"></li>`)
	assert.NotContains(t, e.data, "afterbegin", "a reserved ticket is only removed")

	// Reconnecting after the first event replays the second.
	replay := stream(t, h, "/tickets/stream", created)
	e = next(t, replay)
	assert.Contains(t, e.data, `hx-swap-oob="delete"`)
	assert.NotContains(t, e.data, "afterbegin")
}

// Closing the streams (what shutdown does) ends open streams at once.
func TestStreamsEndOnShutdown(t *testing.T) {
	h := apptest.New(t)
	events := stream(t, h, "/tickets/stream", "")
	h.App.Streams.Close()
	select {
	case _, ok := <-events:
		assert.False(t, ok, "no event, the stream just ends")
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Close")
	}
}
