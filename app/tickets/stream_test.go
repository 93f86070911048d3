package tickets_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

// The ticket list's live stream: a new ticket arrives as a row to put on
// top, a reserved one as a row to delete, and a browser that reconnects
// with Last-Event-ID gets what it missed.
func TestTicketStream(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	seller := h.Client(t)
	seller.SignUp(t, "seller@example.com", "password")
	buyer := h.Client(t)
	buyer.SignUp(t, "buyer@example.com", "password")

	_, doc := buyer.Get(t, "/")
	assert.Equal(t, "/tickets/stream", doc.Find("#ticket-list").AttrOr("sse-connect", ""), "the first page is live")
	_, doc = buyer.Get(t, "/?q=jazz")
	assert.Empty(t, doc.Find("#ticket-list").AttrOr("sse-connect", ""), "a search is not")

	older := seller.Sell(t, "An older show", 20)
	events := buyer.Stream(t, "/tickets/stream", "")
	live := seller.Sell(t, "Live show", 12)
	e := apptest.Next(t, events)
	assert.Equal(t, "tickets", e.Event)
	assert.Contains(t, e.Data, `hx-swap-oob="beforebegin:#ticket-`+older+`"`, "on top: before the newest there was")
	assert.Contains(t, e.Data, `id="ticket-`+live+`"`)
	assert.Contains(t, e.Data, "Live show")
	assert.Contains(t, e.Data, "$12.00")
	assert.NotContains(t, e.Data, `hx-swap-oob="delete"`, "a new ticket has no row on the page to remove")
	created := e.ID

	// An edit replaces the row where it is.
	require.Equal(t, 200, seller.JSON(t, http.MethodPut, "/api/tickets/"+live, map[string]any{"title": "Live show, new date", "price": 15}, nil))
	e = apptest.Next(t, events)
	assert.Contains(t, e.Data, `<li id="ticket-`+live+`" hx-swap-oob="delete"></li>`)
	assert.Contains(t, e.Data, `hx-swap-oob="beforebegin:#ticket-`+older+`"`)
	assert.Contains(t, e.Data, "Live show, new date")
	edited := e.ID

	orderID := buyer.Order(t, live)
	e = apptest.Next(t, events)
	assert.Contains(t, e.Data, `<li id="ticket-`+live+`" hx-swap-oob="delete"></li>`)
	assert.NotContains(t, e.Data, "beforebegin", "a reserved ticket is only removed")

	// Released, it goes back to its place: before the next older ticket.
	require.Equal(t, 204, buyer.Do(t, http.MethodDelete, "/api/orders/"+orderID, nil).StatusCode)
	e = apptest.Next(t, events)
	assert.Contains(t, e.Data, `hx-swap-oob="beforebegin:#ticket-`+older+`"`)
	assert.Contains(t, e.Data, "Live show, new date")
	assert.NotContains(t, e.Data, `hx-swap-oob="delete"`, "its row was gone")

	// Reconnecting after the first event replays the rest, in order.
	replay := buyer.Stream(t, "/tickets/stream", created)
	e = apptest.Next(t, replay)
	assert.Equal(t, edited, e.ID)
	e = apptest.Next(t, replay)
	assert.Contains(t, e.Data, `hx-swap-oob="delete"`)

	// The oldest ticket, released, goes back at the end.
	cancelOrder := buyer.Order(t, older)
	e = apptest.Next(t, events)
	assert.Contains(t, e.Data, `<li id="ticket-`+older+`" hx-swap-oob="delete"></li>`)
	require.Equal(t, 204, buyer.Do(t, http.MethodDelete, "/api/orders/"+cancelOrder, nil).StatusCode)
	e = apptest.Next(t, events)
	assert.Contains(t, e.Data, `hx-swap-oob="beforeend:#ticket-rows"`)
	assert.Contains(t, e.Data, "An older show")
}

// The stream sends only swaps whose targets the page holds: with more
// tickets on sale than the first page shows, changes to the oldest (on a
// later page) are no news, nor is a sale after the reservation that took
// the row away.
func TestTicketStreamSendsOnlyWhatThePageHolds(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	oldest := s.Seller.Sell(t, "On a later page", 10)
	var newest string
	for i := range 50 {
		newest = s.Seller.Sell(t, fmt.Sprintf("Show %d", i), 20)
	}
	events := s.Buyer.Stream(t, "/tickets/stream", "")

	require.Equal(t, 200, s.Seller.JSON(t, http.MethodPut, "/api/tickets/"+oldest, map[string]any{"title": "Still on a later page", "price": 11}, nil))
	cancel := s.Buyer.Order(t, oldest)
	require.Equal(t, 204, s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+cancel, nil).StatusCode)
	order := s.Buyer.Order(t, newest)
	e := apptest.Next(t, events)
	assert.Equal(t, `<li id="ticket-`+newest+`" hx-swap-oob="delete"></li>`, strings.TrimSpace(e.Data), "the first news is the newest ticket reserved")
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	s.Settle(t) // sold: the row is gone already
	listed := s.Seller.Sell(t, "Listed last", 30)
	e = apptest.Next(t, events)
	assert.Contains(t, e.Data, `id="ticket-`+listed+`"`, "the sale sent nothing")
}

// Closing the streams (what shutdown does) ends open streams at once.
func TestStreamsEndOnShutdown(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	events := h.Client(t).Stream(t, "/tickets/stream", "")
	h.CloseStreams()
	select {
	case _, ok := <-events:
		assert.False(t, ok, "no event, the stream just ends")
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Close")
	}
}
