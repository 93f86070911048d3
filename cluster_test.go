package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
	"ticketing/app/expiration"
	"ticketing/app/orders"
	"ticketing/app/payments"
	"ticketing/app/tickets"
	"ticketing/db"
	"ticketing/db/dbtest"
	"ticketing/events"
)

// The cluster tests run real LiteFS (its FUSE mounts, its replication,
// its lease) under the real server binary, two or three nodes on
// 127.0.0.1. They need root, /dev/fuse, fusermount3 and the litefs
// binary, which CI installs; elsewhere they skip, saying what is missing.

func needCluster(t *testing.T) (litefs string) {
	t.Helper()
	binary(t) // skips with -short
	litefs, err := apptest.FindLiteFS()
	if err == nil {
		err = apptest.CanMountFUSE()
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the LiteFS tests cannot run: %v", err)
		}
		t.Skipf("the LiteFS tests cannot run here: %v", err)
	}
	return litefs
}

func startCluster(t *testing.T, o apptest.ClusterOptions) *apptest.Cluster {
	t.Helper()
	o.LiteFS, o.Server = needCluster(t), binary(t)
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	// Every buyer signs up from 127.0.0.1.
	o.Env = append([]string{"SIGNUP_LIMIT=100000/1s"}, o.Env...)
	c, err := apptest.StartCluster(o)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("%s litefs:\n%s", n.Name, tail(n.LiteFSLog.String(), 3000))
				if n.Log != nil {
					t.Logf("%s server:\n%s", n.Name, tail(n.Log.String(), 6000))
				}
			}
		}
		c.Close()
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Through a replica's address, the whole shop: each write is handed to
// the primary and each read after it, served by the replica, already
// shows it (the positions cookie); a live page on the replica sees a sale
// made on the primary; a signed-out session ends on the replica too.
func TestClusterReplicaServesTheShop(t *testing.T) {
	t.Parallel()
	c := startCluster(t, apptest.ClusterOptions{Nodes: 2})
	primary, replica := c.Nodes[0], c.Nodes[1]
	require.True(t, primary.IsPrimary())
	require.False(t, replica.IsPrimary())

	seller := apptest.NewClient(t, replica.URL)
	me := seller.SignUp(t, "seller@example.com", "password")
	var cur struct{ CurrentUser *struct{ ID string } }
	require.Equal(t, http.StatusOK, seller.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
	require.NotNil(t, cur.CurrentUser, "the replica knows the session the primary began")
	assert.Equal(t, me.ID, cur.CurrentUser.ID)

	ticket := seller.Sell(t, "Replicated", 40)
	var tk struct {
		Title   string
		OrderID *string
	}
	require.Equal(t, http.StatusOK, seller.JSON(t, http.MethodGet, "/api/tickets/"+ticket, nil, &tk))
	assert.Equal(t, "Replicated", tk.Title)

	// A page on the replica, open while the ticket sells on the primary.
	watcher := apptest.NewClient(t, replica.URL)
	stream := watcher.Stream(t, "/tickets/stream", "")

	buyer := apptest.NewClient(t, replica.URL)
	buyer.SignUp(t, "buyer@example.com", "password")
	order := buyer.Order(t, ticket)
	var o struct{ Status string }
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodGet, "/api/orders/"+order, nil, &o), "the order, read on the replica right after the reservation")
	assert.Equal(t, "created", o.Status)
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodGet, "/api/tickets/"+ticket, nil, &tk))
	require.NotNil(t, tk.OrderID, "the ticket is locked by the order, on the replica")
	select {
	case e, ok := <-stream:
		require.True(t, ok, "the replica's live list stays open")
		t.Logf("live list on the replica: %s", e.Event)
	case <-time.After(time.Second):
		t.Fatal("the replica's live list did not hear of the sale within a second")
	}

	require.Equal(t, http.StatusCreated, buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodGet, "/api/orders/"+order, nil, &o))
	assert.Equal(t, "complete", o.Status, "paid, as read on the replica")

	other := seller.Sell(t, "Cancelled", 15)
	order2 := buyer.Order(t, other)
	require.Equal(t, http.StatusNoContent, buyer.JSON(t, http.MethodDelete, "/api/orders/"+order2, nil, nil))
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodGet, "/api/orders/"+order2, nil, &o))
	assert.Equal(t, "cancelled", o.Status)
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodGet, "/api/tickets/"+other, nil, &tk))
	assert.Nil(t, tk.OrderID, "released, as read on the replica")

	// The pages, served by the replica.
	resp, doc := buyer.Get(t, "/orders/"+order)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, doc.Find("main").Text(), "Replicated")

	// Signing out on the replica ends the session there too, for every
	// copy of the cookie.
	copied := buyer.Copy(t)
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodPost, "/api/users/signout", nil, nil))
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodGet, "/api/users/currentuser", nil, &cur))
	assert.Nil(t, cur.CurrentUser)
	require.Eventually(t, func() bool {
		var cu struct{ CurrentUser *struct{ ID string } }
		s, err := copied.Try(http.MethodGet, "/api/users/currentuser", nil, &cu)
		return err == nil && s == 200 && cu.CurrentUser == nil
	}, time.Second, 10*time.Millisecond, "a copied cookie is signed out on the replica within a second")

	// Every write was the primary's to do.
	for _, w := range []string{"POST uri=/api/users/signup", "POST uri=/api/tickets", "POST uri=/api/orders", "POST uri=/api/payments", "DELETE uri=/api/orders/" + order2, "POST uri=/api/users/signout"} {
		assert.Contains(t, strings.ReplaceAll(primary.Log.String(), "method=", ""), w, "the primary served %s", w)
	}
	var h struct {
		Cluster struct{ Role, Primary string }
	}
	require.Equal(t, http.StatusOK, apptest.NewClient(t, replica.Internal).JSON(t, http.MethodGet, "/healthz", nil, &h), "a replica is healthy though it cannot write")
	assert.Equal(t, "replica", h.Cluster.Role)
	assert.Equal(t, primary.Addr, h.Cluster.Primary)
}

// Fifty buyers spread over both nodes rush one ticket, twenty times: one
// wins each time, everyone else is told it is taken, and each winner reads
// their order back on the node they bought through.
func TestClusterZeroDoubleSells(t *testing.T) {
	t.Parallel()
	c := startCluster(t, apptest.ClusterOptions{Nodes: 2})
	seller := apptest.NewClient(t, c.Nodes[0].URL)
	seller.SignUp(t, "seller@example.com", "password")
	buyers := make([]*apptest.Client, 50)
	for i := range buyers {
		buyers[i] = apptest.NewClient(t, c.Nodes[i%2].URL)
		buyers[i].SignUp(t, fmt.Sprintf("b%d@example.com", i), "password")
	}
	for round := range 20 {
		ticket := seller.Sell(t, fmt.Sprintf("Round %d", round), 30)
		var wins, taken atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, b := range buyers {
			wg.Go(func() {
				<-start
				var o struct{ ID string }
				s, err := b.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": ticket}, &o)
				if !assert.NoError(t, err) {
					return
				}
				switch s {
				case http.StatusCreated:
					wins.Add(1)
					var got struct{ ID string }
					st, err := b.Try(http.MethodGet, "/api/orders/"+o.ID, nil, &got)
					assert.NoError(t, err)
					assert.Equal(t, http.StatusOK, st, "the winner reads their order on their node")
				case http.StatusBadRequest:
					taken.Add(1)
				default:
					t.Errorf("round %d: status %d", round, s)
				}
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, int32(1), wins.Load(), "round %d: one winner", round)
		require.Equal(t, int32(49), taken.Load(), "round %d: everyone else told it is reserved", round)
	}
}

// The primary dies (kill -9 of its server and its LiteFS) in the middle of
// a rush. The other candidate takes the lease when it runs out (Consul's
// session TTL, here 2 s, through the Consul stand-in), its background work
// starts, the remaining replica follows it, and sales go on. Everything
// acknowledged is on the new primary except what was acknowledged in the
// last moments before the kill (asynchronous replication: the loss window,
// measured), and every cross-module rule holds.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	consul := apptest.NewConsulStandIn()
	t.Cleanup(consul.Close)
	c := startCluster(t, apptest.ClusterOptions{Nodes: 3, Consul: consul.URL, Candidates: 2,
		Env: []string{"RESERVATION_TTL=4s", "SWEEP_INTERVAL=100ms"}})
	old, next, replica := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	require.True(t, old.IsPrimary())

	seller := apptest.NewClient(t, replica.URL)
	seller.SignUp(t, "seller@example.com", "password")
	buyers := make([]*apptest.Client, 12)
	for i := range buyers {
		buyers[i] = apptest.NewClient(t, c.Nodes[1+i%2].URL) // never the node that dies
		buyers[i].SignUp(t, fmt.Sprintf("b%d@example.com", i), "password")
	}

	l := newLedger()
	stop := make(chan struct{})
	wg := load(seller, buyers, l, stop, false)
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	c.Kill(old)
	// The first write the new primary accepts, asked for every 10 ms.
	require.Eventually(t, func() bool {
		s, err := seller.Try(http.MethodPost, "/api/tickets", map[string]any{"title": "Probe", "price": 10}, nil)
		return err == nil && s == http.StatusCreated
	}, 20*time.Second, 10*time.Millisecond, "a write is accepted after the failover")
	failover := time.Since(killed)
	t.Logf("failover: %s from kill -9 of the primary to the first write accepted by the new one (lease TTL 2s)", failover.Round(time.Millisecond))
	time.Sleep(time.Second) // sales go on
	close(stop)
	wg.Wait()
	require.True(t, next.IsPrimary(), "the other candidate holds the lease")
	require.False(t, replica.IsPrimary())
	holder, held := consul.Holder("ticketing/primary")
	require.True(t, held)
	assert.Contains(t, holder, next.Addr)
	assert.Contains(t, next.Log.String(), "this node is the primary; starting the work that writes")

	// A whole sale through the remaining replica, on the new primary.
	apptest.FreshSale(t, replica.URL)

	// Every deadline passes and is swept: the new primary's sweeper and
	// consumers are running.
	time.Sleep(4500 * time.Millisecond)
	require.NoError(t, c.StopServer(next))
	dir := next.Mount
	ordersDB := dbtest.Open(t, dir, "orders", orders.Migrations())
	ticketsDB := dbtest.Open(t, dir, "tickets", tickets.Migrations())
	expirationDB := dbtest.Open(t, dir, "expiration", expiration.Migrations())
	paymentsDB := dbtest.Open(t, dir, "payments", payments.Migrations())
	apptest.CheckFiles(t, ordersDB, ticketsDB, expirationDB, paymentsDB, time.Now())
	bad, err := events.CheckPositions(context.Background(), ordersDB, ticketsDB, expirationDB, paymentsDB)
	require.NoError(t, err)
	require.Empty(t, bad)

	// What was acknowledged and is gone was acknowledged just before the
	// kill: the replication lag.
	kill := killed
	var lost []time.Duration
	kept := 0
	for order, a := range l.reserved {
		var n int
		require.NoError(t, ordersDB.Read().QueryRow("SELECT count(*) FROM orders WHERE id = ?", order).Scan(&n))
		if n == 1 {
			kept++
			continue
		}
		lost = append(lost, kill.Sub(a.at))
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] > lost[j] })
	t.Logf("acknowledged reservations: %d kept, %d lost; the oldest lost was acknowledged %v before the kill", kept, len(lost), lostWindow(lost))
	require.NotZero(t, kept)
	for _, d := range lost {
		assert.Less(t, d, 500*time.Millisecond, "a lost reservation was acknowledged %s before the kill: outside the replication lag", d)
	}
	var swept int
	require.NoError(t, ordersDB.Read().QueryRow("SELECT count(*) FROM orders WHERE status = 'cancelled'").Scan(&swept))
	assert.NotZero(t, swept, "the new primary swept the deadlines")
}

// role is what n's server says it is, from its detailed /healthz:
// "primary", or "replica <primary>".
func role(t *testing.T, n *apptest.Node) string {
	var h struct {
		Cluster struct{ Role, Primary string }
	}
	if _, err := apptest.NewClient(t, n.Internal).Try(http.MethodGet, "/healthz", nil, &h); err != nil {
		return ""
	}
	return strings.TrimSpace(h.Cluster.Role + " " + h.Cluster.Primary)
}

func lostWindow(lost []time.Duration) any {
	if len(lost) == 0 {
		return "(none lost)"
	}
	return lost[0].Round(time.Millisecond)
}

// BenchmarkCluster measures a two-node LiteFS cluster on this machine:
// how long a commit on the primary takes to be readable on the replica
// (both nodes' -pos files sampled every 100 µs while a seller lists
// tickets one after another), and how many list pages one replica serves
// to 50 concurrent readers. Run it with
//
//	go test -run '^$' -bench Cluster -benchtime 1x .
func BenchmarkCluster(b *testing.B) {
	litefs, err := apptest.FindLiteFS()
	if err == nil {
		err = apptest.CanMountFUSE()
	}
	if err != nil {
		b.Skipf("the LiteFS benchmark cannot run here: %v", err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "ticketing")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	c, err := apptest.StartCluster(apptest.ClusterOptions{Dir: dir, Nodes: 2, LiteFS: litefs, Server: bin, Env: []string{"SIGNUP_LIMIT=100000/1s"}})
	require.NoError(b, err)
	defer c.Close()
	primary, replica := c.Nodes[0], c.Nodes[1]
	seller := apptest.NewClient(b, primary.URL)
	seller.SignUp(b, "seller@example.com", "password")

	for b.Loop() {
		// Commit to visible.
		seen := func(n *apptest.Node, out map[uint64]time.Time, stop <-chan struct{}, done *sync.WaitGroup) {
			defer done.Done()
			m := db.LiteFS{Dir: n.Mount}
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				pos, err := m.Position("tickets")
				if err == nil && pos > last {
					now := time.Now()
					for p := last + 1; p <= pos; p++ {
						out[p] = now
					}
					last = pos
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		committed, visible := map[uint64]time.Time{}, map[uint64]time.Time{}
		stop := make(chan struct{})
		var pollers sync.WaitGroup
		pollers.Add(2)
		go seen(primary, committed, stop, &pollers)
		go seen(replica, visible, stop, &pollers)
		time.Sleep(50 * time.Millisecond)
		for i := range 300 {
			seller.Sell(b, fmt.Sprintf("Listed %d", i), 20)
		}
		time.Sleep(200 * time.Millisecond)
		close(stop)
		pollers.Wait()
		var lags []time.Duration
		for txid, at := range committed {
			if v, ok := visible[txid]; ok {
				lags = append(lags, max(v.Sub(at), 0))
			}
		}
		require.NotEmpty(b, lags)
		slices.Sort(lags)
		q := func(f float64) time.Duration { return lags[int(f*float64(len(lags)-1))] }
		b.Logf("commit → visible on the replica: p50 %s, p99 %s, max %s (%d commits of tickets.db)",
			q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), q(1).Round(10*time.Microsecond), len(lags))
		b.ReportMetric(float64(q(0.5).Microseconds())/1000, "visible-p50-ms")
		b.ReportMetric(float64(q(0.99).Microseconds())/1000, "visible-p99-ms")

		// List pages from one replica.
		var served atomic.Int64
		var mu sync.Mutex
		var pages []time.Duration
		end := time.Now().Add(5 * time.Second)
		var readers sync.WaitGroup
		for range 50 {
			readers.Go(func() {
				cl := apptest.NewClient(b, replica.URL)
				var mine []time.Duration
				for time.Now().Before(end) {
					start := time.Now()
					s, err := cl.Try(http.MethodGet, "/", nil, nil)
					if err == nil && s == http.StatusOK {
						served.Add(1)
						mine = append(mine, time.Since(start))
					}
				}
				mu.Lock()
				pages = append(pages, mine...)
				mu.Unlock()
			})
		}
		readers.Wait()
		slices.Sort(pages)
		require.NotEmpty(b, pages)
		pq := func(f float64) time.Duration { return pages[int(f*float64(len(pages)-1))] }
		b.Logf("list pages served by one replica: %.0f/s, p50 %s, p99 %s (50 readers, 5 s, 300 tickets listed)",
			float64(served.Load())/5, pq(0.5).Round(10*time.Microsecond), pq(0.99).Round(10*time.Microsecond))
		b.ReportMetric(float64(served.Load())/5, "replica-pages/s")
	}
}

// Backups follow the lease: the primary streams every file to S3; when it
// dies, the node that takes the lease streams from then on, and a restore
// from the bucket holds what was written on both.
func TestClusterBackupsFollowThePrimary(t *testing.T) {
	replica := "s3://backups/ticketing?endpoint=" + s3Server(t) + "&force-path-style=true"
	consul := apptest.NewConsulStandIn()
	t.Cleanup(consul.Close)
	c := startCluster(t, apptest.ClusterOptions{Nodes: 2, Consul: consul.URL, Candidates: 2,
		Env: []string{"LITESTREAM_REPLICA_URL=" + replica}})
	old, next := c.Nodes[0], c.Nodes[1]
	require.True(t, old.IsPrimary())

	seller := apptest.NewClient(t, next.URL)
	seller.SignUp(t, "seller@example.com", "password")
	before := seller.Sell(t, "Sold before the failover", 20)
	waitInSync(t, old.Internal)
	var h struct{ Replication map[string]db.ReplicaStatus }
	require.Equal(t, http.StatusOK, apptest.NewClient(t, next.Internal).JSON(t, http.MethodGet, "/healthz", nil, &h))
	assert.Empty(t, h.Replication, "a replica does not stream to the bucket")

	c.Kill(old)
	require.Eventually(t, next.IsPrimary, 20*time.Second, 20*time.Millisecond)
	var after string
	require.Eventually(t, func() bool {
		var tk struct{ ID string }
		s, err := seller.Try(http.MethodPost, "/api/tickets", map[string]any{"title": "Sold after the failover", "price": 30}, &tk)
		after = tk.ID
		return err == nil && s == http.StatusCreated
	}, 20*time.Second, 50*time.Millisecond, "the new primary takes writes")
	waitInSync(t, next.Internal)
	assert.Contains(t, next.Log.String(), "replicating")

	// The bucket, restored on a machine of its own.
	dir := filepath.Join(t.TempDir(), "restored")
	cmd := exec.Command(binary(t), "restore")
	cmd.Env = append(os.Environ(), "DATA_DIR="+dir, "LITESTREAM_REPLICA_URL="+replica, "SESSION_SECRET="+strings.Repeat("r", 32))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("restore:\n%s", out)
	ticketsDB := dbtest.Open(t, dir, "tickets", tickets.Migrations())
	for _, id := range []string{before, after} {
		var n int
		require.NoError(t, ticketsDB.Read().QueryRow("SELECT count(*) FROM tickets WHERE id = ?", id).Scan(&n))
		assert.Equal(t, 1, n, "ticket %s is in the backup", id)
	}
}

// The primary loses its lease while it runs (cut off from Consul): it
// stops its work that writes without a restart, becomes a replica of the
// node that takes the lease, and hands its writes there.
func TestClusterPrimaryStepsDown(t *testing.T) {
	t.Parallel()
	consul := apptest.NewConsulStandIn()
	t.Cleanup(consul.Close)
	c := startCluster(t, apptest.ClusterOptions{Nodes: 2, Consul: consul.URL, Candidates: 2})
	old, next := c.Nodes[0], c.Nodes[1]
	require.True(t, old.IsPrimary())
	buyer := apptest.NewClient(t, old.URL)
	buyer.SignUp(t, "buyer@example.com", "password")

	consul.Partition("ticketing/primary", old.Addr)
	require.Eventually(t, func() bool { return next.IsPrimary() && !old.IsPrimary() }, 20*time.Second, 20*time.Millisecond,
		"the other candidate takes the lease, the old primary steps down")
	require.Eventually(t, func() bool {
		return strings.Contains(old.Log.String(), "this node is no longer the primary; stopping the work that writes")
	}, 5*time.Second, 10*time.Millisecond)
	// Both servers have read their new roles (each reads it every 100 ms;
	// until then a write is a 503 with Retry-After).
	require.Eventually(t, func() bool {
		return role(t, next) == "primary" && role(t, old) == "replica "+next.Addr
	}, 5*time.Second, 10*time.Millisecond)

	// Its server never restarted: the same process now forwards writes.
	require.Eventually(t, func() bool {
		var cur struct{ CurrentUser *struct{ ID string } }
		s, err := buyer.Try(http.MethodGet, "/api/users/currentuser", nil, &cur)
		return err == nil && s == 200 && cur.CurrentUser != nil
	}, 10*time.Second, 20*time.Millisecond, "the session begun on the old primary lives on")
	apptest.FreshSale(t, old.URL)
	assert.Contains(t, next.Log.String(), "POST uri=/api/orders", "the sale's writes were the new primary's")
	assert.Equal(t, 1, strings.Count(old.Log.String(), "msg=listening"), "one start")
}
