package apptest

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TicketJSON is the seed's ticket as the API writes it.
type TicketJSON struct {
	ID      string      `json:"id"`
	Title   string      `json:"title"`
	Price   json.Number `json:"price"`
	UserID  string      `json:"userId"`
	Version int64       `json:"version"`
	OrderID *string     `json:"orderId"`
}

// OrderJSON is the seed's order as the API writes it.
type OrderJSON struct {
	ID        string `json:"id"`
	UserID    string `json:"userId"`
	Status    string `json:"status"`
	ExpiresAt string `json:"expiresAt"`
	Version   int64  `json:"version"`
	Ticket    struct {
		ID    string      `json:"id"`
		Title string      `json:"title"`
		Price json.Number `json:"price"`
	} `json:"ticket"`
}

// Reserve reserves ticketID as cl, expecting 201, and returns the order.
func (s *Shop) Reserve(t testing.TB, cl *Client, ticketID string) OrderJSON {
	t.Helper()
	var o OrderJSON
	require.Equal(t, http.StatusCreated, cl.JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": ticketID}, &o))
	return o
}

// SellAndReserve lists a ticket as the seller and reserves it as the
// buyer; it returns the order's id.
func (s *Shop) SellAndReserve(t testing.TB, price float64) string {
	t.Helper()
	return s.Buyer.Order(t, s.Seller.Sell(t, "Concert", price))
}

// Status is the order's status, straight from the orders module.
func (s *Shop) Status(t testing.TB, orderID string) string {
	t.Helper()
	o, err := s.App.Orders.Get(context.Background(), orderID)
	require.NoError(t, err)
	return string(o.Status)
}

// Settle waits until the consumers and the payments worker have nothing
// left to do, then checks every cross-module rule.
func (s *Shop) Settle(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for range 3 {
		require.NoError(t, s.App.Bus.WaitIdle(ctx))
		require.NoError(t, s.App.Payments.WorkOnce(ctx))
	}
	CheckInvariants(t, s.App, time.Now().Add(-time.Second))
	s.CatchUp(t)
}

// PayTooLate has the buyer go to the checkout of order, then the order
// cancelled, then the checkout's payment arrive (through the webhook, as
// the test checkout signs it): a late payment, which is refunded. It
// returns once every module has applied it.
func (s *Shop) PayTooLate(t testing.TB, order string) {
	t.Helper()
	ctx := context.Background()
	resp := s.Buyer.Form(t, "/orders/"+order+"/pay", nil) // to the checkout
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	sess, _, err := s.App.Payments.OpenSession(ctx, order)
	require.NoError(t, err)
	info, err := s.App.Payments.SessionByID(ctx, sess.ID)
	require.NoError(t, err)
	_, err = s.App.Orders.Cancel(ctx, order, s.BuyerUser.ID)
	require.NoError(t, err)
	payload, header := s.App.Webhook.TestEvent(info)
	require.NoError(t, s.App.Webhook.Handle(ctx, payload, header))
	s.Settle(t)
}
