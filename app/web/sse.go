package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"ticketing/events"
)

// Streams owns the Server-Sent Events streams: Close ends every one of them,
// so a graceful shutdown does not wait on connections that never finish
// (main registers it with http.Server.RegisterOnShutdown).
//
// A stream is dropped when a write does not go through within WriteTimeout
// (a client that stopped reading, or reads too slowly to keep up), and a
// signed-in user's stream ends when its session ends.
type Streams struct {
	ctx      context.Context
	cancel   context.CancelFunc
	sessions *Sessions
	// WriteTimeout bounds each write to a client, so one that never reads
	// holds a goroutine and a socket's buffers only until then.
	WriteTimeout time.Duration
	open         atomic.Int64
}

// Open is the number of streams being served.
func (s *Streams) Open() int64 { return s.open.Load() }

// NewStreams returns an open set of streams; sessions tells whether a
// stream's session is still live.
func NewStreams(sessions *Sessions) *Streams {
	ctx, cancel := context.WithCancel(context.Background())
	return &Streams{ctx: ctx, cancel: cancel, sessions: sessions, WriteTimeout: 10 * time.Second}
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
	s.open.Add(1)
	defer s.open.Add(-1)
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
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return nil
	}

	// Every write and flush has a deadline: a client that stops reading
	// fills the socket's buffers, and the next one then fails. A step's
	// messages go out in one flush.
	deadline := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	write := func(b []byte) error {
		if err := deadline(); err != nil {
			return err
		}
		_, err := w.Write(b)
		return err
	}
	flush := func() error {
		if err := deadline(); err != nil {
			return err
		}
		return rc.Flush()
	}
	send := func(m Message) error {
		b, err := m.encode()
		if err != nil {
			return err
		}
		return write(b)
	}
	signedIn := CurrentUser(c) != nil
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		if signedIn && s.sessions != nil && !s.sessions.Live(c) {
			return nil // signed out (here or with another copy of the cookie)
		}
		err := step(ctx, send)
		if err == nil {
			err = flush()
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
				return nil // gone, or too slow: dropped
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-ping.C:
			if err := write([]byte(": keep-alive\n\n")); err != nil {
				return nil
			}
			if err := flush(); err != nil {
				return nil
			}
		}
	}
}

// lineBreaks are what end a line in an event stream: CRLF, a lone CR and
// a lone LF alike (the HTML spec's parser), so each must start a new data
// line, or content could write fields of its own (id:, retry:).
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// encode writes m in the event-stream format. Data is split on every kind
// of line break into data lines (the browser joins them with LF); an id or
// event name that would break a line is refused, never sent.
func (m Message) encode() ([]byte, error) {
	if strings.ContainsAny(m.ID, "\r\n\x00") || strings.ContainsAny(m.Event, "\r\n") {
		return nil, fmt.Errorf("event stream: id %q or event %q has a line break", m.ID, m.Event)
	}
	var b bytes.Buffer
	if m.ID != "" {
		b.WriteString("id: " + m.ID + "\n")
	}
	if m.Event != "" {
		b.WriteString("event: " + m.Event + "\n")
	}
	for line := range strings.SplitSeq(lineBreaks.Replace(m.Data), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}

// Fragment renders one fragment of a page with the request's user and
// CSRF token, for a stream.
func (r *Renderer) Fragment(c echo.Context, page, fragment string, data any) (string, error) {
	var b strings.Builder
	p := pageData{User: CurrentUser(c), Path: c.Request().URL.Path, Data: data}
	p.CSRF, _ = c.Get(csrfContextKey).(string)
	err := r.Views.Fragment(&b, page, fragment, p)
	return b.String(), err
}
