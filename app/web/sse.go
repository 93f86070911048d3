package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ticketing/events"
)

// Streams owns the Server-Sent Events streams: Close ends every one of them,
// so a graceful shutdown does not wait on connections that never finish
// (main registers it with http.Server.RegisterOnShutdown).
type Streams struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// NewStreams returns an open set of streams.
func NewStreams() *Streams {
	ctx, cancel := context.WithCancel(context.Background())
	return &Streams{ctx: ctx, cancel: cancel}
}

// Close ends every stream.
func (s *Streams) Close() { s.cancel() }

// Message is one Server-Sent Event.
type Message struct {
	ID    string // sent back by the browser as Last-Event-ID on reconnect
	Event string // the sse-swap name
	Data  string // HTML, usually a fragment with hx-swap-oob parts
}

// keepAlive is how often an idle stream writes a comment, so proxies keep
// the connection and a dead client is noticed.
const keepAlive = 25 * time.Second

// Serve runs a stream: it calls step at once and after every commit to any
// of the watched logs, until the client goes away or the server shuts
// down. step sends what changed since it last ran. An idle stream costs a
// goroutine per watched log and nothing else.
func (s *Streams) Serve(c echo.Context, watch []*events.Log, step func(ctx context.Context, send func(Message) error) error) error {
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	wake := make(chan struct{}, 1)
	for _, l := range watch {
		ch, unwatch := l.Watch()
		defer unwatch()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
		}()
	}

	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()

	send := func(m Message) error {
		var b strings.Builder
		if m.ID != "" {
			fmt.Fprintf(&b, "id: %s\n", m.ID)
		}
		if m.Event != "" {
			fmt.Fprintf(&b, "event: %s\n", m.Event)
		}
		for _, line := range strings.Split(m.Data, "\n") {
			fmt.Fprintf(&b, "data: %s\n", line)
		}
		b.WriteString("\n")
		_, err := w.Write([]byte(b.String()))
		return err
	}
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		if err := step(ctx, send); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		w.Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-ping.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}

// Fragment renders one fragment of a page with the request's user and
// CSRF token, for a stream.
func (r *Renderer) Fragment(c echo.Context, page, fragment string, data any) (string, error) {
	var b strings.Builder
	p := Page{User: CurrentUser(c), Path: c.Request().URL.Path, Data: data}
	p.CSRF, _ = c.Get(csrfContextKey).(string)
	err := r.Views.Fragment(&b, page, fragment, p)
	return b.String(), err
}
