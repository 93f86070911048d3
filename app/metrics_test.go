package app_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	seller := h.Client(t)
	seller.SignUp(t, "seller@example.com", "password")
	buyers := []*apptest.Client{h.Client(t), h.Client(t)}
	buyers[0].SignUp(t, "a@example.com", "password")
	buyers[1].SignUp(t, "b@example.com", "password")
	tk := createTicket(t, seller, "Show", 10)
	require.Equal(t, 201, buyers[0].JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": tk.ID}, nil))
	require.Equal(t, 400, buyers[1].JSON(t, http.MethodPost, "/api/orders", map[string]string{"ticketId": tk.ID}, nil))

	resp := h.Client(t).Do(t, http.MethodGet, "/metrics", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "not on the public address")
	resp.Body.Close()
	resp = apptest.NewClient(t, h.Internal).Do(t, http.MethodGet, "/metrics", nil)
	body := apptest.Body(t, resp)
	require.Equal(t, 200, resp.StatusCode)
	for _, want := range []string{
		`ticketing_http_request_duration_seconds_count{method="POST",route="/api/orders",status="201"} 1`,
		`ticketing_http_request_duration_seconds_count{method="POST",route="/api/orders",status="400"} 1`,
		`ticketing_conflicts_total{route="/api/orders"} 1`,
		`ticketing_events_total{source="orders",type="order:created"} 1`,
		`ticketing_events_total{source="auth",type="user:created"} 3`,
		`ticketing_consumer_lag{consumer="tickets",source="orders"} 0`,
		`ticketing_consumer_errors_total{consumer="tickets",source="orders"} 0`,
		`ticketing_sweep_duration_seconds`,
		`ticketing_mail_pending 0`,
		`ticketing_mail_oldest_pending_seconds 0`,
		`go_goroutines`,
	} {
		assert.Contains(t, body, want)
	}
}

// Clients cannot add series: made-up methods and unmatched paths fall into
// one bounded label each, so /metrics stays the same size.
func TestMetricsLabelsAreBounded(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	series := func() int {
		body := apptest.Body(t, apptest.NewClient(t, h.Internal).Do(t, http.MethodGet, "/metrics", nil))
		return strings.Count(body, "ticketing_http_request_duration_seconds_count{")
	}
	junk := func(i int) {
		req, err := http.NewRequest(fmt.Sprintf("JUNK%d", i), h.URL+fmt.Sprintf("/no/such/%d", i), nil)
		require.NoError(t, err)
		h.Client(t).Request(t, req).Body.Close()
		req, err = http.NewRequest(http.MethodGet, h.URL+fmt.Sprintf("/api/nothing-%d", i), nil)
		require.NoError(t, err)
		h.Client(t).Request(t, req).Body.Close()
		req, err = http.NewRequest(fmt.Sprintf("M%d", i), h.URL+"/api/tickets", nil)
		require.NoError(t, err)
		h.Client(t).Request(t, req).Body.Close()
	}
	junk(0) // the bounded labels exist from here on
	before := series()
	for i := 1; i <= 1000; i++ {
		junk(i)
	}
	assert.Equal(t, before, series())
}

// A failing request is logged once, with the status the client got.
func TestFailingRequestIsLoggedWithItsStatus(t *testing.T) {
	t.Parallel()
	var logs apptest.LogBuffer
	h := apptest.New(t, apptest.WithConfig(func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }))
	cl := h.Client(t)
	require.Equal(t, 401, cl.JSON(t, http.MethodGet, "/api/orders", nil, nil))
	require.Equal(t, 404, cl.JSON(t, http.MethodGet, "/api/tickets/nope", nil, nil))
	out := logs.String()
	assert.Equal(t, 1, strings.Count(out, `uri=/api/orders status=401`), out)
	assert.Equal(t, 1, strings.Count(out, `uri=/api/tickets/nope status=404`), out)
}
