// Command flashsale measures a flash sale against the real server and
// against SQLite's own limit, and checks that nothing was sold twice.
//
// It builds the server binary from this module, starts it on a temporary
// DATA_DIR on 127.0.0.1 (a separate process, so its peak RSS is its own),
// seeds sellers, tickets and buyers through the JSON API, then runs:
//
//  1. rush: C buyers reserve distinct tickets as fast as they can;
//  2. contention: all C buyers at the same ticket at once, for H tickets;
//  3. checkout: reserve, pay (test mode), complete, end to end;
//  4. propagation: is a reserved ticket gone from the API the moment its
//     201 arrives, and commit-to-apply times from /healthz;
//  5. limit: the same reservation transaction (insert the order and append
//     order:created, in one transaction, same pragmas) straight on SQLite
//     in this process, no HTTP; ratio = rush reservations/s ÷ that rate.
//
// It prints one table and, last, one line:
//
//	flashsale: reservations/s=… ratio=… p99=…ms double_sells=0
//
// and exits non-zero if any ticket has two live orders or any acknowledged
// reservation is missing. All load goes to 127.0.0.1 and stops by itself.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"ticketing/app/apptest"
	"ticketing/app/apptest/apiclient"
	"ticketing/app/orders"
	"ticketing/app/payments"
	"ticketing/app/tickets"
	"ticketing/db"
	"ticketing/events"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flashsale:", err)
		os.Exit(1)
	}
}

type options struct {
	tickets, buyers, hot, checkout int
	duration                       time.Duration
	bin                            string
	litefs                         bool
	via                            string
}

func run() error {
	var o options
	flag.IntVar(&o.tickets, "tickets", 5000, "tickets listed for the rush")
	flag.IntVar(&o.buyers, "buyers", 50, "concurrent buyers (each with its own session)")
	flag.IntVar(&o.hot, "hot", 20, "tickets every buyer tries at once in the contention phase")
	flag.IntVar(&o.checkout, "checkout", 500, "reserve-and-pay rounds in the checkout phase")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "upper bound on each phase")
	flag.StringVar(&o.bin, "bin", "", "server binary to use instead of building one")
	flag.BoolVar(&o.litefs, "litefs", false, "run the server as the primary of a two-node LiteFS cluster on 127.0.0.1 (root, /dev/fuse, litefs installed)")
	flag.StringVar(&o.via, "via", "primary", "with -litefs, where the buyers and sellers go: primary, or replica (its writes are forwarded)")
	flag.Parse()

	tmp, err := os.MkdirTemp("", "flashsale-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "ticketing")
		fmt.Fprintln(os.Stderr, "building the server…")
		if out, err := exec.Command("go", "build", "-o", o.bin, "ticketing").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	dataDir := filepath.Join(tmp, "data")
	var srv *server
	if o.litefs {
		cl, err := startCluster(o, tmp)
		if err != nil {
			return err
		}
		defer cl.Close()
		primary := cl.Nodes[0]
		dataDir = primary.Mount
		srv = &server{url: primary.URL, internal: primary.Internal, pid: primary.Pid(), stopFn: func() error {
			for _, n := range cl.Nodes {
				if err := cl.StopServer(n); err != nil {
					return err
				}
			}
			return nil
		}}
		if o.via == "replica" {
			srv.url = cl.Nodes[1].URL
		}
	} else {
		srv, err = startServer(o.bin, dataDir)
		if err != nil {
			return err
		}
		defer srv.cmd.Process.Kill()
	}

	r := &report{}
	ack := &acks{orders: map[string]string{}}
	fmt.Fprintln(os.Stderr, "seeding…")
	sellers, buyers, err := seed(srv.url, o.buyers)
	if err != nil {
		return err
	}
	rushIDs, err := listTickets(sellers, o.tickets)
	if err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "rush…")
	rush := rushPhase(buyers, rushIDs, o.duration, ack)
	r.add("rush: reservations/s", fmt.Sprintf("%.0f", rush.rate()))
	r.add("rush: latency p50 / p99 / max", rush.latencies())
	r.add("rush: reservations, errors", fmt.Sprintf("%d, %d", rush.ok, rush.errors))

	fmt.Fprintln(os.Stderr, "contention…")
	cont, err := contentionPhase(sellers, buyers, o.hot, ack)
	if err != nil {
		return err
	}
	r.add("contention: attempts/s", fmt.Sprintf("%.0f", cont.rate()))
	r.add("contention: winners per ticket", cont.winners)

	fmt.Fprintln(os.Stderr, "checkout…")
	chk, err := checkoutPhase(sellers, buyers, o.checkout, o.duration, ack)
	if err != nil {
		return err
	}
	r.add("checkout: reserve+pay+complete/s", fmt.Sprintf("%.0f", chk.rate()))
	r.add("checkout: latency p50 / p99 / max", chk.latencies())

	fmt.Fprintln(os.Stderr, "propagation…")
	stale, err := propagationPhase(sellers, buyers, 200, ack)
	if err != nil {
		return err
	}
	r.add("propagation: 201 → ticket gone, stale reads", fmt.Sprintf("%d of 200", stale))
	apply, err := applyLatency(srv.internal)
	if err != nil {
		return err
	}
	r.add("propagation: commit → tickets applied p50 / p99", apply)

	rss := peakRSS(srv.pid)
	r.add("server peak RSS (VmHWM)", rss)
	if err := srv.stop(); err != nil {
		return err
	}
	r.add("module files at the end", fileSizes(dataDir))

	fmt.Fprintln(os.Stderr, "limit…")
	limit, err := rawLimit(filepath.Join(tmp, "raw"), 3*time.Second)
	if err != nil {
		return err
	}
	ratio := rush.rate() / limit
	r.add("limit: raw SQLite reservation txn/s", fmt.Sprintf("%.0f", limit))
	if o.litefs {
		// The same transaction, one commit at a time, through the mount.
		onMount, err := rawLimit(dataDir, 3*time.Second)
		if err != nil {
			return err
		}
		r.add("limit: raw reservation txn/s on the LiteFS mount", fmt.Sprintf("%.0f", onMount))
	}
	r.add("ratio (rush ÷ limit)", fmt.Sprintf("%.2f", ratio))

	doubles, missing, err := verify(dataDir, ack)
	if err != nil {
		return err
	}
	r.add("double sells", fmt.Sprint(doubles))
	r.add("acknowledged reservations missing", fmt.Sprint(missing))
	r.print(os.Stdout)
	fmt.Printf("flashsale: reservations/s=%.0f ratio=%.2f p99=%.1fms double_sells=%d\n", rush.rate(), ratio, rush.p(0.99), doubles)
	if doubles > 0 || missing > 0 || cont.bad {
		return errors.New("invariants broken: see the table")
	}
	return nil
}

// report is the table.
type report struct{ rows [][2]string }

func (r *report) add(k, v string) { r.rows = append(r.rows, [2]string{k, v}) }

func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tvalue")
	fmt.Fprintln(tw, "-------\t-----")
	for _, row := range r.rows {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	tw.Flush()
}

// acks are the reservations clients saw acknowledged.
type acks struct {
	mu     sync.Mutex
	orders map[string]string // order → ticket
}

func (a *acks) add(order, ticket string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.orders[order] = ticket
}

// server is the binary running.
type server struct {
	cmd      *exec.Cmd
	pid      int
	url      string
	internal string // the detailed /healthz
	done     chan error
	stopFn   func() error // a cluster's servers
}

// startCluster runs the server on a two-node LiteFS cluster (static
// lease, node 0 the primary).
func startCluster(o options, tmp string) (*apptest.Cluster, error) {
	litefs, err := apptest.FindLiteFS()
	if err == nil {
		err = apptest.CanMountFUSE()
	}
	if err != nil {
		return nil, fmt.Errorf("-litefs: %w", err)
	}
	return apptest.StartCluster(apptest.ClusterOptions{Dir: filepath.Join(tmp, "cluster"), Nodes: 2, LiteFS: litefs, Server: o.bin,
		Env: []string{"RESERVATION_TTL=15m", "SIGNUP_LIMIT=1000000/1s"}})
}

func startServer(bin, dataDir string) (*server, error) {
	cmd := exec.Command(bin)
	// The shop's per-IP sign-up limit would stop the seeding (every buyer
	// comes from 127.0.0.1): lifted here, and only here.
	cmd.Env = append(os.Environ(), "ADDR=127.0.0.1:0", "METRICS_ADDR=127.0.0.1:0", "DATA_DIR="+dataDir, "RESERVATION_TTL=15m", "SIGNUP_LIMIT=1000000/1s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, done: make(chan error, 1)}
	lines := bufio.NewReader(stdout)
	for s.url == "" {
		line, err := lines.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("server did not start: %v\n%s", err, logs.String())
		}
		line = strings.TrimSpace(line)
		if u, ok := strings.CutPrefix(line, "ticketing: internal on "); ok {
			s.internal = u
		}
		if u, ok := strings.CutPrefix(line, "ticketing: listening on "); ok {
			s.url = u
		}
	}
	go io.Copy(io.Discard, lines)
	go func() { s.done <- cmd.Wait() }()
	return s, nil
}

func (s *server) stop() error {
	if s.stopFn != nil {
		return s.stopFn()
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("server did not stop within 10s")
	}
}

// client is one signed-in user.
type client struct {
	base string
	http *http.Client
}

var transport = &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}

func newClient(base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{base: base, http: &http.Client{Jar: jar, Transport: transport, Timeout: 30 * time.Second}}
}

func (c *client) do(method, path string, body, out any) (int, error) {
	return apiclient.Do(c.http, method, c.base+path, body, out)
}

func signUp(base, email string) (*client, error) {
	c := newClient(base)
	s, err := c.do(http.MethodPost, "/api/users/signup", map[string]string{"email": email, "password": "password"}, nil)
	if err != nil || s != 201 {
		return nil, fmt.Errorf("sign up %s: %d %v", email, s, err)
	}
	return c, nil
}

func seed(base string, buyers int) ([]*client, []*client, error) {
	var sellers []*client
	for i := range 4 {
		c, err := signUp(base, fmt.Sprintf("seller%d@example.com", i))
		if err != nil {
			return nil, nil, err
		}
		sellers = append(sellers, c)
	}
	out := make([]*client, buyers)
	errs := make([]error, buyers)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() { out[i], errs[i] = signUp(base, fmt.Sprintf("buyer%d@example.com", i)) })
	}
	wg.Wait()
	return sellers, out, errors.Join(errs...)
}

// listTickets lists n tickets through the API, spread over the sellers.
func listTickets(sellers []*client, n int) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for _, s := range sellers {
		for range 4 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					var tk struct{ ID string }
					if st, err := s.do(http.MethodPost, "/api/tickets", map[string]any{"title": fmt.Sprintf("Flash sale seat %d", i), "price": 49.99}, &tk); err != nil || st != 201 {
						firstErr.CompareAndSwap(nil, fmt.Errorf("list ticket: %d %v", st, err))
						return
					}
					ids[i] = tk.ID
				}
			})
		}
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return ids, nil
}

// phase is a timed run of requests.
type phase struct {
	ok, errors int
	elapsed    time.Duration
	lat        []time.Duration
}

func (p *phase) rate() float64 { return float64(p.ok) / p.elapsed.Seconds() }

func (p *phase) p(q float64) float64 {
	if len(p.lat) == 0 {
		return 0
	}
	return float64(p.lat[min(len(p.lat)-1, int(float64(len(p.lat))*q))].Microseconds()) / 1000
}

func (p *phase) latencies() string {
	if len(p.lat) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f / %.1f ms", p.p(0.5), p.p(0.99), float64(p.lat[len(p.lat)-1].Microseconds())/1000)
}

func (p *phase) finish(start time.Time, lats [][]time.Duration) {
	p.elapsed = time.Since(start)
	for _, l := range lats {
		p.lat = append(p.lat, l...)
	}
	slices.Sort(p.lat)
}

// work hands the ids out to the buyers, one job at a time each, until the
// ids run out or the deadline passes, timing every job.
func work(buyers []*client, ids []string, limit time.Duration, job func(b *client, id string) bool) *phase {
	p := &phase{}
	jobs := make(chan string, len(ids))
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	deadline := time.Now().Add(limit)
	lats := make([][]time.Duration, len(buyers))
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, b := range buyers {
		wg.Go(func() {
			for id := range jobs {
				if time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				done := job(b, id)
				lats[i] = append(lats[i], time.Since(t0))
				if done {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	p.ok, p.errors = int(ok.Load()), int(bad.Load())
	p.finish(start, lats)
	return p
}

// reserve is one reservation, recorded in ack when acknowledged.
func reserve(b *client, id string, ack *acks) (string, bool) {
	var o struct{ ID string }
	s, err := b.do(http.MethodPost, "/api/orders", map[string]string{"ticketId": id}, &o)
	if err != nil || s != 201 {
		return "", false
	}
	ack.add(o.ID, id)
	return o.ID, true
}

func rushPhase(buyers []*client, ids []string, limit time.Duration, ack *acks) *phase {
	return work(buyers, ids, limit, func(b *client, id string) bool {
		_, ok := reserve(b, id, ack)
		return ok
	})
}

type contention struct {
	phase
	winners string
	bad     bool
}

func contentionPhase(sellers, buyers []*client, hot int, ack *acks) (*contention, error) {
	ids, err := listTickets(sellers, hot)
	if err != nil {
		return nil, err
	}
	c := &contention{}
	counts := map[int]int{}
	start := time.Now()
	attempts := 0
	for _, id := range ids {
		gate := make(chan struct{})
		var wins atomic.Int64
		var wg sync.WaitGroup
		for _, b := range buyers {
			wg.Go(func() {
				<-gate
				var o struct{ ID string }
				s, err := b.do(http.MethodPost, "/api/orders", map[string]string{"ticketId": id}, &o)
				if err == nil && s == 201 {
					wins.Add(1)
					ack.add(o.ID, id)
				}
			})
		}
		close(gate)
		wg.Wait()
		attempts += len(buyers)
		counts[int(wins.Load())]++
	}
	c.elapsed = time.Since(start)
	c.ok = attempts
	c.winners = fmt.Sprintf("exactly one for %d of %d tickets", counts[1], len(ids))
	c.bad = counts[1] != len(ids)
	return c, nil
}

func checkoutPhase(sellers, buyers []*client, n int, limit time.Duration, ack *acks) (*phase, error) {
	ids, err := listTickets(sellers, n)
	if err != nil {
		return nil, err
	}
	return work(buyers, ids, limit, func(b *client, id string) bool {
		order, ok := reserve(b, id, ack)
		if !ok {
			return false
		}
		s, err := b.do(http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil)
		return err == nil && s == 201
	}), nil
}

// propagationPhase reserves n tickets one by one and, right after each
// 201, asks the tickets API whether the ticket is already reserved.
func propagationPhase(sellers, buyers []*client, n int, ack *acks) (int, error) {
	ids, err := listTickets(sellers, n)
	if err != nil {
		return 0, err
	}
	stale := 0
	for i, id := range ids {
		b := buyers[i%len(buyers)]
		if _, ok := reserve(b, id, ack); !ok {
			return 0, fmt.Errorf("reserve ticket %s failed", id)
		}
		var tk struct {
			OrderID *string `json:"orderId"`
		}
		if _, err := b.do(http.MethodGet, "/api/tickets/"+id, nil, &tk); err != nil {
			return 0, err
		}
		if tk.OrderID == nil {
			stale++
		}
	}
	return stale, nil
}

func applyLatency(base string) (string, error) {
	var h struct {
		Consumers []events.ConsumerStatus `json:"consumers"`
	}
	if _, err := newClient(base).do(http.MethodGet, "/healthz", nil, &h); err != nil {
		return "", err
	}
	for _, c := range h.Consumers {
		if c.Consumer == "tickets" && c.Source == "orders" {
			return fmt.Sprintf("%.2f / %.2f ms", c.ApplyP50Ms, c.ApplyP99Ms), nil
		}
	}
	return "-", nil
}

func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.Join(strings.Fields(strings.TrimPrefix(line, "VmHWM:")), " ")
		}
	}
	return "unknown"
}

func fileSizes(dir string) string {
	var parts []string
	for _, m := range []string{"auth", "tickets", "orders", "expiration", "payments"} {
		var total int64
		for _, suffix := range []string{".db", ".db-wal"} {
			if fi, err := os.Stat(filepath.Join(dir, m+suffix)); err == nil {
				total += fi.Size()
			}
		}
		parts = append(parts, fmt.Sprintf("%s %.1f MB", m, float64(total)/1e6))
	}
	return strings.Join(parts, ", ")
}

// rawLimit runs the reservation transaction itself, orders.Store.Reserve
// (find the ticket in the replica, insert the order, append order:created,
// commit), on a fresh orders.db with the app's pragmas, for d.
func rawLimit(dir string, d time.Duration) (float64, error) {
	ctx := context.Background()
	od, err := db.Open(ctx, dir, "limit", events.Migrations(), orders.Migrations())
	if err != nil {
		return 0, err
	}
	defer od.Close()
	const n = 200_000
	ids := make([]string, n)
	err = od.Tx(ctx, func(tx *db.Tx) error {
		for i := range ids {
			ids[i] = db.NewID()
			if _, err := tx.ExecContext(ctx, "INSERT INTO tickets (id, title, price, user_id, version) VALUES (?, 'Seat', 4999, 'seller', 1)", ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	bus := events.NewBus(nil, events.Options{})
	store := orders.NewStore(od, bus.Log(od), 15*time.Minute, nil)
	start := time.Now()
	done := 0
	for done < n && time.Since(start) < d {
		if _, err := store.Reserve(ctx, "buyer", ids[done]); err != nil {
			return 0, err
		}
		done++
	}
	return float64(done) / time.Since(start).Seconds(), nil
}

// verify opens the stopped server's files: no ticket with two live orders,
// every acknowledged reservation present, and every invariant.
func verify(dir string, ack *acks) (doubles, missing int, err error) {
	ctx := context.Background()
	open := func(name string, m db.Migrations) (*db.DB, error) {
		return db.Open(ctx, dir, name, events.Migrations(), m)
	}
	od, err := open("orders", orders.Migrations())
	if err != nil {
		return 0, 0, err
	}
	defer od.Close()
	td, err := open("tickets", tickets.Migrations())
	if err != nil {
		return 0, 0, err
	}
	defer td.Close()
	pd, err := open("payments", payments.Migrations())
	if err != nil {
		return 0, 0, err
	}
	defer pd.Close()
	if err := od.Read().QueryRow("SELECT count(*) FROM (SELECT ticket_id FROM orders WHERE status != 'cancelled' GROUP BY ticket_id HAVING count(*) > 1)").Scan(&doubles); err != nil {
		return 0, 0, err
	}
	for order, ticket := range ack.orders {
		var got string
		if err := od.Read().QueryRow("SELECT ticket_id FROM orders WHERE id = ?", order).Scan(&got); err != nil || got != ticket {
			missing++
		}
	}
	if err := orders.CheckInvariants(ctx, od, td, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		doubles = max(doubles, 1)
	}
	if err := payments.CheckInvariants(ctx, od, pd); err != nil {
		fmt.Fprintln(os.Stderr, err)
		missing = max(missing, 1)
	}
	return doubles, missing, nil
}
