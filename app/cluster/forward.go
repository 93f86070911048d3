package cluster

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// PositionsCookie carries, from a write's answer to the reads after it,
// the positions its module files reached ("orders:1f,tickets:20", TXIDs in
// hexadecimal): a replica serves a read only once it has them.
const PositionsCookie = "txpos"

// forwardedHeader marks a write a replica handed on, so that a node that
// stopped being the primary meanwhile refuses it instead of passing it on
// again.
const forwardedHeader = "Ticketing-Forwarded"

// flyReplayLimit is the largest body Fly's proxy replays; a bigger one
// (a ticket's file) is proxied instead.
const flyReplayLimit = 1 << 20

// Writes reports whether a request may write, so that a replica hands it
// to the primary: every method but GET, HEAD and OPTIONS, and the GETs in
// writingGETs.
func Writes(r *http.Request, writingGETs ...string) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return true
	}
	for _, suffix := range writingGETs {
		if strings.HasSuffix(r.URL.Path, suffix) {
			return true
		}
	}
	return false
}

// Forward is the replica's side of the cluster, first in the middleware:
// a request that writes (see Writes) goes to the primary; a read that
// carries the positions cookie waits until this node has them, and goes to
// the primary if it does not within MaxLag. On the primary it does
// nothing. writingGETs are the path suffixes of GETs that write (signing
// out, recording a download).
func (n *Node) Forward(writingGETs ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			leading, host, known := n.Role()
			if leading {
				return next(c)
			}
			r := c.Request()
			writes := Writes(r, writingGETs...)
			if writes && (r.Header.Get(forwardedHeader) != "" || r.Header.Get("Fly-Replay-Src") != "" || !known || host == "") {
				// Handed here as the primary but no longer it, or no
				// primary yet (an election): the client tries again in
				// a moment.
				c.Response().Header().Set("Retry-After", "1")
				return echo.NewHTTPError(http.StatusServiceUnavailable, "The shop is changing servers; please try again in a moment.")
			}
			if writes {
				return n.forward(c, host)
			}
			if host == "" {
				return next(c) // no primary to wait for or hand the read to
			}
			if want := parsePositions(r); len(want) > 0 && !n.WaitFor(r.Context(), want) {
				n.cfg.Logger.Warn("cluster: this replica is behind the reader's last write; the primary serves the read",
					"path", r.URL.Path, "want", want)
				return n.forward(c, host)
			}
			return next(c)
		}
	}
}

// forward hands the request to the primary named host.
func (n *Node) forward(c echo.Context, host string) error {
	r := c.Request()
	if n.cfg.FlyReplay && r.ContentLength >= 0 && r.ContentLength <= flyReplayLimit {
		c.Response().Header().Set("Fly-Replay", "instance="+host)
		return c.NoContent(http.StatusTemporaryRedirect)
	}
	target, err := url.Parse(n.cfg.PrimaryURL(host))
	if err != nil {
		return fmt.Errorf("cluster: primary URL for %q: %w", host, err)
	}
	ip := c.RealIP()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the page's links and the CSRF origin check are the public host's
			pr.Out.Header.Set(forwardedHeader, "1")
			if h := n.cfg.ClientIPHeader; h != "" {
				pr.Out.Header.Set(h, ip)
			}
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			n.cfg.Logger.Warn("cluster: the primary did not answer a forwarded write", "primary", host, "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "The shop is changing servers; please try again in a moment.", http.StatusServiceUnavailable)
		},
	}
	proxy.ServeHTTP(c.Response(), r)
	return nil
}

// Positions is the primary's side, inside the read-your-writes middleware:
// a request that wrote answers with the positions cookie, naming every
// file that moved while it ran (its own writes and its events' effects in
// the other modules, which read-your-writes has waited for; a concurrent
// request's are included too, which only makes a reader wait a little
// longer).
func (n *Node) Positions(writingGETs ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !n.IsPrimary() || !Writes(c.Request(), writingGETs...) {
				return next(c)
			}
			// Any positions read before this request began are at most
			// what the files had when it began (they only grow on the
			// primary): the last write's reading serves, and this one
			// costs one reading of the files, not two.
			before := n.last.Load()
			if before == nil {
				now := n.Current()
				before = &now
			}
			c.Response().Before(func() {
				after := n.Current()
				n.last.Store(&after)
				moved := map[string]uint64{}
				for name, pos := range after {
					if pos > (*before)[name] {
						moved[name] = pos
					}
				}
				if len(moved) == 0 {
					return
				}
				// Keep what an earlier write asked for, for files this one
				// did not change.
				for name, pos := range parsePositions(c.Request()) {
					if _, ok := moved[name]; !ok {
						moved[name] = pos
					}
				}
				c.SetCookie(&http.Cookie{Name: PositionsCookie, Value: formatPositions(moved), Path: "/",
					MaxAge: positionsMaxAge, HttpOnly: true, SameSite: http.SameSiteLaxMode})
			})
			return next(c)
		}
	}
}

// positionsMaxAge is how long the cookie lives: far longer than any
// replica's lag, so it has always been reached by then.
const positionsMaxAge = int(time.Minute / time.Second)

func formatPositions(p map[string]uint64) string {
	names := make([]string, 0, len(p))
	for name := range p {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(p[name], 16))
	}
	return b.String()
}

// parsePositions reads the positions cookie; a malformed one (it is the
// client's to send) counts as none.
func parsePositions(r *http.Request) map[string]uint64 {
	k, err := r.Cookie(PositionsCookie)
	if err != nil || len(k.Value) > 512 {
		return nil
	}
	out := map[string]uint64{}
	for part := range strings.SplitSeq(k.Value, ",") {
		name, hex, ok := strings.Cut(part, ":")
		pos, err := strconv.ParseUint(hex, 16, 64)
		if !ok || err != nil || name == "" {
			return nil
		}
		out[name] = pos
	}
	return out
}
