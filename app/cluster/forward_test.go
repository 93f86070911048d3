package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/db"
)

// How a replica answers, role by role, without a mount: the role is set
// as Run would set it. The LiteFS mounts themselves are in the cluster
// tests (the root package).
func TestForward(t *testing.T) {
	var proxied []string
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		proxied = append(proxied, r.Method+" "+r.URL.Path+" "+r.Header.Get(forwardedHeader)+" "+r.Header.Get("Fly-Client-IP")+" "+r.Host)
		w.WriteHeader(http.StatusCreated)
	}))
	defer primary.Close()

	serve := func(n *Node, r *http.Request) *httptest.ResponseRecorder {
		e := echo.New()
		e.Use(n.Forward("/auth/signout"))
		e.Any("/*", func(c echo.Context) error { return c.String(http.StatusOK, "served here") })
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		return w
	}
	node := func(fly bool) *Node {
		n := New(Config{Mount: db.LiteFS{Dir: t.TempDir()}, Files: []string{"orders"}, FlyReplay: fly,
			ClientIPHeader: "Fly-Client-IP", PrimaryURL: func(host string) string { return primary.URL }})
		n.setRole(false, "machine-7")
		return n
	}

	t.Run("fly-replay names the primary's machine", func(t *testing.T) {
		w := serve(node(true), httptest.NewRequest(http.MethodPost, "/api/orders", strings.NewReader(`{"ticketId":"x"}`)))
		assert.Equal(t, "instance=machine-7", w.Header().Get("Fly-Replay"))
		assert.Empty(t, proxied, "Fly's proxy replays it, not this node")
	})
	t.Run("a body over Fly's replay limit is proxied", func(t *testing.T) {
		proxied = nil
		r := httptest.NewRequest(http.MethodPost, "/tickets/x/attachment", strings.NewReader(strings.Repeat("a", flyReplayLimit+1)))
		r.Host = "shop.example"
		w := serve(node(true), r)
		assert.Equal(t, http.StatusCreated, w.Code)
		assert.Empty(t, w.Header().Get("Fly-Replay"))
		require.Len(t, proxied, 1)
		assert.Equal(t, "POST /tickets/x/attachment 1 192.0.2.1 shop.example", proxied[0], "marked as forwarded, with the client's address and the public host")
	})
	t.Run("elsewhere writes are proxied; a writing GET too", func(t *testing.T) {
		proxied = nil
		assert.Equal(t, http.StatusCreated, serve(node(false), httptest.NewRequest(http.MethodDelete, "/api/orders/x", nil)).Code)
		assert.Equal(t, http.StatusCreated, serve(node(false), httptest.NewRequest(http.MethodGet, "/auth/signout", nil)).Code)
		assert.Len(t, proxied, 2)
	})
	t.Run("reads are served here", func(t *testing.T) {
		proxied = nil
		w := serve(node(false), httptest.NewRequest(http.MethodGet, "/tickets", nil))
		assert.Equal(t, "served here", w.Body.String())
		r := httptest.NewRequest(http.MethodGet, "/tickets", nil)
		r.AddCookie(&http.Cookie{Name: PositionsCookie, Value: "nosuchfile:ff,garbage"})
		assert.Equal(t, "served here", serve(node(false), r).Body.String(), "a malformed cookie counts as none")
		assert.Empty(t, proxied)
	})
	t.Run("a read the replica cannot catch up with goes to the primary", func(t *testing.T) {
		proxied = nil
		n := node(false)
		n.cfg.MaxLag = 20 * time.Millisecond
		r := httptest.NewRequest(http.MethodGet, "/orders/x", nil)
		r.AddCookie(&http.Cookie{Name: PositionsCookie, Value: "orders:ff"})
		assert.Equal(t, http.StatusCreated, serve(n, r).Code)
		assert.Len(t, proxied, 1)
	})
	t.Run("no primary, or handed a write it can no longer take: 503", func(t *testing.T) {
		proxied = nil
		n := node(false)
		n.setRole(false, "") // an election
		w := serve(n, httptest.NewRequest(http.MethodPost, "/api/orders", nil))
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"))
		assert.Equal(t, "served here", serve(n, httptest.NewRequest(http.MethodGet, "/", nil)).Body.String(), "reads go on")
		r := httptest.NewRequest(http.MethodPost, "/api/orders", nil)
		r.Header.Set(forwardedHeader, "1")
		assert.Equal(t, http.StatusServiceUnavailable, serve(node(false), r).Code, "never forwarded twice")
		assert.Empty(t, proxied)
	})
	t.Run("the primary serves everything", func(t *testing.T) {
		n := node(false)
		n.setRole(true, "")
		assert.Equal(t, "served here", serve(n, httptest.NewRequest(http.MethodPost, "/api/orders", nil)).Body.String())
	})
}

func TestPositionsCookieRoundTrip(t *testing.T) {
	p := map[string]uint64{"orders": 0x1f, "tickets": 0x20}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: PositionsCookie, Value: formatPositions(p)})
	assert.Equal(t, "orders:1f,tickets:20", formatPositions(p))
	assert.Equal(t, p, parsePositions(r))
}
