package web_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/web"
)

// streamServer serves one stream whose step sends msgs, then (if endless)
// 64 KiB messages as fast as the client takes them.
func streamServer(t *testing.T, streams *web.Streams, endless bool, msgs ...web.Message) *httptest.Server {
	e := echo.New()
	e.GET("/stream", func(c echo.Context) error {
		return streams.Serve(c, nil, func(ctx context.Context, send func(web.Message) error) error {
			for _, m := range msgs {
				if err := send(m); err != nil {
					return err
				}
			}
			big := strings.Repeat("x", 64<<10)
			for i := 0; endless; i++ {
				if err := send(web.Message{ID: fmt.Sprint(i), Event: "e", Data: big}); err != nil {
					return err
				}
			}
			return nil
		})
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

// Every kind of line break in the data starts a new data line, so content
// cannot add fields (id:, retry:, event:) to the stream.
func TestStreamSplitsDataOnEveryLineBreak(t *testing.T) {
	streams := web.NewStreams(nil)
	t.Cleanup(streams.Close)
	srv := streamServer(t, streams, false,
		web.Message{ID: "7", Event: "tickets", Data: "a\rid: 999\r\rretry: 1\r\nevent: x\nb"},
		web.Message{ID: "bad\nid: 1", Event: "tickets", Data: "never sent"},
	)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	// Split as a browser does: CRLF, CR and LF all end a line.
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		for i, b := range data {
			if b == '\n' {
				return i + 1, data[:i], nil
			}
			if b == '\r' {
				if i+1 < len(data) && data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				if i+1 < len(data) || atEOF {
					return i + 1, data[:i], nil
				}
				return 0, nil, nil
			}
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	assert.Equal(t, []string{
		"id: 7", "event: tickets",
		"data: a", "data: id: 999", "data: ", "data: retry: 1", "data: event: x", "data: b", "",
	}, lines, "one event; the id with a line break was refused, and the stream ended")
}

// A client that opens a stream and never reads is dropped once a write has
// waited WriteTimeout: its goroutine and buffers are freed.
func TestStreamDropsAClientThatNeverReads(t *testing.T) {
	streams := web.NewStreams(nil)
	streams.WriteTimeout = 200 * time.Millisecond
	t.Cleanup(streams.Close)
	srv := streamServer(t, streams, true)

	for range 5 {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
		t.Cleanup(func() { conn.Close() })
		_, err = fmt.Fprintf(conn, "GET /stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return streams.Open() == 5 }, 5*time.Second, 10*time.Millisecond, "all connected")
	// Nobody reads. Each stream fills the socket's buffers, then its next
	// write times out.
	require.Eventually(t, func() bool { return streams.Open() == 0 }, 20*time.Second, 20*time.Millisecond, "never-reading clients dropped")
}
