package app

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ticketing/app/problem"
)

// metrics is GET /metrics in the Prometheus text format: HTTP requests by
// route, status and duration, and, read when scraped, the business counts
// (events committed by type: order:created is a reservation,
// expiration:complete an expiry, payment:created a payment,
// payment:refunded a refund), consumer lag and handler errors, the last
// sweep, and replication lag.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.HistogramVec
	conflicts *prometheus.CounterVec
}

func newMetrics(a *App) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ticketing_http_request_duration_seconds",
			Help:    "HTTP requests by route, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route", "status"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketing_conflicts_total",
			Help: "Requests refused because they clash with the current state (a ticket already reserved, a completed order), by route.",
		}, []string{"route"}),
	}
	m.registry.MustRegister(m.requests, m.conflicts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&appCollector{a: a})
	return m
}

// middleware times every request under its route pattern, so ids do not
// make a series each. It hands errors to the error handler itself, so the
// status it records is the one the client got.
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			if problem.KindOf(err) == problem.Conflict {
				m.conflicts.WithLabelValues(c.Path()).Inc()
			}
			c.Error(err)
		}
		m.requests.WithLabelValues(methodLabel(c.Request().Method), routeLabel(c), strconv.Itoa(c.Response().Status)).Observe(time.Since(start).Seconds())
		return nil
	}
}

// methodLabel is the method, or "other" for one HTTP does not define: a
// client can send any token as its method, and each would be a series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// routeLabel is the matched route's pattern, so ids do not make a series
// each; anything no route of ours matched (Echo's 404 and 405 routes,
// the /api catch-all) is "unmatched".
func routeLabel(c echo.Context) string {
	switch p := c.Path(); p {
	case "", "/*", "/api/*":
		return "unmatched"
	default:
		return p
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

var (
	descEvents      = prometheus.NewDesc("ticketing_events_total", "Events committed by this process, by module log and type.", []string{"source", "type"}, nil)
	descLag         = prometheus.NewDesc("ticketing_consumer_lag", "Events a consumer has yet to apply.", []string{"consumer", "source"}, nil)
	descErrors      = prometheus.NewDesc("ticketing_consumer_errors_total", "Failed handler attempts.", []string{"consumer", "source"}, nil)
	descStuck       = prometheus.NewDesc("ticketing_consumer_stuck", "1 while a consumer is stuck on one event.", []string{"consumer", "source"}, nil)
	descApplyP99    = prometheus.NewDesc("ticketing_consumer_apply_p99_seconds", "Append-to-apply time of recent events, 99th percentile.", []string{"consumer", "source"}, nil)
	descSweep       = prometheus.NewDesc("ticketing_sweep_duration_seconds", "Duration of the last expiration sweep.", nil, nil)
	descSwept       = prometheus.NewDesc("ticketing_sweep_last_expired", "Reservations the last sweep expired.", nil, nil)
	descReplication = prometheus.NewDesc("ticketing_replication_lag_txids", "Transactions written locally and not yet in the replica, by file.", []string{"file"}, nil)
	descMailPending = prometheus.NewDesc("ticketing_mail_pending", "Messages waiting to be sent.", nil, nil)
	descMailOldest  = prometheus.NewDesc("ticketing_mail_oldest_pending_seconds", "How long the oldest message waiting to be sent has waited.", nil, nil)
)

// appCollector reads the app's state when Prometheus scrapes.
type appCollector struct{ a *App }

func (c *appCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvents, descLag, descErrors, descStuck, descApplyP99, descSweep, descSwept, descReplication, descMailPending, descMailOldest} {
		ch <- d
	}
}

func (c *appCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, l := range c.a.Bus.Logs() {
		for typ, n := range l.Counts() {
			ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(n), l.Name(), typ)
		}
	}
	for _, s := range c.a.Bus.Status(ctx) {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(s.Lag), s.Consumer, s.Source)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(s.Errors), s.Consumer, s.Source)
		stuck := 0.0
		if s.Stuck {
			stuck = 1
		}
		ch <- prometheus.MustNewConstMetric(descStuck, prometheus.GaugeValue, stuck, s.Consumer, s.Source)
		ch <- prometheus.MustNewConstMetric(descApplyP99, prometheus.GaugeValue, s.ApplyP99Ms/1000, s.Consumer, s.Source)
	}
	if c.a.Sweeper != nil {
		took, n, _ := c.a.Sweeper.Last()
		ch <- prometheus.MustNewConstMetric(descSweep, prometheus.GaugeValue, took.Seconds())
		ch <- prometheus.MustNewConstMetric(descSwept, prometheus.GaugeValue, float64(n))
	}
	if n, age, err := c.a.Mail.Pending(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descMailPending, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(descMailOldest, prometheus.GaugeValue, age.Seconds())
	}
	if r := c.a.cfg.Replication; r != nil {
		for file, st := range r.Status(ctx) {
			lag := 0.0
			if st.LocalTXID > st.RemoteTXID {
				lag = float64(st.LocalTXID - st.RemoteTXID)
			}
			ch <- prometheus.MustNewConstMetric(descReplication, prometheus.GaugeValue, lag, file)
		}
	}
}
