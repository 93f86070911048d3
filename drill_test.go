package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
	"ticketing/app/orders"
	"ticketing/app/payments"
	"ticketing/app/tickets"
	"ticketing/db"
	"ticketing/db/dbtest"
	"ticketing/events"
)

// The fault drills build the real binary and drive it over HTTP: killed
// with SIGKILL mid-load, its files made unwritable, stopped past its
// deadlines. The short versions run with every `go test`; -drill.long runs
// them for longer.
var drillLong = flag.Bool("drill.long", false, "run the fault drills longer")

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the program once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("fault drills build and run the binary; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ticketing-drill-*")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ticketing")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// server is one run of the binary.
type server struct {
	cmd      *exec.Cmd
	URL      string
	Internal string // /metrics and the detailed /healthz
	logs     *apptest.LogBuffer
	done     chan error
}

func start(t *testing.T, dataDir string, env ...string) *server {
	t.Helper()
	return startCommand(t, exec.Command(binary(t)), dataDir, env...)
}

// startCommand starts the server through cmd (the binary, or something
// that execs it) and waits until it listens.
func startCommand(t *testing.T, cmd *exec.Cmd, dataDir string, env ...string) *server {
	t.Helper()
	cmd.Env = append(os.Environ(), "ADDR=127.0.0.1:0", "METRICS_ADDR=127.0.0.1:0", "DATA_DIR="+dataDir, "SESSION_SECRET="+strings.Repeat("d", 32))
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	s := &server{cmd: cmd, logs: &apptest.LogBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.logs
	require.NoError(t, cmd.Start())
	lines := bufio.NewReader(stdout)
	s.URL, s.Internal = readAddrs(t, lines)
	go io.Copy(io.Discard, lines)
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	return s
}

func (s *server) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGKILL))
	<-s.done
	s.done <- nil // for the cleanup
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		require.NoError(t, err, "graceful stop: %s", s.logs)
		s.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop within 10s")
	}
}

// idle waits until every consumer has caught up, per /healthz.
func (s *server) idle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		var h struct {
			Consumers []events.ConsumerStatus `json:"consumers"`
		}
		status, err := apptest.NewClient(t, s.Internal).Try(http.MethodGet, "/healthz", nil, &h)
		if err != nil || status != 200 {
			return false
		}
		for _, c := range h.Consumers {
			if c.Lag != 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
}

// signUp signs up a new client on s.
func signUp(t *testing.T, s *server, email string) *apptest.Client {
	t.Helper()
	c := apptest.NewClient(t, s.URL)
	status, err := c.Try(http.MethodPost, "/api/users/signup", map[string]string{"email": email, "password": "password"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status)
	return c
}

// ledger is what clients saw acknowledged, and when.
type ledger struct {
	mu       sync.Mutex
	reserved map[string]ack       // order → its ticket, when its reservation was acknowledged
	paid     map[string]time.Time // order → when its payment was
}

type ack struct {
	ticket string
	at     time.Time
}

func newLedger() *ledger {
	return &ledger{reserved: map[string]ack{}, paid: map[string]time.Time{}}
}

func (l *ledger) reserve(order, ticket string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reserved[order] = ack{ticket, time.Now()}
}

func (l *ledger) pay(order string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paid[order] = time.Now()
}

// load runs buyers that list, reserve and pay (half of their orders) until
// stop closes; with cancels they pay a third and cancel a third.
func load(seller *apptest.Client, buyers []*apptest.Client, l *ledger, stop <-chan struct{}, cancels bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, b := range buyers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for {
				select {
				case <-stop:
					return
				default:
				}
				var tk struct{ ID string }
				if s, err := seller.Try(http.MethodPost, "/api/tickets", map[string]any{"title": "Drill", "price": 10}, &tk); err != nil || s != 201 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				var o struct{ ID string }
				if s, err := b.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": tk.ID}, &o); err != nil || s != 201 {
					continue
				}
				l.reserve(o.ID, tk.ID)
				choice := rng.IntN(2)
				if cancels {
					choice = rng.IntN(3)
				}
				switch choice {
				case 0:
					if s, err := b.Try(http.MethodPost, "/api/payments", map[string]string{"orderId": o.ID, "token": "tok_visa"}, nil); err == nil && s == 201 {
						l.pay(o.ID)
					}
				case 2:
					b.Try(http.MethodDelete, "/api/orders/"+o.ID, nil, nil)
				}
			}
		})
	}
	return &wg
}

// TestKillNineUnderLoad kills the server with SIGKILL at a random moment
// while buyers reserve and pay, restarts it on the same files, five times;
// then checks that everything acknowledged is there, nothing was sold
// twice, every passed deadline was swept, and no event was applied twice.
func TestKillNineUnderLoad(t *testing.T) {
	dir := t.TempDir()
	env := []string{"RESERVATION_TTL=2s", "SWEEP_INTERVAL=100ms"}
	srv := start(t, dir, env...)
	seller := signUp(t, srv, "seller@example.com")
	buyers := make([]*apptest.Client, 8)
	for i := range buyers {
		buyers[i] = signUp(t, srv, fmt.Sprintf("b%d@example.com", i))
	}
	l := newLedger()
	rounds, runFor := 5, 300*time.Millisecond
	if *drillLong {
		rounds, runFor = 20, 2*time.Second
	}
	for round := range rounds {
		stop := make(chan struct{})
		wg := load(seller, buyers, l, stop, false)
		time.Sleep(runFor/2 + time.Duration(rand.Int64N(int64(runFor))))
		srv.kill(t)
		close(stop)
		wg.Wait()
		srv = start(t, dir, env...)
		for _, c := range append(buyers, seller) {
			c.SetBase(srv.URL)
		}
		t.Logf("round %d: %d reservations, %d payments acknowledged so far", round, len(l.reserved), len(l.paid))
	}
	require.NotEmpty(t, l.reserved, "the load reserved something")

	// Let every reservation's deadline pass and be swept, then stop.
	time.Sleep(2500 * time.Millisecond)
	srv.idle(t)
	srv.stop(t)
	checkFiles(t, dir, l)
}

// checkFiles opens the stopped server's files and checks the invariants
// and the ledger.
func checkFiles(t *testing.T, dir string, l *ledger) {
	t.Helper()
	ctx := context.Background()
	open := func(name string, m db.Migrations) *db.DB { return dbtest.Open(t, dir, name, m) }
	ordersDB := open("orders", orders.Migrations())
	ticketsDB := open("tickets", tickets.Migrations())
	paymentsDB := open("payments", payments.Migrations())

	require.NoError(t, orders.CheckInvariants(ctx, ordersDB, ticketsDB, time.Now()))
	require.NoError(t, payments.CheckInvariants(ctx, ordersDB, paymentsDB))

	for order, a := range l.reserved {
		var got string
		require.NoError(t, ordersDB.Read().QueryRow("SELECT ticket_id FROM orders WHERE id = ?", order).Scan(&got), "acknowledged order %s is missing", order)
		assert.Equal(t, a.ticket, got)
	}
	for order := range l.paid {
		var status string
		require.NoError(t, ordersDB.Read().QueryRow("SELECT status FROM orders WHERE id = ?", order).Scan(&status))
		assert.Equal(t, "complete", status, "acknowledged payment for order %s", order)
		var n int
		require.NoError(t, paymentsDB.Read().QueryRow("SELECT count(*) FROM payments WHERE order_id = ? AND status = 'succeeded'", order).Scan(&n))
		assert.Equal(t, 1, n, "order %s has one kept payment", order)
	}

	// Nothing applied twice: every change to a ticket bumped its version
	// by one and announced it, and orders' replica agrees.
	rows, err := ticketsDB.Read().Query(`SELECT t.id, t.version, coalesce(e.n, 0) FROM tickets t
		LEFT JOIN (SELECT subject, count(*) AS n FROM events GROUP BY subject) e ON e.subject = t.id`)
	require.NoError(t, err)
	defer rows.Close()
	replica := map[string]int64{}
	rrows, err := ordersDB.Read().Query("SELECT id, version FROM tickets")
	require.NoError(t, err)
	for rrows.Next() {
		var id string
		var v int64
		require.NoError(t, rrows.Scan(&id, &v))
		replica[id] = v
	}
	rrows.Close()
	n := 0
	for rows.Next() {
		var id string
		var version, announced int64
		require.NoError(t, rows.Scan(&id, &version, &announced))
		assert.Equal(t, version, announced, "ticket %s: one event per version", id)
		assert.Equal(t, version, replica[id], "ticket %s: orders' replica caught up exactly", id)
		n++
	}
	require.NotZero(t, n)
}

// TestReadOnlyFilesFailCleanly makes orders.db unwritable mid-run (an
// immutable file: what a full or failing disk looks like to SQLite): a
// reservation fails with 503 and a clear log line, nothing is half
// written, and it works again once the file is writable.
func TestReadOnlyFilesFailCleanly(t *testing.T) {
	needChattr(t)
	dir := t.TempDir()
	srv := start(t, dir)
	seller := signUp(t, srv, "seller@example.com")
	buyer := signUp(t, srv, "buyer@example.com")
	newTicket := func() string {
		var tk struct{ ID string }
		s, err := seller.Try(http.MethodPost, "/api/tickets", map[string]any{"title": "Show", "price": 10}, &tk)
		require.NoError(t, err)
		require.Equal(t, 201, s)
		return tk.ID
	}
	first := newTicket()
	second := newTicket()
	s, err := buyer.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": first}, nil)
	require.NoError(t, err)
	require.Equal(t, 201, s)

	unlock := immutable(t, filepath.Join(dir, "orders.db"), filepath.Join(dir, "orders.db-wal"))

	s, err = buyer.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": second}, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, s)
	assert.Eventually(t, func() bool { return strings.Contains(srv.logs.String(), "status=503") }, 5*time.Second, 10*time.Millisecond, "a clear log line:\n%s", srv.logs)

	unlock()
	require.Eventually(t, func() bool {
		s, err := buyer.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": second}, nil)
		return err == nil && s == 201
	}, 10*time.Second, 50*time.Millisecond, "writes work again")
	srv.idle(t)
	srv.stop(t)
	checkFiles(t, dir, newLedger())
}

// TestDeadlinePassedWhileDown: an order whose deadline passed while the
// process was down is cancelled within one sweep after start.
func TestDeadlinePassedWhileDown(t *testing.T) {
	dir := t.TempDir()
	env := []string{"RESERVATION_TTL=1s", "SWEEP_INTERVAL=200ms"}
	srv := start(t, dir, env...)
	seller := signUp(t, srv, "seller@example.com")
	buyer := signUp(t, srv, "buyer@example.com")
	var tk, o struct{ ID string }
	_, err := seller.Try(http.MethodPost, "/api/tickets", map[string]any{"title": "Show", "price": 10}, &tk)
	require.NoError(t, err)
	s, err := buyer.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": tk.ID}, &o)
	require.NoError(t, err)
	require.Equal(t, 201, s)
	srv.stop(t)

	time.Sleep(1200 * time.Millisecond) // the deadline passes while down
	srv = start(t, dir, env...)
	buyer.SetBase(srv.URL)
	started := time.Now()
	var got struct{ Status string }
	require.Eventually(t, func() bool {
		_, err := buyer.Try(http.MethodGet, "/api/orders/"+o.ID, nil, &got)
		return err == nil && got.Status == "cancelled"
	}, 5*time.Second, 10*time.Millisecond)
	t.Logf("cancelled %v after start", time.Since(started))
	assert.Less(t, time.Since(started), 2*time.Second, "within the first sweep (which runs at start), with margin for a loaded machine")
}

// TestKillNineWithReplication: SIGKILL while writing with replication on;
// after a restart on the same DATA_DIR nothing acknowledged is lost and
// every file's replica catches up again.
func TestKillNineWithReplication(t *testing.T) {
	dir := t.TempDir()
	env := []string{"LITESTREAM_REPLICA_URL=file://" + t.TempDir()}
	srv := start(t, dir, env...)
	seller := signUp(t, srv, "seller@example.com")
	buyers := []*apptest.Client{signUp(t, srv, "b1@example.com"), signUp(t, srv, "b2@example.com")}
	l := newLedger()
	stop := make(chan struct{})
	wg := load(seller, buyers, l, stop, false)
	time.Sleep(400 * time.Millisecond)
	srv.kill(t)
	close(stop)
	wg.Wait()
	require.NotEmpty(t, l.reserved)

	srv = start(t, dir, env...)
	waitInSync(t, srv.Internal) // replication resumed and caught up
	srv.idle(t)
	srv.stop(t)
	checkFiles(t, dir, l)
}

// TestHealthIs503OnImmutableFiles: with the module files made immutable
// (chattr +i, what a failing disk looks like to SQLite), /healthz answers
// 503 within a few seconds, so the platform takes the machine out, and
// 200 again once they are writable.
func TestHealthIs503OnImmutableFiles(t *testing.T) {
	needChattr(t)
	dir := t.TempDir()
	srv := start(t, dir)
	health := func(base string) int {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, health(srv.URL))
	files, err := filepath.Glob(filepath.Join(dir, "*.db*"))
	require.NoError(t, err)
	unlock := immutable(t, files...)
	require.Eventually(t, func() bool { return health(srv.URL) == 503 && health(srv.Internal) == 503 }, 5*time.Second, 100*time.Millisecond, "503 while writes fail")
	unlock()
	require.Eventually(t, func() bool { return health(srv.URL) == 200 }, 5*time.Second, 100*time.Millisecond, "200 once writes work")
	signUp(t, srv, "after@example.com")
}

func needChattr(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for chattr +i")
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("no chattr")
	}
}

// immutable makes files immutable (chattr +i) until unlock, or the end of
// the test.
func immutable(t *testing.T, files ...string) (unlock func()) {
	t.Helper()
	require.NoError(t, exec.Command("chattr", append([]string{"+i"}, files...)...).Run())
	var once sync.Once
	unlock = func() { once.Do(func() { exec.Command("chattr", append([]string{"-i"}, files...)...).Run() }) }
	t.Cleanup(unlock)
	return unlock
}
