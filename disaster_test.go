package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

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

// TestDisasterDrill is the operator's worst day, over and over: buyers
// reserve, pay and cancel; the machine dies (SIGKILL) at a random moment
// mid-burst and its volume with it; a new one starts on an empty DATA_DIR
// and the same replica. After every restore the modules agree (every
// cross-module rule holds, no consumer is past its source's log) and a new
// sale goes through. It logs how old the oldest acknowledged write that was
// lost is (the loss window). -drill.long runs 20 rounds per replica kind.
func TestDisasterDrill(t *testing.T) {
	for kind, replica := range replicaURLs(t) {
		t.Run(kind, func(t *testing.T) {
			rounds := map[string]int{"file": 3, "s3": 2}[kind]
			if *drillLong {
				rounds = 20
			}
			env := []string{"LITESTREAM_REPLICA_URL=" + replica}
			if v := os.Getenv("DRILL_SYNC_INTERVAL"); v != "" {
				env = append(env, "LITESTREAM_SYNC_INTERVAL="+v)
			}
			dir := t.TempDir()
			srv := start(t, dir, env...)
			seller := signUp(t, srv, "seller@example.com")
			buyers := make([]*apptest.Client, 4)
			for i := range buyers {
				buyers[i] = signUp(t, srv, fmt.Sprintf("b%d@example.com", i))
			}
			waitInSync(t, srv.Internal) // the users, before anything is at risk
			var windows []time.Duration
			lostWrites := 0
			for round := range rounds {
				l := newLedger()
				stop := make(chan struct{})
				wg := load(seller, buyers, l, stop, true)
				// Longer than the loss window, so the window is not cut short
				// by the burst's start.
				time.Sleep(2500*time.Millisecond + time.Duration(rand.Int64N(int64(2*time.Second))))
				killed := time.Now()
				srv.kill(t)
				close(stop)
				wg.Wait()
				require.NoError(t, os.RemoveAll(dir), "the volume is gone")

				srv = start(t, dir, env...)
				for _, c := range append(buyers, seller) {
					c.SetBase(srv.URL)
				}
				srv.idle(t)
				checkRunningFiles(t, dir)

				// What was acknowledged and is not there.
				var oldest time.Time
				lost := 0
				for order, r := range l.reserved {
					at := r.at
					var o struct{ Status string }
					s, err := buyerOf(t, buyers, order).Try(http.MethodGet, "/api/orders/"+order, nil, &o)
					require.NoError(t, err)
					paidAt, paid := l.paid[order]
					if s == http.StatusNotFound {
						lost++
					} else if paid && o.Status != "complete" {
						lost++
						at = paidAt
					} else {
						continue
					}
					if oldest.IsZero() || at.Before(oldest) {
						oldest = at
					}
				}
				window := time.Duration(0)
				if !oldest.IsZero() {
					window = killed.Sub(oldest)
				}
				windows = append(windows, window)
				lostWrites += lost
				t.Logf("round %d: %d reservations and %d payments acknowledged; %d lost, the oldest %v before the kill",
					round, len(l.reserved), len(l.paid), lost, window.Round(time.Millisecond))

				apptest.FreshSale(t, srv.URL)
				srv.idle(t)
				checkRunningFiles(t, dir)
			}
			slices.Sort(windows)
			t.Logf("loss window over %d kills: p50 %v, p99 %v, max %v; %d acknowledged writes lost in all",
				len(windows), windows[len(windows)/2].Round(time.Millisecond), windows[(len(windows)*99)/100].Round(time.Millisecond),
				windows[len(windows)-1].Round(time.Millisecond), lostWrites)
			srv.stop(t)
		})
	}
}

// buyerOf returns the buyer whose order it is (each buyer sees only its
// own): the one that gets 200, or the first if none does.
func buyerOf(t *testing.T, buyers []*apptest.Client, order string) *apptest.Client {
	for _, b := range buyers {
		if s, err := b.Try(http.MethodGet, "/api/orders/"+order, nil, nil); err == nil && s == 200 {
			return b
		}
	}
	return buyers[0]
}

// checkRunningFiles checks every cross-module rule on the files of an idle
// server: one live order per ticket, each ticket held by its live order,
// every open order with its deadline, every complete order with its
// payment, and no file past another's log.
func checkRunningFiles(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	open := func(name string, m db.Migrations) *db.DB { return dbtest.Open(t, dir, name, m) }
	od, td := open("orders", orders.Migrations()), open("tickets", tickets.Migrations())
	ed, pd := open("expiration", expiration.Migrations()), open("payments", payments.Migrations())
	apptest.CheckFiles(t, od, td, ed, pd, time.Now().Add(-time.Minute))
	bad, err := events.CheckPositions(ctx, od, td, ed, pd)
	require.NoError(t, err)
	require.Empty(t, bad)
	for _, d := range []*db.DB{od, td, ed, pd} {
		d.Close()
	}
}
