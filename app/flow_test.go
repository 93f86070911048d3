package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/orders"
	"ticketing/app/tickets"
	"ticketing/events"
)

func createTicket(t *testing.T, cl *apptest.Client, title string, price float64) apptest.TicketJSON {
	t.Helper()
	var tk apptest.TicketJSON
	status := cl.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"title": title, "price": price}, &tk)
	require.Equal(t, http.StatusCreated, status)
	return tk
}

func listed(t *testing.T, cl *apptest.Client, id string) bool {
	t.Helper()
	var list []apptest.TicketJSON
	require.Equal(t, http.StatusOK, cl.JSON(t, http.MethodGet, "/api/tickets", nil, &list))
	for _, tk := range list {
		if tk.ID == id {
			return true
		}
	}
	return false
}

func checkInvariants(t *testing.T, h *apptest.Harness) {
	t.Helper()
	require.NoError(t, h.App.Bus.WaitIdle(context.Background()))
	require.NoError(t, orders.CheckInvariants(context.Background(), h.App.DB("orders"), h.App.DB("tickets"), time.Now()))
}

// Read-your-writes across modules: the order request can use the ticket
// created in the request before, and once the order is answered the ticket
// is already gone from the list.
func TestReadYourWritesAcrossModules(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	seller := h.Client(t)
	seller.SignUp(t, "seller@example.com", "password")
	buyer := h.Client(t)
	buyer.SignUp(t, "buyer@example.com", "password")

	for i := range 20 {
		tk := createTicket(t, seller, fmt.Sprintf("Show %d", i), 20)
		var o apptest.OrderJSON
		require.Equal(t, http.StatusCreated, buyer.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": tk.ID}, &o), "order right after create")
		assert.Equal(t, "created", o.Status)
		assert.Equal(t, json.Number("20"), o.Ticket.Price)
		assert.False(t, listed(t, buyer, tk.ID), "a reserved ticket is not listed")

		var got apptest.TicketJSON
		require.Equal(t, http.StatusOK, seller.JSON(t, http.MethodGet, "/api/tickets/"+tk.ID, nil, &got))
		require.NotNil(t, got.OrderID)
		assert.Equal(t, o.ID, *got.OrderID)
		assert.Equal(t, int64(2), got.Version)
	}
	checkInvariants(t, h)
}

// Many buyers at one ticket at the same instant: exactly one wins, through
// the real handler tree, repeated over 20 tickets.
func TestContentionOneWinnerPerTicket(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	seller := h.Client(t)
	seller.SignUp(t, "seller@example.com", "password")

	const buyers, rounds = 50, 20
	clients := make([]*apptest.Client, buyers)
	for i := range clients {
		clients[i] = h.Client(t)
		clients[i].SignUp(t, fmt.Sprintf("buyer%d@example.com", i), "password")
	}

	for round := range rounds {
		tk := createTicket(t, seller, fmt.Sprintf("Hot show %d", round), 99.99)
		start := make(chan struct{})
		statuses := make([]int, buyers)
		orderIDs := make([]string, buyers)
		var wg sync.WaitGroup
		for i, cl := range clients {
			wg.Go(func() {
				<-start
				var o apptest.OrderJSON
				statuses[i] = cl.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": tk.ID}, &o)
				orderIDs[i] = o.ID
			})
		}
		close(start)
		wg.Wait()

		won, winner := 0, ""
		for i, s := range statuses {
			switch s {
			case http.StatusCreated:
				won++
				winner = orderIDs[i]
			case http.StatusBadRequest:
			default:
				t.Fatalf("round %d: buyer %d got %d", round, i, s)
			}
		}
		require.Equal(t, 1, won, "round %d: exactly one reservation", round)

		var got apptest.TicketJSON
		require.Equal(t, http.StatusOK, seller.JSON(t, http.MethodGet, "/api/tickets/"+tk.ID, nil, &got))
		require.NotNil(t, got.OrderID, "round %d: ticket locked", round)
		assert.Equal(t, winner, *got.OrderID, "round %d: locked to the winner's order", round)
	}
	checkInvariants(t, h)
}

// An unpaid order expires and its ticket is listed again; a completed order
// is never cancelled by expiry.
func TestExpiry(t *testing.T) {
	t.Parallel()
	h := apptest.New(t, apptest.WithConfig(func(c *app.Config) {
		c.ReservationTTL = time.Second
		c.SweepInterval = 100 * time.Millisecond
	}))
	seller := h.Client(t)
	seller.SignUp(t, "seller@example.com", "password")
	buyer := h.Client(t)
	buyer.SignUp(t, "buyer@example.com", "password")

	unpaid := createTicket(t, seller, "Unpaid", 10)
	paid := createTicket(t, seller, "Paid", 10)
	var o1, o2 apptest.OrderJSON
	require.Equal(t, http.StatusCreated, buyer.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": unpaid.ID}, &o1))
	require.Equal(t, http.StatusCreated, buyer.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": paid.ID}, &o2))
	require.NoError(t, h.App.Orders.CompleteOrder(context.Background(), o2.ID))

	require.Eventually(t, func() bool {
		var o apptest.OrderJSON
		buyer.JSON(t, http.MethodGet, "/api/orders/"+o1.ID, nil, &o)
		return o.Status == "cancelled" && listed(t, buyer, unpaid.ID)
	}, 10*time.Second, 50*time.Millisecond, "the unpaid order expires and its ticket is back on sale")

	// A sweep past the paid order's deadline too (it passed with the
	// unpaid one's): still complete, still sold.
	ctx := context.Background()
	_, err := h.App.Expiration.SweepOnce(ctx)
	require.NoError(t, err)
	require.NoError(t, h.App.Bus.WaitIdle(ctx))
	var o apptest.OrderJSON
	require.Equal(t, http.StatusOK, buyer.JSON(t, http.MethodGet, "/api/orders/"+o2.ID, nil, &o))
	assert.Equal(t, "complete", o.Status)
	assert.False(t, listed(t, buyer, paid.ID))
	assert.Equal(t, http.StatusBadRequest, buyer.JSON(t, http.MethodDelete, "/api/orders/"+o2.ID, nil, nil), "cannot cancel a completed order")
	checkInvariants(t, h)
}

// Stop with orders past their deadline and events not yet consumed, start
// again on the same files: deadlines are swept, consumers catch up, nothing
// is applied twice.
func TestRestartCatchesUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	cfg := func(c *app.Config) {
		c.ReservationTTL = time.Hour
	}

	// First run: no consumers and no sweeper (as if the process died right
	// after these commits), so every event is still unconsumed.
	a1 := apptest.Open(t, apptest.WithDataDir(dir), apptest.WithConfig(cfg))
	u, err := a1.Auth.SignUp(ctx, "seller@example.com", "password", "The Seller")
	require.NoError(t, err)
	b, err := a1.Auth.SignUp(ctx, "buyer@example.com", "password", "")
	require.NoError(t, err)
	var ticketIDs []string
	for i := range 5 {
		tk, err := a1.Tickets.Create(ctx, u.ID, tickets.Listing{Title: fmt.Sprintf("Show %d", i), PriceCents: 1000})
		require.NoError(t, err)
		ticketIDs = append(ticketIDs, tk.ID)
	}
	// Orders needs its replica of the tickets before it can reserve.
	_, err = a1.Bus.Consumers(a1.DB("orders")).PollOnce(ctx)
	require.NoError(t, err)
	past := time.Now().Add(-2 * time.Hour)
	a1.Orders.Now = func() time.Time { return past } // reserved two hours ago: deadline passed
	var orderIDs []string
	for _, id := range ticketIDs[:3] {
		o, err := a1.Orders.Reserve(ctx, b.ID, id)
		require.NoError(t, err)
		orderIDs = append(orderIDs, o.ID)
	}
	require.NoError(t, a1.Close())

	// Second run on the same files.
	h2 := apptest.New(t, apptest.WithDataDir(dir), apptest.WithConfig(cfg))
	buyer := h2.Client(t)
	require.Eventually(t, func() bool {
		for _, id := range orderIDs {
			o, err := h2.App.Orders.Get(ctx, id)
			if err != nil || o.Status != orders.Cancelled {
				return false
			}
		}
		for _, id := range ticketIDs {
			if !listed(t, buyer, id) {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "expired orders cancelled and every ticket back on sale")

	// Each ticket: created (v1), locked (v2), unlocked (v3) — never more.
	for i, id := range ticketIDs {
		tk, err := h2.App.Tickets.Get(ctx, id)
		require.NoError(t, err)
		want := int64(1)
		if i < 3 {
			want = 3
		}
		assert.Equal(t, want, tk.Version, "ticket %d applied exactly once per event", i)
	}
	// The background consumers (mail) are not waited for by anything a
	// page shows: wait for them here.
	require.NoError(t, h2.App.Bus.WaitIdle(ctx))
	for _, st := range h2.App.Bus.Status(ctx) {
		assert.Zero(t, st.Lag, "%s <- %s caught up", st.Consumer, st.Source)
	}
	checkInvariants(t, h2)
}

// A consumer's transaction that fails after its handler wrote and before it
// committed (a crash at that instant) leaves the same state as a run where
// nothing failed: every consumer, every event, first attempt fails.
func TestCrashBetweenHandlerAndCommit(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, failFirst bool) string {
		var mu sync.Mutex
		failed := map[string]bool{}
		h := apptest.New(t, apptest.WithConfig(func(c *app.Config) {
			c.ReservationTTL = 500 * time.Millisecond
			c.SweepInterval = 20 * time.Millisecond
			if !failFirst {
				return
			}
			c.Events.FailPoint = func(consumer, source string, last events.Event) error {
				mu.Lock()
				defer mu.Unlock()
				k := fmt.Sprintf("%s<-%s@%d", consumer, source, last.Seq)
				if failed[k] {
					return nil
				}
				failed[k] = true
				return fmt.Errorf("crash before commit at %s", k)
			}
		}))
		seller := h.Client(t)
		seller.SignUp(t, "seller@example.com", "password")
		buyer := h.Client(t)
		buyer.SignUp(t, "buyer@example.com", "password")
		var ids []string
		for i := range 6 {
			ids = append(ids, createTicket(t, seller, fmt.Sprintf("Show %d", i), 10).ID)
		}
		var orderIDs []string
		for _, id := range ids[:5] {
			var o apptest.OrderJSON
			require.Equal(t, http.StatusCreated, buyer.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": id}, &o))
			orderIDs = append(orderIDs, o.ID)
		}
		require.Equal(t, http.StatusNoContent, buyer.Do(t, http.MethodDelete, "/api/orders/"+orderIDs[0], nil).StatusCode)
		require.NoError(t, h.App.Orders.CompleteOrder(context.Background(), orderIDs[1]))
		// The rest expire.
		require.Eventually(t, func() bool {
			for _, id := range orderIDs[2:] {
				if o, err := h.App.Orders.Get(context.Background(), id); err != nil || o.Status != orders.Cancelled {
					return false
				}
			}
			return true
		}, 10*time.Second, 10*time.Millisecond)
		checkInvariants(t, h)
		if failFirst {
			mu.Lock()
			assert.NotEmpty(t, failed)
			mu.Unlock()
		}
		return snapshot(t, h, ids, orderIDs)
	}
	clean := run(t, false)
	t.Log(clean)
	assert.Equal(t, clean, run(t, true))
}

// snapshot describes the state of every module in terms that do not depend
// on ids or clocks.
func snapshot(t *testing.T, h *apptest.Harness, ticketIDs, orderIDs []string) string {
	ctx := context.Background()
	var b strings.Builder
	for i, id := range ticketIDs {
		tk, err := h.App.Tickets.Get(ctx, id)
		require.NoError(t, err)
		fmt.Fprintf(&b, "ticket %d: v%d reserved=%v\n", i, tk.Version, tk.Reserved())
	}
	for i, id := range orderIDs {
		o, err := h.App.Orders.Get(ctx, id)
		require.NoError(t, err)
		fmt.Fprintf(&b, "order %d: %s v%d\n", i, o.Status, o.Version)
	}
	for _, name := range []string{"auth", "tickets", "orders", "expiration"} {
		rows, err := h.App.DB(name).Read().Query("SELECT type, count(*) FROM events GROUP BY type ORDER BY type")
		require.NoError(t, err)
		for rows.Next() {
			var typ string
			var n int
			require.NoError(t, rows.Scan(&typ, &n))
			fmt.Fprintf(&b, "%s: %s x%d\n", name, typ, n)
		}
		rows.Close()
	}
	pending, err := h.App.Expiration.Pending(ctx)
	require.NoError(t, err)
	fmt.Fprintf(&b, "deadlines pending: %d\n", pending)
	return b.String()
}
