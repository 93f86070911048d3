package tickets_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

func TestSellerDashboard(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	seller := h.Client(t)
	seller.SignUpNamed(t, "jazz.promoter@example.com", "password", "Jazz Promoter")
	buyer := h.Client(t)
	buyer.SignUp(t, "fan@example.com", "password")
	sold, reserved, _ := seller.Sell(t, "Sold one", 40), seller.Sell(t, "Reserved one", 25), seller.Sell(t, "On sale one", 10)
	orderID := buyer.Order(t, sold)
	require.Equal(t, 201, buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": orderID, "token": "tok_visa"}, nil))
	buyer.Order(t, reserved)
	require.NoError(t, h.App.Bus.WaitIdle(t.Context()))

	resp, doc := seller.Get(t, "/sell")
	require.Equal(t, 200, resp.StatusCode)
	stats := doc.Find(".stats").Text()
	assert.Contains(t, stats, "$40.00")
	assert.Contains(t, stats, "Sold1")
	assert.Contains(t, stats, "Reserved1")
	assert.Contains(t, stats, "On sale1")
	assert.Contains(t, doc.Find("#sell-"+sold).Text(), "Sold")
	assert.Regexp(t, `Reserved until \d\d:\d\d UTC`, doc.Find("#sell-"+reserved).Text())
	// Today's bar is the last one and the only one with height.
	bars := doc.Find("svg.chart rect")
	require.Equal(t, 14, bars.Length())
	last, _ := strconv.Atoi(bars.Last().AttrOr("height", "0"))
	first, _ := strconv.Atoi(bars.First().AttrOr("height", "0"))
	assert.Positive(t, last)
	assert.Zero(t, first)
	assert.Contains(t, bars.Last().Find("title").Text(), "1 sold, $40.00")

	// The list names the seller by the name they chose, nothing of their
	// address, and offers Purchase to others.
	_, doc = buyer.Get(t, "/")
	row := doc.Find("#ticket-rows li").First()
	assert.Contains(t, row.Text(), "sold by Jazz Promoter")
	assert.NotContains(t, doc.Text(), "jazz.promoter")
	assert.Equal(t, 1, row.Find(`form[action="/orders"] button`).Length())
	_, doc = seller.Get(t, "/")
	assert.Equal(t, 0, doc.Find(`#ticket-rows form[action="/orders"]`).Length(), "no Purchase on your own tickets")

	// Live: the dashboard is sent again when a ticket of the seller's changes.
	connect, ok := doc.Find("[sse-connect]").Attr("sse-connect")
	require.True(t, ok)
	assert.Equal(t, "/tickets/stream", connect)
	_, doc = seller.Get(t, "/sell")
	connect = doc.Find("[sse-connect]").AttrOr("sse-connect", "")
	require.True(t, strings.HasPrefix(connect, "/sell/stream?v="), connect)
	events := seller.Stream(t, connect, "")
	seller.Sell(t, "Another", 5)
	e := apptest.Next(t, events)
	assert.Equal(t, "dashboard", e.Event)
	assert.Regexp(t, `On sale</p><p class="stat">2`, e.Data)
}
