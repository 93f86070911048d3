package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
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

// acks is what clients saw acknowledged, and when.
type acks struct {
	mu       sync.Mutex
	reserved map[string]time.Time // order → when its reservation was acknowledged
	paid     map[string]time.Time // order → when its payment was
}

func (a *acks) add(m map[string]time.Time, order string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m[order] = time.Now()
}

// burst runs buyers that list, reserve, pay or cancel until stop closes.
func burst(seller *apptest.Client, buyers []*apptest.Client, a *acks, stop <-chan struct{}) *sync.WaitGroup {
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
				a.add(a.reserved, o.ID)
				switch rng.IntN(3) {
				case 0:
					if s, err := b.Try(http.MethodPost, "/api/payments", map[string]string{"orderId": o.ID, "token": "tok_visa"}, nil); err == nil && s == 201 {
						a.add(a.paid, o.ID)
					}
				case 1:
					b.Try(http.MethodDelete, "/api/orders/"+o.ID, nil, nil)
				}
			}
		})
	}
	return &wg
}

// waitReplicated waits until every file's replica has the file's latest
// transaction.
func waitReplicated(t *testing.T, s *server) {
	t.Helper()
	require.Eventually(t, func() bool {
		var h struct {
			Replication map[string]db.ReplicaStatus `json:"replication"`
		}
		if _, err := apptest.NewClient(t, s.Internal).Try(http.MethodGet, "/healthz", nil, &h); err != nil || len(h.Replication) != 5 {
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
			waitReplicated(t, srv) // the users, before anything is at risk
			var windows []time.Duration
			lostWrites := 0
			for round := range rounds {
				a := &acks{reserved: map[string]time.Time{}, paid: map[string]time.Time{}}
				stop := make(chan struct{})
				wg := burst(seller, buyers, a, stop)
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
				for order, at := range a.reserved {
					var o struct{ Status string }
					s, err := buyerOf(t, buyers, order).Try(http.MethodGet, "/api/orders/"+order, nil, &o)
					require.NoError(t, err)
					_, paid := a.paid[order]
					if s == http.StatusNotFound {
						lost++
					} else if paid && o.Status != "complete" {
						lost++
						at = a.paid[order]
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
					round, len(a.reserved), len(a.paid), lost, window.Round(time.Millisecond))

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
