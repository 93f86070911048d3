// Package apptest runs the whole app for tests: every module on real SQLite
// files in t.TempDir(), consumers running, the real handler tree behind an
// httptest.Server, and clients with their own cookie jars.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"ticketing/app"
	"ticketing/app/apptest/apiclient"
	"ticketing/app/auth"
	"ticketing/app/tickets"
	"ticketing/app/web"
	"ticketing/db/dbtest"
	"ticketing/events"
)

// Harness is a running app.
type Harness struct {
	App    *app.App
	Config app.Config
	URL    string
	Server *httptest.Server
	// Internal is the URL of the internal listener (/metrics and the
	// detailed /healthz), which main serves on METRICS_ADDR.
	Internal string
	// caughtUp, on a cluster (APPTEST_LITEFS), waits until the node the
	// clients talk to has every commit of the primary.
	caughtUp func() error
	others   []*app.App // the other nodes' apps
}

// CatchUp waits, on a cluster, until the node at URL has everything the
// primary (App) has committed; on one machine it does nothing. Settle
// calls it.
func (h *Harness) CatchUp(t testing.TB) {
	t.Helper()
	if h.caughtUp != nil {
		require.NoError(t, h.caughtUp())
	}
}

// Client returns a new client with an empty cookie jar. It does not follow
// redirects, so tests see the 303s.
// On a cluster (APPTEST_LITEFS), every request it sends waits first until
// the node it talks to has every commit of the primary, so a suite written
// for one machine (where one client sees what another just did) holds on a
// replica too; read-your-writes for one client's own writes needs no such
// wait (the cluster tests show it without).
func (h *Harness) Client(t testing.TB) *Client {
	c := NewClient(t, h.URL)
	if h.caughtUp != nil {
		c.http.Transport = caughtUp{wait: h.caughtUp, next: http.DefaultTransport}
	}
	return c
}

// caughtUp is the transport of a cluster harness's clients.
type caughtUp struct {
	wait func() error
	next http.RoundTripper
}

func (c caughtUp) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := c.wait(); err != nil {
		return nil, err
	}
	return c.next.RoundTrip(r)
}

// CloseStreams ends every open live stream (what shutdown does), on every
// node.
func (h *Harness) CloseStreams() {
	h.App.Streams.Close()
	for _, a := range h.others {
		a.Streams.Close()
	}
}

// Option changes the config before the app opens.
type Option func(*app.Config)

// WithDataDir runs the app on dir instead of a new temporary directory, so a
// test can restart it on the same files.
func WithDataDir(dir string) Option { return func(c *app.Config) { c.DataDir = dir } }

// WithConfig lets a test set anything else.
func WithConfig(f func(*app.Config)) Option { return Option(f) }

// config is the test configuration: fast password hashing, quick retries.
func config(t testing.TB, opts []Option) app.Config {
	cfg := app.Config{
		DataDir:        t.TempDir(),
		BaseURL:        "http://127.0.0.1",
		SessionSecret:  bytes.Repeat([]byte("k"), 32),
		ReservationTTL: 15 * time.Minute,
		SweepInterval:  100 * time.Millisecond,
		// The production default: shows' tickets are capped.
		PriceCapPercent: 20,
		BcryptCost:      bcrypt.MinCost,
		Events:          events.Options{MinBackoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		Logger:          dbtest.Quiet,
		// Every test client comes from 127.0.0.1: sign-ups are not what
		// most tests are about. The limits' own tests set them back.
		Limits: auth.Limits{SignUpPerIP: auth.Rate{N: 100_000, Per: time.Second}, SignInPerIP: auth.Rate{N: 100_000, Per: time.Second}},
	}
	if os.Getenv("TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Open opens the app without starting its consumers or sweeper, as if the
// process had stopped right after its last commit. The test closes it (it
// is also closed when the test ends).
func Open(t testing.TB, opts ...Option) *app.App {
	t.Helper()
	a, err := app.Open(context.Background(), config(t, opts))
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	return a
}

// New starts the app and stops it when the test ends. With APPTEST_LITEFS
// set (see newOnCluster), it runs on a two-node LiteFS cluster instead.
func New(t testing.TB, opts ...Option) *Harness {
	t.Helper()
	if node := os.Getenv("APPTEST_LITEFS"); node != "" {
		if h := newOnCluster(t, node, opts); h != nil {
			return h
		}
	}
	// The server's address comes first, so that BASE_URL (redirects to
	// the test checkout, say) points at it.
	srv := httptest.NewUnstartedServer(nil)
	opts = append([]Option{func(c *app.Config) { c.BaseURL = "http://" + srv.Listener.Addr().String() }}, opts...)
	cfg := config(t, opts)
	a, internal := serve(t, srv, cfg)
	return &Harness{App: a, Config: cfg, URL: srv.URL, Server: srv, Internal: internal}
}

// serve opens and starts the app on cfg behind srv (not started yet) and
// an internal listener, and stops them all when the test ends. It returns
// the app and the internal listener's URL.
func serve(t testing.TB, srv *httptest.Server, cfg app.Config) (*app.App, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg)
	if err != nil {
		cancel()
		srv.Close()
		require.NoError(t, err)
	}
	require.NoError(t, a.Start(ctx))
	srv.Config.Handler = a.Handler()
	srv.Start()
	internal := httptest.NewServer(a.InternalHandler())
	t.Cleanup(func() {
		internal.Close()
		a.Streams.Close() // else Close waits for open event streams
		srv.Close()
		cancel()
		require.NoError(t, a.Close())
	})
	return a, internal.URL
}

// Client is one browser or API client: its own cookie jar.
type Client struct {
	base string
	http *http.Client
	// Header is added to every request (e.g. HX-Request).
	Header http.Header
}

// Do sends a request. A non-nil body is sent as JSON, except a string,
// which is sent as is (still declared as JSON: use Request for anything
// else).
func (c *Client) Do(t testing.TB, method, path string, body any) *http.Response {
	t.Helper()
	var r io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		r, ct = strings.NewReader(b), "application/json"
	default:
		buf, err := json.Marshal(b)
		require.NoError(t, err)
		r, ct = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequest(method, c.base+path, r)
	require.NoError(t, err)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return c.Request(t, req)
}

// Request sends req with the client's cookies and headers.
func (c *Client) Request(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	for k, v := range c.Header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	require.NoError(t, err)
	return resp
}

// JSON sends a JSON request and decodes the response body into out (when
// out is non-nil and there is a body). It returns the status.
func (c *Client) JSON(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	resp := c.Do(t, method, path, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, out), "decode %s %s: %s", method, path, b)
	}
	return resp.StatusCode
}

// Get fetches a page and parses it.
func (c *Client) Get(t testing.TB, path string) (*http.Response, *goquery.Document) {
	t.Helper()
	resp := c.Do(t, http.MethodGet, path, nil)
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	require.NoError(t, err)
	return resp, doc
}

// Form posts a form the way a browser with JavaScript off does, including
// the CSRF token from the cookie the site set (GET any page first; Form
// does a GET of "/" if the client has no token yet). It does not follow the
// redirect.
func (c *Client) Form(t testing.TB, path string, values url.Values) *http.Response {
	t.Helper()
	token := c.csrf()
	if token == "" {
		resp := c.Do(t, http.MethodGet, "/", nil)
		resp.Body.Close()
		token = c.csrf()
	}
	return c.FormWithToken(t, path, values, token)
}

// FormWithToken posts a form with the given CSRF token, as a page rendered
// with it does (see ExpireCSRF).
func (c *Client) FormWithToken(t testing.TB, path string, values url.Values, token string) *http.Response {
	t.Helper()
	v := url.Values{}
	for k, vs := range values {
		v[k] = vs
	}
	v.Set("_csrf", token)
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(v.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.Request(t, req)
}

// ExpireCSRF drops the CSRF cookie, as its expiry does in a tab left open
// for a day, and returns the token the open page still holds.
func (c *Client) ExpireCSRF(t testing.TB) string {
	t.Helper()
	token := c.csrf()
	u, err := url.Parse(c.base)
	require.NoError(t, err)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: "_csrf", Path: "/", MaxAge: -1}})
	return token
}

// csrf is the token in the CSRF cookie, "" without one.
func (c *Client) csrf() string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "_csrf" {
			return ck.Value
		}
	}
	return ""
}

// SignUp creates a user through the API and leaves the client signed in.
// It chooses no display name, as the seed's API does not.
func (c *Client) SignUp(t testing.TB, email, password string) web.User {
	t.Helper()
	return c.SignUpNamed(t, email, password, "")
}

// SignUpNamed is SignUp with a display name.
func (c *Client) SignUpNamed(t testing.TB, email, password, name string) web.User {
	t.Helper()
	var u web.User
	status := c.JSON(t, http.MethodPost, "/api/users/signup", map[string]string{"email": email, "password": password, "displayName": name}, &u)
	require.Equal(t, http.StatusCreated, status, "sign up %s", email)
	return u
}

// Sell lists a ticket as this signed-in client and returns its id.
func (c *Client) Sell(t testing.TB, title string, price float64) string {
	t.Helper()
	var tk struct{ ID string }
	status := c.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"title": title, "price": price}, &tk)
	require.Equal(t, http.StatusCreated, status, "sell %q", title)
	return tk.ID
}

// Order reserves ticketID as this signed-in client and returns the order's
// id.
func (c *Client) Order(t testing.TB, ticketID string) string {
	t.Helper()
	var o struct{ ID string }
	status := c.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": ticketID}, &o)
	require.Equal(t, http.StatusCreated, status, "reserve %s", ticketID)
	return o.ID
}

// Shop is a running app with a seller and a buyer signed up and signed in.
type Shop struct {
	*Harness
	Seller, Buyer *Client
	BuyerUser     web.User
}

// NewShop starts the app (see New) and signs up its seller and buyer.
func NewShop(t testing.TB, opts ...Option) *Shop {
	t.Helper()
	h := New(t, opts...)
	s := &Shop{Harness: h, Seller: h.Client(t), Buyer: h.Client(t)}
	s.Seller.SignUp(t, "seller@example.com", "password")
	s.BuyerUser = s.Buyer.SignUp(t, "buyer@example.com", "password")
	return s
}

// Body reads and closes a response body.
func Body(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// Doc parses a response body as HTML.
func Doc(t testing.TB, resp *http.Response) *goquery.Document {
	t.Helper()
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	require.NoError(t, err)
	return doc
}

// NewClient returns a client for a server that is not a Harness (a built
// binary in the fault drills). SetBase points it at a restarted server;
// cookies carry over, since cookies do not depend on the port.
func NewClient(t testing.TB, baseURL string) *Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &Client{
		base:   baseURL,
		Header: http.Header{},
		http: &http.Client{
			Jar:           jar,
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Copy returns a new client holding this one's cookies, as someone who
// copied them out of the browser would.
func (c *Client) Copy(t testing.TB) *Client {
	t.Helper()
	cp := NewClient(t, c.base)
	cp.http.Transport = c.http.Transport
	u, err := url.Parse(c.base)
	require.NoError(t, err)
	cp.http.Jar.SetCookies(u, c.http.Jar.Cookies(u))
	return cp
}

// SetBase changes the server the client talks to.
func (c *Client) SetBase(baseURL string) { c.base = baseURL }

// Try sends a JSON request like JSON, but returns transport errors
// instead of failing the test: for drills, where the server dies mid-request.
func (c *Client) Try(method, path string, body, out any) (int, error) {
	return apiclient.Do(c.http, method, c.base+path, body, out)
}

// Reserve lists n tickets and reserves every one of them, straight through
// the stores of an app that is not running (apptest.Open): the seed of the
// benchmarks that need many orders.
func Reserve(tb testing.TB, a *app.App, n int) {
	tb.Helper()
	ctx := context.Background()
	seller, err := a.Auth.SignUp(ctx, "seller@example.com", "password", "The Seller")
	require.NoError(tb, err)
	ids := make([]string, 0, n)
	for range n {
		tk, err := a.Tickets.Create(ctx, seller.ID, tickets.Listing{Title: "Show", PriceCents: 1000})
		require.NoError(tb, err)
		ids = append(ids, tk.ID)
	}
	// Orders needs its copy of the tickets before it can reserve them.
	_, err = a.Bus.Consumers(a.DB("orders")).PollOnce(ctx)
	require.NoError(tb, err)
	for _, id := range ids {
		_, err := a.Orders.Reserve(ctx, "buyer", id)
		require.NoError(tb, err)
	}
}

// Attach posts a ticket file (or, with name "", a barcode) for ticketID
// the way the ticket page's form does, and returns the answer's status.
func (c *Client) Attach(t testing.TB, ticketID, name string, data []byte, barcode, format string) int {
	t.Helper()
	resp := c.Do(t, http.MethodGet, "/tickets/"+ticketID, nil) // the form's page, and its CSRF cookie
	resp.Body.Close()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	require.NoError(t, w.WriteField("_csrf", c.csrf()))
	if name != "" {
		part, err := w.CreateFormFile("file", name)
		require.NoError(t, err)
		_, err = part.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, w.WriteField("barcode", barcode))
	require.NoError(t, w.WriteField("format", format))
	require.NoError(t, w.Close())
	req, err := http.NewRequest(http.MethodPost, c.base+"/tickets/"+ticketID+"/attachment", &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp = c.Request(t, req)
	resp.Body.Close()
	return resp.StatusCode
}
