package apptest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/orders"
	"ticketing/app/payments"
	"ticketing/db"
	"ticketing/events"
)

// CheckInvariants waits until a's consumers are idle, then checks every
// cross-module rule: one live order per ticket, a ticket held exactly by
// its live order, every passed deadline swept (at now), every open order
// with its deadline, every complete order with its payment, and no file
// past another's log.
func CheckInvariants(tb testing.TB, a *app.App, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(tb, a.Bus.WaitIdle(wctx), "consumers catch up")
	CheckFiles(tb, a.DB("orders"), a.DB("tickets"), a.DB("expiration"), a.DB("payments"), now)
	bad, err := events.CheckPositions(ctx, a.DBs...)
	require.NoError(tb, err)
	require.Empty(tb, bad, "no consumer past its source's log")
}

// CheckFiles checks the cross-module rules on the files of a stopped (or
// idle) app.
func CheckFiles(tb testing.TB, ordersDB, ticketsDB, expirationDB, paymentsDB *db.DB, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	require.NoError(tb, orders.CheckInvariants(ctx, ordersDB, ticketsDB, now))
	require.NoError(tb, orders.CheckDeadlines(ctx, ordersDB, expirationDB))
	require.NoError(tb, payments.CheckInvariants(ctx, ordersDB, paymentsDB))
}

// FreshSale runs one whole sale on the server at base, as new users: list,
// reserve (the ticket is locked by the order), pay, complete. After a
// restore it shows that the modules agree again: a consumer that skipped
// the new order's events would leave the ticket unlocked, a lost copy of
// the order would refuse the payment.
func FreshSale(tb testing.TB, base string) {
	tb.Helper()
	stamp := time.Now().UnixNano()
	seller, buyer := NewClient(tb, base), NewClient(tb, base)
	seller.SignUp(tb, fmt.Sprintf("seller-%d@example.com", stamp), "password")
	buyer.SignUp(tb, fmt.Sprintf("buyer-%d@example.com", stamp), "password")
	ticket := seller.Sell(tb, "After the restore", 25)
	order := buyer.Order(tb, ticket)
	require.Eventually(tb, func() bool {
		var tk struct{ OrderID *string }
		s, err := buyer.Try(http.MethodGet, "/api/tickets/"+ticket, nil, &tk)
		return err == nil && s == 200 && tk.OrderID != nil && *tk.OrderID == order
	}, 10*time.Second, 10*time.Millisecond, "the new order locks its ticket")
	var o struct{ Status string }
	require.Equal(tb, http.StatusOK, buyer.JSON(tb, http.MethodGet, "/api/orders/"+order, nil, &o))
	require.Equal(tb, "created", o.Status)
	require.Equal(tb, http.StatusCreated, buyer.JSON(tb, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil), "pay the new order")
	require.Eventually(tb, func() bool {
		s, err := buyer.Try(http.MethodGet, "/api/orders/"+order, nil, &o)
		return err == nil && s == 200 && o.Status == "complete"
	}, 10*time.Second, 10*time.Millisecond, "the new order completes")
}
