package orders_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/orders"
	"ticketing/app/problem"
	"ticketing/app/web"
	"ticketing/db"
	"ticketing/db/dbtest"
	"ticketing/events"
)

func errs(items ...web.ErrorItem) []web.ErrorItem { return items }

func TestOrdersAPI(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	ticketID := s.Seller.Sell(t, "Concert", 10.5)
	anon := s.Client(t)
	other := s.Client(t)
	other.SignUp(t, "other@example.com", "password")

	// POST /api/orders
	var body web.ErrorBody
	assert.Equal(t, 401, anon.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": ticketID}, nil))
	assert.Equal(t, 400, s.Buyer.JSON(t, http.MethodPost, "/api/orders", map[string]string{}, &body))
	assert.Equal(t, errs(web.ErrorItem{Message: "ticketId must be provided", Field: "ticketId"}), body.Errors)
	assert.Equal(t, 404, s.Buyer.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": db.NewID()}, nil))
	assert.Equal(t, 404, s.Buyer.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": "garbage"}, nil))
	assert.Equal(t, 400, s.Seller.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": ticketID}, nil), "not your own ticket")

	before := time.Now()
	o := s.Reserve(t, s.Buyer, ticketID)
	assert.Equal(t, "created", o.Status)
	assert.Equal(t, s.BuyerUser.ID, o.UserID)
	assert.Equal(t, int64(1), o.Version)
	assert.Equal(t, ticketID, o.Ticket.ID)
	assert.Equal(t, "Concert", o.Ticket.Title)
	assert.Equal(t, "10.5", string(o.Ticket.Price))
	expires, err := time.Parse(time.RFC3339, o.ExpiresAt)
	require.NoError(t, err)
	assert.WithinDuration(t, before.Add(15*time.Minute), expires, 5*time.Second)

	body = web.ErrorBody{}
	assert.Equal(t, 400, other.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": ticketID}, &body))
	assert.Equal(t, errs(web.ErrorItem{Message: "Ticket is already reserved"}), body.Errors)

	// The order keeps the price it was reserved at, even if the replica changes.
	// GET /api/orders
	assert.Equal(t, 401, anon.JSON(t, http.MethodGet, "/api/orders", nil, nil))
	var list []apptest.OrderJSON
	require.Equal(t, 200, s.Buyer.JSON(t, http.MethodGet, "/api/orders", nil, &list))
	require.Len(t, list, 1)
	assert.Equal(t, o.ID, list[0].ID)
	list = nil
	require.Equal(t, 200, other.JSON(t, http.MethodGet, "/api/orders", nil, &list))
	assert.Empty(t, list)

	// GET /api/orders/:id
	assert.Equal(t, 401, anon.JSON(t, http.MethodGet, "/api/orders/"+o.ID, nil, nil))
	assert.Equal(t, 404, s.Buyer.JSON(t, http.MethodGet, "/api/orders/"+db.NewID(), nil, nil))
	body = web.ErrorBody{}
	assert.Equal(t, 401, other.JSON(t, http.MethodGet, "/api/orders/"+o.ID, nil, &body), "not the owner")
	assert.Equal(t, "Not authorized", body.Errors[0].Message)
	var got apptest.OrderJSON
	require.Equal(t, 200, s.Buyer.JSON(t, http.MethodGet, "/api/orders/"+o.ID, nil, &got))
	assert.Equal(t, o, got)

	// DELETE /api/orders/:id
	assert.Equal(t, 401, anon.JSON(t, http.MethodDelete, "/api/orders/"+o.ID, nil, nil))
	assert.Equal(t, 404, s.Buyer.JSON(t, http.MethodDelete, "/api/orders/"+db.NewID(), nil, nil))
	assert.Equal(t, 401, other.JSON(t, http.MethodDelete, "/api/orders/"+o.ID, nil, nil))
	resp := s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+o.ID, nil)
	assert.Equal(t, 204, resp.StatusCode)
	assert.Empty(t, apptest.Body(t, resp))
	require.Equal(t, 200, s.Buyer.JSON(t, http.MethodGet, "/api/orders/"+o.ID, nil, &got))
	assert.Equal(t, "cancelled", got.Status)
	assert.Equal(t, int64(2), got.Version)

	// Cancelled: the ticket is on sale again and someone else can buy it.
	o2 := s.Reserve(t, other, ticketID)
	require.NoError(t, s.App.Orders.CompleteOrder(context.Background(), o2.ID))
	body = web.ErrorBody{}
	assert.Equal(t, 400, other.JSON(t, http.MethodDelete, "/api/orders/"+o2.ID, nil, &body))
	assert.Equal(t, errs(web.ErrorItem{Message: "Cannot cancel a completed order"}), body.Errors)
	assert.Equal(t, 204, s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+o.ID, nil).StatusCode, "cancelling twice is harmless")
}

// The order keeps the price it was reserved at.
func TestPriceSnapshot(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	ticketID := s.Seller.Sell(t, "Concert", 20)
	o := s.Reserve(t, s.Buyer, ticketID)
	require.Equal(t, 204, s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+o.ID, nil).StatusCode)
	require.Equal(t, 200, s.Seller.JSON(t, http.MethodPut, "/api/tickets/"+ticketID, map[string]any{"title": "Concert", "price": 35}, nil))
	o2 := s.Reserve(t, s.Buyer, ticketID)
	assert.Equal(t, "35", string(o2.Ticket.Price))
	var first apptest.OrderJSON
	require.Equal(t, 200, s.Buyer.JSON(t, http.MethodGet, "/api/orders/"+o.ID, nil, &first))
	assert.Equal(t, "20", string(first.Ticket.Price), "the old order keeps its price")
}

// What each action does from each status.
func TestStatusTransitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := apptest.NewShop(t)
	st := s.App.Orders
	ordersDB := s.App.DB("orders")

	setup := func(t *testing.T, status orders.Status) string {
		o := s.Reserve(t, s.Buyer, s.Seller.Sell(t, "Show", 10))
		switch status {
		case orders.Complete:
			require.NoError(t, st.CompleteOrder(ctx, o.ID))
		case orders.Cancelled:
			_, err := st.Cancel(ctx, o.ID, s.BuyerUser.ID)
			require.NoError(t, err)
		case orders.AwaitingPayment:
			// Nothing sets it yet (payments will); put it there directly.
			require.NoError(t, ordersDB.Tx(ctx, func(tx *db.Tx) error {
				_, err := tx.ExecContext(ctx, "UPDATE orders SET status = ? WHERE id = ?", status, o.ID)
				return err
			}))
		}
		return o.ID
	}
	expire := func(id string) error {
		return ordersDB.Tx(ctx, func(tx *db.Tx) error { return orders.Expire(st, ctx, tx, id) })
	}
	cancel := func(id string) error { _, err := st.Cancel(ctx, id, s.BuyerUser.ID); return err }
	complete := func(id string) error { return st.CompleteOrder(ctx, id) }

	tests := []struct {
		from   orders.Status
		action string
		do     func(string) error
		want   orders.Status
		kind   problem.Kind // of the error, Internal meaning none
	}{
		{orders.Created, "cancel", cancel, orders.Cancelled, problem.Internal},
		{orders.Created, "expire", expire, orders.Cancelled, problem.Internal},
		{orders.Created, "complete", complete, orders.Complete, problem.Internal},
		{orders.AwaitingPayment, "cancel", cancel, orders.Cancelled, problem.Internal},
		{orders.AwaitingPayment, "expire", expire, orders.Cancelled, problem.Internal},
		{orders.AwaitingPayment, "complete", complete, orders.Complete, problem.Internal},
		{orders.Complete, "cancel", cancel, orders.Complete, problem.Conflict},
		{orders.Complete, "expire", expire, orders.Complete, problem.Internal},
		{orders.Complete, "complete", complete, orders.Complete, problem.Internal},
		{orders.Cancelled, "cancel", cancel, orders.Cancelled, problem.Internal},
		{orders.Cancelled, "expire", expire, orders.Cancelled, problem.Internal},
		{orders.Cancelled, "complete", complete, orders.Cancelled, problem.Internal}, // a late payment never completes it
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+" "+tt.action, func(t *testing.T) {
			id := setup(t, tt.from)
			err := tt.do(id)
			if tt.kind == problem.Internal {
				require.NoError(t, err)
			} else {
				assert.Equal(t, tt.kind, problem.KindOf(err))
			}
			o, err := st.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, tt.want, o.Status)
		})
	}
	require.NoError(t, s.App.Bus.WaitIdle(ctx))
	require.NoError(t, orders.CheckInvariants(ctx, ordersDB, s.App.DB("tickets"), time.Now()))
}

// Many goroutines reserve one ticket at the same instant, straight through
// the store: the partial unique index lets exactly one through.
func TestReserveRaceAtTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := apptest.NewShop(t)
	for round := range 20 {
		ticketID := s.Seller.Sell(t, fmt.Sprintf("Show %d", round), 10)
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]error, 50)
		for i := range results {
			wg.Go(func() {
				<-start
				_, results[i] = s.App.Orders.Reserve(ctx, fmt.Sprintf("buyer-%d", i), ticketID)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range results {
			if err == nil {
				ok++
				continue
			}
			p, isProblem := problem.As(err)
			require.True(t, isProblem, "%v", err)
			assert.Equal(t, "Ticket is already reserved", p.Message)
		}
		require.Equal(t, 1, ok, "round %d", round)
	}
}

func TestTicketReplicaAppliesVersionsInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	tdb := dbtest.Open(t, dir, "tickets")
	odb := dbtest.Open(t, dir, "orders", orders.Migrations())
	bus := events.NewBus(dbtest.Quiet, events.Options{})
	st := orders.NewStore(odb, bus.Log(odb), time.Minute, nil)
	c := bus.Consumers(odb)
	orders.Subscribe(c, st)
	bus.Log(tdb)
	bus.Log(odb) // its own log
	// The other logs orders consumes.
	for _, source := range []string{"expiration", "payments", "delivery"} {
		d := dbtest.Open(t, dir, source)
		bus.Log(d)
	}

	emit := func(typ string, version int64, title string) {
		require.NoError(t, tdb.Tx(ctx, func(tx *db.Tx) error {
			_, err := bus.Log(tdb).Append(ctx, tx, typ, "t1", version, map[string]any{"id": "t1", "title": title, "price": 500, "userId": "u", "version": version})
			return err
		}))
	}
	title := func() (string, int64) {
		var s string
		var v int64
		require.NoError(t, odb.Read().QueryRow("SELECT title, version FROM tickets WHERE id = 't1'").Scan(&s, &v))
		return s, v
	}

	emit("ticket:created", 1, "one")
	emit("ticket:updated", 2, "two")
	emit("ticket:updated", 2, "two again") // a repeat: ignored
	emit("ticket:updated", 1, "stale")     // older: ignored
	_, err := c.PollOnce(ctx)
	require.NoError(t, err)
	got, v := title()
	assert.Equal(t, "two", got)
	assert.Equal(t, int64(2), v)

	emit("ticket:updated", 4, "four") // a gap: held, never applied over 2
	_, err = c.PollOnce(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gap")
	got, v = title()
	assert.Equal(t, "two", got)
	assert.Equal(t, int64(2), v)
}

func TestPagesPurchaseAndCancelWithoutJavaScript(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	ticketID := s.Seller.Sell(t, "Opera night", 42)

	resp := s.Buyer.Form(t, "/orders", url.Values{"ticketId": {ticketID}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, "/orders/"), loc)

	_, doc := s.Buyer.Get(t, loc)
	assert.Equal(t, "Opera night", strings.TrimSpace(doc.Find("h1").Text()))
	assert.Equal(t, "$42.00", strings.TrimSpace(doc.Find("article .price").First().Text()))
	assert.Contains(t, doc.Find("#order-status").Text(), "Reserved")
	deadline, ok := doc.Find("time[data-countdown]").Attr("datetime")
	require.True(t, ok, "the deadline is in a <time> element")
	_, err := time.Parse(time.RFC3339, deadline)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(doc.Find("#order-status").Text(), "UTC"), "without JS the deadline itself shows, once")
	assert.Equal(t, 1, doc.Find(`form[action="`+loc+`/cancel"]`).Length())

	// Another buyer sees the ticket reserved, without a Purchase button.
	other := s.Client(t)
	other.SignUp(t, "other@example.com", "password")
	_, doc = other.Get(t, "/tickets/"+ticketID)
	assert.Contains(t, doc.Find("article").Text(), "Reserved")
	assert.Equal(t, 0, doc.Find(`form[action="/orders"]`).Length())
	// A stale Purchase button loses politely.
	resp = other.Form(t, "/orders", url.Values{"ticketId": {ticketID}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/tickets/"+ticketID, resp.Header.Get("Location"))
	_, doc = other.Get(t, "/tickets/"+ticketID)
	assert.Contains(t, doc.Find(".form-message").Text(), "someone else just reserved")
	// Nor can they look at the buyer's order.
	assert.Equal(t, 404, other.Do(t, http.MethodGet, loc, nil).StatusCode)

	_, doc = s.Buyer.Get(t, "/orders")
	assert.Contains(t, doc.Find(".ticket-list").Text(), "Opera night")
	assert.Contains(t, doc.Find(".ticket-list").Text(), "Reserved")

	resp = s.Buyer.Form(t, loc+"/cancel", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, doc = s.Buyer.Get(t, loc)
	assert.Contains(t, doc.Find("#order-status").Text(), "cancelled")
	assert.Equal(t, 0, doc.Find(`form[action$="/cancel"]`).Length())
	_, doc = other.Get(t, "/tickets/"+ticketID)
	assert.Equal(t, 1, doc.Find(`form[action="/orders"]`).Length(), "back on sale")
}

// benchShop signs up buyers and lists tickets for the benchmarks.
func benchShop(b *testing.B, buyers, tickets int) (*apptest.Harness, []*apptest.Client, []string) {
	h := apptest.New(b)
	seller := h.Client(b)
	seller.SignUp(b, "seller@example.com", "password")
	clients := make([]*apptest.Client, buyers)
	for i := range clients {
		clients[i] = h.Client(b)
		clients[i].SignUp(b, fmt.Sprintf("b%d@example.com", i), "password")
	}
	ids := make([]string, tickets)
	for i := range ids {
		ids[i] = seller.Sell(b, "Show", 10)
	}
	return h, clients, ids
}

// BenchmarkReserveHTTP: reservations per second through the whole handler
// tree, on distinct tickets, with 1 and 50 concurrent buyers.
func BenchmarkReserveHTTP(b *testing.B) {
	for _, buyers := range []int{1, 50} {
		b.Run(fmt.Sprintf("buyers=%d", buyers), func(b *testing.B) {
			_, clients, ids := benchShop(b, buyers, b.N)
			jobs := make(chan string, len(ids))
			for _, id := range ids {
				jobs <- id
			}
			close(jobs)
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, cl := range clients {
				wg.Go(func() {
					for id := range jobs {
						if s := cl.JSON(b, http.MethodPost, "/api/orders", map[string]string{"ticketId": id}, nil); s != 201 {
							b.Errorf("status %d", s)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
		})
	}
}

// BenchmarkReserveConflict: 50 buyers at one ticket; every attempt after
// the first is a 400.
func BenchmarkReserveConflict(b *testing.B) {
	_, clients, ids := benchShop(b, 50, 1)
	b.ResetTimer()
	var wg sync.WaitGroup
	attempts := make(chan struct{}, b.N)
	for range b.N {
		attempts <- struct{}{}
	}
	close(attempts)
	for _, cl := range clients {
		wg.Go(func() {
			for range attempts {
				cl.JSON(b, http.MethodPost, "/api/orders", map[string]string{"ticketId": ids[0]}, nil)
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "attempts/s")
}

// The order page follows its order: cancelled, expired, paid and refunded
// arrive as a new "order-status" fragment the moment they commit.
func TestOrderStream(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t, apptest.WithConfig(func(c *app.Config) {
		c.ReservationTTL = 2 * time.Second // time to connect before it runs out
		c.SweepInterval = 20 * time.Millisecond
	}))
	cancelled := s.Reserve(t, s.Buyer, s.Seller.Sell(t, "Show A", 10))
	_, doc := s.Buyer.Get(t, "/orders/"+cancelled.ID)
	connect := doc.Find("#order").AttrOr("sse-connect", "")
	require.True(t, strings.HasPrefix(connect, "/orders/"+cancelled.ID+"/stream?v="), connect)

	events := s.Buyer.Stream(t, connect, "")
	require.Equal(t, 204, s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+cancelled.ID, nil).StatusCode)
	e := apptest.Next(t, events)
	assert.Equal(t, "status", e.Event)
	assert.Contains(t, e.Data, "This order is cancelled")

	expiring := s.Reserve(t, s.Buyer, s.Seller.Sell(t, "Show B", 10))
	events = s.Buyer.Stream(t, "/orders/"+expiring.ID+"/stream", "")
	e = apptest.Next(t, events) // no ?v=: the current state first
	assert.Contains(t, e.Data, "reserved for you")
	e = apptest.Next(t, events)
	assert.Contains(t, e.Data, "Your reservation expired")

	// Paid: through the test checkout's pages.
	paid := s.Reserve(t, s.Buyer, s.Seller.Sell(t, "Show C", 10))
	events = s.Buyer.Stream(t, "/orders/"+paid.ID+"/stream", "")
	assert.Contains(t, apptest.Next(t, events).Data, "reserved for you")
	checkout := s.Buyer.Form(t, "/orders/"+paid.ID+"/pay", nil)
	require.Equal(t, http.StatusSeeOther, checkout.StatusCode)
	loc, err := url.Parse(checkout.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, s.Buyer.Form(t, loc.Path+"/pay", nil).StatusCode)
	assert.Contains(t, apptest.Next(t, events).Data, "Paid")

	// Refunded: the payment arrives after the order was cancelled; the
	// open page learns it from the orders log alone.
	late := s.Reserve(t, s.Buyer, s.Seller.Sell(t, "Show D", 10))
	checkout = s.Buyer.Form(t, "/orders/"+late.ID+"/pay", nil)
	require.Equal(t, http.StatusSeeOther, checkout.StatusCode)
	loc, err = url.Parse(checkout.Header.Get("Location"))
	require.NoError(t, err)
	info, err := s.App.Payments.SessionByID(context.Background(), strings.TrimPrefix(loc.Path, "/payments/test-checkout/"))
	require.NoError(t, err)
	events = s.Buyer.Stream(t, "/orders/"+late.ID+"/stream", "")
	assert.Contains(t, apptest.Next(t, events).Data, "reserved for you")
	require.Equal(t, 204, s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+late.ID, nil).StatusCode)
	assert.Contains(t, apptest.Next(t, events).Data, "This order is cancelled")
	payload, header := s.App.Webhook.TestEvent(info)
	require.NoError(t, s.App.Webhook.Handle(context.Background(), payload, header))
	assert.Contains(t, apptest.Next(t, events).Data, "your payment was refunded")
	o, err := s.App.Orders.Get(context.Background(), late.ID)
	require.NoError(t, err)
	assert.True(t, o.Refunded)
	assert.Equal(t, int64(3), o.Version, "created, cancelled, refunded")

	// Someone else's order has no stream.
	other := s.Client(t)
	other.SignUp(t, "other@example.com", "password")
	assert.Equal(t, 404, other.Do(t, http.MethodGet, "/orders/"+expiring.ID+"/stream", nil).StatusCode)
}

// A Cancel button left from before the payment does not end in a bare
// Conflict page: back to the order, which is paid, with why.
func TestStaleCancelOnAPaidOrderExplains(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	order := s.SellAndReserve(t, 20)
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	s.Settle(t)
	resp := s.Buyer.Form(t, "/orders/"+order+"/cancel", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/orders/"+order, resp.Header.Get("Location"))
	_, doc := s.Buyer.Get(t, "/orders/"+order)
	assert.Contains(t, doc.Find(".form-message").Text(), "paid, so it can no longer be cancelled")
	assert.Equal(t, "complete", s.Status(t, order))
}
