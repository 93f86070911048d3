package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/delivery"
	"ticketing/app/orders"
	"ticketing/app/payments"
	"ticketing/app/tickets"
	"ticketing/db"
	"ticketing/db/dbtest"
	"ticketing/events"
)

// s3Server is an S3-compatible server in the test process, on 127.0.0.1,
// with one bucket.
func s3Server(t testing.TB) string {
	t.Helper()
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket("backups"))
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	// Litestream reads the credentials from the process environment. A set
	// CA bundle makes its S3 client fail to build its HTTP client.
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CA_BUNDLE", "")
	return srv.URL
}

func replicaURLs(t *testing.T) map[string]string {
	return map[string]string{
		"s3":   "s3://backups/ticketing?endpoint=" + s3Server(t) + "&force-path-style=true",
		"file": "file://" + t.TempDir(),
	}
}

// snapshot counts what each module file holds.
func countRows(t *testing.T, dir string) map[string]int {
	t.Helper()
	ctx := context.Background()
	out := map[string]int{}
	for name, m := range map[string]db.Migrations{"auth": {}, "tickets": tickets.Migrations(), "orders": orders.Migrations(), "payments": payments.Migrations()} {
		sets := []db.Migrations{events.Migrations()}
		if m.FS != nil {
			sets = append(sets, m)
		}
		d, err := db.Open(ctx, dir, name, sets...)
		require.NoError(t, err)
		var n int
		require.NoError(t, d.Read().QueryRow("SELECT count(*) FROM events").Scan(&n))
		out[name+" events"] = n
		d.Close()
	}
	return out
}

// The disaster drill: lose the machine and its volume, start again with
// the same replica URL, and find everything.
func TestDisasterRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("replication drill")
	}
	for kind, replica := range replicaURLs(t) {
		t.Run(kind, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			env := map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "LITESTREAM_REPLICA_URL": replica, "SESSION_SECRET": strings.Repeat("r", 32)}
			base, internal, stop := startRunLog(t, env, io.Discard)
			seller := apptest.NewClient(t, base)
			buyer := apptest.NewClient(t, base)
			for _, c := range []struct {
				cl    *apptest.Client
				email string
			}{{seller, "seller@example.com"}, {buyer, "buyer@example.com"}} {
				s, err := c.cl.Try(http.MethodPost, "/api/users/signup", map[string]string{"email": c.email, "password": "password"}, nil)
				require.NoError(t, err)
				require.Equal(t, 201, s)
			}
			var ids []string
			for i := range 5 {
				var tk struct{ ID string }
				s, err := seller.Try(http.MethodPost, "/api/tickets", map[string]any{"title": fmt.Sprintf("Show %d", i), "price": 10 + i}, &tk)
				require.NoError(t, err)
				require.Equal(t, 201, s)
				ids = append(ids, tk.ID)
			}
			var paid, reserved struct{ ID string }
			_, err := buyer.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": ids[0]}, &paid)
			require.NoError(t, err)
			s, err := buyer.Try(http.MethodPost, "/api/payments", map[string]string{"orderId": paid.ID, "token": "tok_visa"}, nil)
			require.NoError(t, err)
			require.Equal(t, 201, s)
			_, err = buyer.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": ids[1]}, &reserved)
			require.NoError(t, err)
			// The ticket file rides the same backups.
			ticketFile := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("ticket bytes "), 4000)...)
			require.Equal(t, http.StatusSeeOther, seller.Attach(t, ids[0], "ticket.pdf", ticketFile, "", ""))

			// Wait until every file's replica has caught up, then lose it all.
			waitInSync(t, internal)
			require.NoError(t, stop())
			before := countRows(t, dir)
			require.NoError(t, os.RemoveAll(dir))

			base, internal, stop = startRunLog(t, env, io.Discard)
			for _, c := range []*apptest.Client{seller, buyer} {
				c.SetBase(base)
			}
			var o struct{ Status string }
			s, err = buyer.Try(http.MethodGet, "/api/orders/"+paid.ID, nil, &o)
			require.NoError(t, err)
			require.Equal(t, 200, s, "the session cookie and the order survived")
			assert.Equal(t, "complete", o.Status)
			s, err = buyer.Try(http.MethodGet, "/api/orders/"+reserved.ID, nil, &o)
			require.NoError(t, err)
			require.Equal(t, 200, s)
			assert.Equal(t, "created", o.Status)
			var list []struct{ ID string }
			_, err = buyer.Try(http.MethodGet, "/api/tickets", nil, &list)
			require.NoError(t, err)
			assert.Len(t, list, 3, "the three tickets still on sale")
			resp := buyer.Do(t, http.MethodGet, "/tickets/"+ids[0]+"/attachment", nil)
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "the buyer downloads the ticket after the restore")
			assert.Equal(t, sha256.Sum256(ticketFile), sha256.Sum256(got), "the same bytes")
			fresh := apptest.NewClient(t, base)
			s, err = fresh.Try(http.MethodPost, "/api/users/signin", map[string]string{"email": "seller@example.com", "password": "password"}, nil)
			require.NoError(t, err)
			assert.Equal(t, 200, s, "users restored")
			waitIdle(t, internal) // a consumer that lost its position re-applies before it is idle
			require.NoError(t, stop())

			assert.Equal(t, before, countRows(t, dir), "every event back, none applied twice")
			ctx := context.Background()
			od := dbtest.Open(t, dir, "orders", orders.Migrations())
			td := dbtest.Open(t, dir, "tickets", tickets.Migrations())
			pd := dbtest.Open(t, dir, "payments", payments.Migrations())
			require.NoError(t, orders.CheckInvariants(ctx, od, td, time.Now()))
			require.NoError(t, payments.CheckInvariants(ctx, od, pd))
		})
	}
}

// A replica that cannot be read stops the start with a clear error rather
// than starting empty; an empty replica starts fresh.
func TestRestoreFailuresStopTheStart(t *testing.T) {
	if testing.Short() {
		t.Skip("replication drill")
	}
	secret := strings.Repeat("r", 32)
	t.Run("unreachable", func(t *testing.T) {
		s3Server(t) // the credentials
		err := run(context.Background(), nil, env(map[string]string{
			"DATA_DIR": t.TempDir(), "ADDR": "127.0.0.1:0", "SESSION_SECRET": secret,
			"LITESTREAM_REPLICA_URL": "s3://backups/ticketing?endpoint=http://127.0.0.1:1&force-path-style=true",
		}), io2(t), io2(t))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "refusing to start empty over a backup")
	})
	t.Run("corrupt", func(t *testing.T) {
		replicaDir := t.TempDir()
		dir := filepath.Join(t.TempDir(), "data")
		vars := map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "SESSION_SECRET": secret, "LITESTREAM_REPLICA_URL": "file://" + replicaDir}
		base, stop := startRun(t, vars)
		cl := apptest.NewClient(t, base)
		_, err := cl.Try(http.MethodPost, "/api/users/signup", map[string]string{"email": "a@example.com", "password": "password"}, nil)
		require.NoError(t, err)
		require.NoError(t, stop())
		require.NoError(t, os.RemoveAll(dir))
		// Scribble over every file the replica holds for auth.db.
		n := 0
		require.NoError(t, filepath.Walk(filepath.Join(replicaDir, "auth"), func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				n++
				return os.WriteFile(p, []byte("not an LTX file, just noise"), 0o644)
			}
			return err
		}))
		require.NotZero(t, n)
		err = run(context.Background(), nil, env(vars), io2(t), io2(t))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "restore")
	})
	t.Run("empty replica starts fresh", func(t *testing.T) {
		base, stop := startRun(t, map[string]string{"DATA_DIR": t.TempDir(), "ADDR": "127.0.0.1:0", "SESSION_SECRET": secret, "LITESTREAM_REPLICA_URL": "file://" + t.TempDir()})
		resp, err := http.Get(base + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		require.NoError(t, stop())
	})
}

// BenchmarkReserveWithReplication: reservations per second through the
// handler tree with replication off, to file://, and to the in-process S3
// server; compare the figures to see what replication costs.
func BenchmarkReserveWithReplication(b *testing.B) {
	for _, kind := range []string{"off", "file", "s3"} {
		b.Run(kind, func(b *testing.B) {
			var rep *db.Replication
			switch kind {
			case "file":
				r, err := db.NewReplication("file://"+b.TempDir(), os.Getenv, dbtest.Quiet)
				require.NoError(b, err)
				rep = r
			case "s3":
				r, err := db.NewReplication("s3://backups/bench?endpoint="+s3Server(b)+"&force-path-style=true", os.Getenv, dbtest.Quiet)
				require.NoError(b, err)
				rep = r
			}
			h := apptest.New(b, apptest.WithConfig(func(c *app.Config) { c.Replication = rep }))
			seller := h.Client(b)
			seller.SignUp(b, "seller@example.com", "password")
			buyer := h.Client(b)
			buyer.SignUp(b, "buyer@example.com", "password")
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = seller.Sell(b, "Show", 10)
			}
			b.ResetTimer()
			for _, id := range ids {
				if s := buyer.JSON(b, http.MethodPost, "/api/orders", map[string]string{"ticketId": id}, nil); s != 201 {
					b.Fatalf("status %d", s)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
		})
	}
}

// BenchmarkRestore100kOrders: how long bringing back files that hold
// 100,000 orders takes from a file:// replica, consistent-cut search
// included: orders.db's backup is put back to before the last ten orders,
// so the files that consumed them are taken back to earlier points.
func BenchmarkRestore100kOrders(b *testing.B) {
	ctx := context.Background()
	backups := b.TempDir()
	replica := "file://" + backups
	dir := filepath.Join(b.TempDir(), "data")
	open := func() *app.App {
		rep, err := db.NewReplication(replica, os.Getenv, dbtest.Quiet)
		require.NoError(b, err)
		return apptest.Open(b, apptest.WithDataDir(dir), apptest.WithConfig(func(c *app.Config) { c.Replication = rep }))
	}
	settle := func(a *app.App) {
		for range 3 {
			for _, d := range a.DBs {
				_, err := a.Bus.Consumers(d).PollOnce(ctx)
				require.NoError(b, err)
			}
		}
	}
	const n = 100_000
	a := open()
	apptest.Reserve(b, a, n)
	settle(a)
	require.NoError(b, a.Close()) // syncs every file to the replica
	kept := filepath.Join(b.TempDir(), "orders")
	require.NoError(b, os.CopyFS(kept, os.DirFS(filepath.Join(backups, "orders"))))
	a = open()
	for range 10 {
		tk, err := a.Tickets.Create(ctx, "seller", tickets.Listing{Title: "Later show", PriceCents: 1000})
		require.NoError(b, err)
		settle(a)
		_, err = a.Orders.Reserve(ctx, "buyer", tk.ID)
		require.NoError(b, err)
	}
	settle(a)
	require.NoError(b, a.Close())
	require.NoError(b, os.RemoveAll(filepath.Join(backups, "orders")))
	require.NoError(b, os.CopyFS(filepath.Join(backups, "orders"), os.DirFS(kept)))

	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		require.NoError(b, os.RemoveAll(dir))
		rep, err := db.NewReplication(replica, os.Getenv, dbtest.Quiet)
		require.NoError(b, err)
		b.StartTimer()
		cut, err := app.Restore(ctx, dir, rep, app.RestoreOptions{}, dbtest.Quiet)
		require.NoError(b, err)
		b.ReportMetric(float64(cut.Probes), "versions")
		for _, m := range cut.Modules {
			if m.Name == "tickets" {
				require.Equal(b, app.SourceReplica, m.Source)
				require.NotZero(b, m.Lost["ticket:updated"], "tickets.db was taken back: %s", m)
			}
		}
	}
	b.StopTimer()
	require.Equal(b, n, countOrders(b, dir))
}

// A start trusts no file: an empty (0-byte), truncated or mid-file-garbage
// module file is not a new, empty module. Without a replica the start
// stops and names the file; with one the file is moved aside (kept) and
// restored, and the shop carries on with its data.
func TestStartChecksItsFiles(t *testing.T) {
	secret := strings.Repeat("r", 32)
	damage := map[string]func(t *testing.T, path string){
		"0 bytes": func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 0)) },
		"truncated": func(t *testing.T, path string) {
			info, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, info.Size()/2/4096*4096))
		},
		"garbage mid-file": func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			for i := len(b) / 2; i < len(b)/2+4096 && i < len(b); i++ {
				b[i] = 0xA5
			}
			require.NoError(t, os.WriteFile(path, b, 0o644))
		},
	}
	// seed makes a shop with enough orders that orders.db spans many pages.
	seed := func(t *testing.T, vars map[string]string) {
		base, stop := startRun(t, vars)
		seller := apptest.NewClient(t, base)
		status, err := seller.Try(http.MethodPost, "/api/users/signup", map[string]string{"email": "seller@example.com", "password": "password"}, nil)
		require.NoError(t, err)
		require.Equal(t, 201, status)
		for i := range 300 {
			status, err := seller.Try(http.MethodPost, "/api/tickets", map[string]any{"title": fmt.Sprintf("Show number %d with a long enough title", i), "price": 10}, nil)
			require.NoError(t, err)
			require.Equal(t, 201, status)
		}
		require.NoError(t, stop())
	}
	for name, hurt := range damage {
		t.Run(name+", no replica", func(t *testing.T) {
			dir := t.TempDir()
			vars := map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "SESSION_SECRET": secret}
			seed(t, vars)
			hurt(t, filepath.Join(dir, "tickets.db"))
			err := run(context.Background(), nil, env(vars), io2(t), io2(t))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "tickets.db")
			assert.Contains(t, err.Error(), "no replica")
		})
		t.Run(name+", with a replica", func(t *testing.T) {
			if testing.Short() {
				t.Skip("replication drill")
			}
			dir := t.TempDir()
			vars := map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "SESSION_SECRET": secret, "LITESTREAM_REPLICA_URL": "file://" + t.TempDir()}
			seed(t, vars)
			hurt(t, filepath.Join(dir, "tickets.db"))
			base, stop := startRun(t, vars)
			var list []any
			status, err := apptest.NewClient(t, base).Try(http.MethodGet, "/api/tickets?limit=100", nil, &list)
			require.NoError(t, err)
			require.Equal(t, 200, status)
			assert.Len(t, list, 100, "the tickets came back from the replica")
			require.NoError(t, stop())
			aside, err := filepath.Glob(filepath.Join(dir, "tickets.db.damaged-*"))
			require.NoError(t, err)
			assert.NotEmpty(t, aside, "the damaged file is kept beside")
		})
	}
}

// /healthz tells the truth: on a full disk, where writes fail, it answers
// 503 within seconds (so Fly takes the machine out), and 200 again once
// there is room.
func TestHealthIs503WhileWritesFail(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	base, internal, stop := startRunLog(t, map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "SESSION_SECRET": strings.Repeat("h", 32), "SIGNUP_LIMIT": "1000/1s"}, io.Discard)
	defer stop()
	health := func(url string) int {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, health(internal))

	// Fill the disk.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	cl := apptest.NewClient(t, base)
	for i := range 50 { // the WAL grows until it cannot
		cl.Try(http.MethodPost, "/api/users/signup", map[string]string{"email": fmt.Sprintf("u%d@example.com", i), "password": strings.Repeat("p", 60)}, nil)
	}
	require.Eventually(t, func() bool { return health(internal) == 503 && health(base) == 503 }, 5*time.Second, 100*time.Millisecond, "503 while writes fail")

	require.NoError(t, os.Remove(filepath.Join(dir, "filler")))
	require.Eventually(t, func() bool { return health(internal) == 200 && health(base) == 200 }, 5*time.Second, 100*time.Millisecond, "200 once writes work")
	status, err := cl.Try(http.MethodPost, "/api/users/signup", map[string]string{"email": "after@example.com", "password": "password"}, nil)
	require.NoError(t, err)
	assert.Equal(t, 201, status, "and writes work")
}

// `ticketing restore` is the operator's restore: every module back from
// the replica to the latest consistent cut, or to the latest before
// -timestamp, the files that were there kept aside, and what each module
// lost printed. It refuses while the app runs on the same DATA_DIR.
func TestRestoreCommand(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	vars := map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "LITESTREAM_REPLICA_URL": "file://" + t.TempDir(), "SESSION_SECRET": strings.Repeat("r", 32)}
	restore := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(ctx, append([]string{"ticketing", "restore"}, args...), env(vars), &out, io.Discard)
		return out.String(), err
	}

	// Two runs, each stopped cleanly (every file synced): the timestamp
	// falls between them.
	base, _, stop := startRunLog(t, vars, io.Discard)
	seller, buyer := apptest.NewClient(t, base), apptest.NewClient(t, base)
	seller.SignUp(t, "seller@example.com", "password")
	buyer.SignUp(t, "buyer@example.com", "password")
	first, second := seller.Sell(t, "First", 10), seller.Sell(t, "Second", 10)
	buyer.Order(t, first)
	require.NoError(t, stop())
	between := time.Now()
	time.Sleep(10 * time.Millisecond)

	base, internal, stop := startRunLog(t, vars, io.Discard)
	buyer.SetBase(base)
	buyer.Order(t, second)
	waitInSync(t, internal)
	_, err := restore()
	require.ErrorIs(t, err, db.ErrLocked, "no restore under a running app")
	require.NoError(t, stop())

	out, err := restore("-timestamp", between.UTC().Format(time.RFC3339Nano))
	require.NoError(t, err)
	t.Log(out)
	assert.Contains(t, out, "restore: orders.db: restored to transaction")
	assert.Contains(t, out, "lost 1 event: 1 order:created", "the order after the timestamp")
	assert.Contains(t, out, "the file that was there is kept as orders.db.replaced-")
	assert.Equal(t, 1, countOrders(t, dir))

	out, err = restore()
	require.NoError(t, err)
	assert.Contains(t, out, "restore: orders.db: restored to transaction")
	assert.Contains(t, out, "(log ends at 2); lost nothing of its newest copy")
	assert.Equal(t, 2, countOrders(t, dir), "the latest cut has both orders")

	// The restored files serve, and the start after a restore reconciles.
	base, _, stop = startRunLog(t, vars, io.Discard)
	buyer.SetBase(base)
	var list []struct{ ID string }
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodGet, "/api/orders", nil, &list))
	assert.Len(t, list, 2)
	require.NoError(t, stop())
	_, err = os.Stat(filepath.Join(dir, "restored"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the restore marker goes once payments are reconciled")

	_, err = restore("-timestamp", "yesterday")
	assert.ErrorContains(t, err, "-timestamp")
	delete(vars, "LITESTREAM_REPLICA_URL")
	_, err = restore()
	assert.ErrorContains(t, err, "no replica to restore from")
}

// waitIdle waits until every consumer has applied its source's head.
func waitIdle(t *testing.T, internal string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var h struct {
			Consumers []events.ConsumerStatus `json:"consumers"`
		}
		if s, err := apptest.NewClient(t, internal).Try(http.MethodGet, "/healthz", nil, &h); err != nil || s != 200 || len(h.Consumers) == 0 {
			return false
		}
		for _, c := range h.Consumers {
			if c.Lag != 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "consumers idle")
}

func waitInSync(t *testing.T, internal string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var h struct {
			Replication map[string]db.ReplicaStatus `json:"replication"`
		}
		if _, err := apptest.NewClient(t, internal).Try(http.MethodGet, "/healthz", nil, &h); err != nil || len(h.Replication) != len(app.Modules) {
			return false
		}
		for _, st := range h.Replication {
			if !st.InSync || st.Error != "" {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "replicas in sync")
}

func countOrders(t testing.TB, dir string) int {
	t.Helper()
	q, err := db.OpenReadOnly(filepath.Join(dir, "orders.db"))
	require.NoError(t, err)
	defer q.Close()
	var n int
	require.NoError(t, q.QueryRow("SELECT count(*) FROM orders").Scan(&n))
	return n
}

// BenchmarkReplicaSizeWithAttachments: what ticket files add to the
// replica (file://): 1,000 tickets listed, half with a 100 KB PDF
// attached, replicated until in sync; reports the replica's size per
// attached ticket and for a 10,000-ticket shop with every ticket attached.
// go test -run '^$' -bench ReplicaSizeWithAttachments -benchtime 1x .
func BenchmarkReplicaSizeWithAttachments(b *testing.B) {
	for range b.N {
		replica := b.TempDir()
		rep, err := db.NewReplication("file://"+replica, os.Getenv, dbtest.Quiet)
		require.NoError(b, err)
		h := apptest.New(b, apptest.WithConfig(func(c *app.Config) { c.Replication = rep }))
		ctx := context.Background()
		seller, err := h.App.Auth.SignUp(ctx, "seller@example.com", "password", "")
		require.NoError(b, err)
		const n, attached, size = 1000, 500, 100 << 10
		// A PDF's streams are compressed already: its bytes are as good as
		// random, and the replica's compression gains nothing on them.
		file := func(i int) []byte {
			b := make([]byte, size)
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			copy(b, "%PDF-1.4\n")
			return b
		}
		var ids []string
		for i := range n {
			tk, err := h.App.Tickets.Create(ctx, seller.ID, tickets.Listing{Title: fmt.Sprintf("Show %d", i), PriceCents: 1000})
			require.NoError(b, err)
			ids = append(ids, tk.ID)
		}
		require.NoError(b, h.App.Bus.WaitIdle(ctx))
		dirSize := func(name string) int64 {
			var total int64
			_ = filepath.Walk(filepath.Join(replica, name), func(_ string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() {
					total += info.Size()
				}
				return nil
			})
			return total
		}
		waitSynced := func() {
			require.Eventually(b, func() bool {
				for _, st := range rep.Status(ctx) {
					if st.LocalTXID > st.RemoteTXID {
						return false
					}
				}
				return true
			}, time.Minute, 50*time.Millisecond)
		}
		waitSynced()
		before := dirSize("delivery")
		for i, id := range ids[:attached] {
			_, err := h.App.Delivery.Attach(ctx, seller.ID, delivery.Attachment{TicketID: id, Kind: "file", FileName: "ticket.pdf", Data: file(i)})
			require.NoError(b, err)
		}
		waitSynced()
		time.Sleep(2 * time.Second) // the last sync's files written out
		per := float64(dirSize("delivery")-before) / attached
		b.ReportMetric(per/1024, "replica-KiB/attached-ticket")
		b.ReportMetric(per*10_000/(1<<30), "replica-GiB/10k-tickets")
	}
}
