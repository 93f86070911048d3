package app

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"ticketing/db"
	"ticketing/events"
)

// Health is the body of GET /healthz.
type Health struct {
	Status    string                  `json:"status"` // "ok" or "degraded"
	Databases map[string]string       `json:"databases"`
	Consumers []events.ConsumerStatus `json:"consumers"`
	// Replication is each file's replica state; absent when replication
	// is off.
	Replication map[string]db.ReplicaStatus `json:"replication,omitempty"`
	// Cluster is this node's place in a LiteFS cluster; absent on one
	// machine.
	Cluster *ClusterHealth `json:"cluster,omitempty"`
	// Mail is the outbox: messages waiting for SMTP, and how long the
	// oldest has waited (an SMTP outage shows here; purchases go on).
	Mail MailHealth `json:"mail"`
}

// ClusterHealth is a LiteFS node's role and how far each file has come.
type ClusterHealth struct {
	Role      string            `json:"role"`              // "primary" or "replica"
	Primary   string            `json:"primary,omitempty"` // the primary's lease hostname, on a replica
	Positions map[string]uint64 `json:"positions"`         // each file's LiteFS TXID here
}

// MailHealth is the outbox's state.
type MailHealth struct {
	Pending          int     `json:"pending"`
	OldestAgeSeconds float64 `json:"oldestAgeSeconds"`
	Error            string  `json:"error,omitempty"`
}

// handlePublicHealth is the internet's /healthz: 200 {"status":"ok"} when
// healthy, 503 {"status":"degraded"} otherwise, and nothing more: the
// details (files, consumer positions, replication) are for the operator,
// on the internal address.
func handlePublicHealth(a *App) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := a.health(c.Request().Context())
		return c.JSON(h.code(), struct {
			Status string `json:"status"`
		}{h.Status})
	}
}

// handleHealth is the internal /healthz: the same status, with the details.
func handleHealth(a *App) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := a.health(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(h.code())
		_ = json.NewEncoder(w).Encode(h)
	}
}

func (h Health) code() int {
	if h.Status != "ok" {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// healthTTL is how long one check answers every /healthz: the check
// writes to every file, and the public endpoint must not let anyone turn
// requests into writes.
const healthTTL = time.Second

// healthCache is the last check, shared by the requests within healthTTL.
type healthCache struct {
	mu   sync.Mutex
	at   time.Time
	last Health
}

// health returns the last check if it is fresh, else checks (one caller at
// a time; the others wait for its answer).
func (a *App) health(ctx context.Context) Health {
	a.healthCache.mu.Lock()
	defer a.healthCache.mu.Unlock()
	if time.Since(a.healthCache.at) < healthTTL {
		return a.healthCache.last
	}
	// Its answer is shared: one caller going away must not cut it short.
	a.healthCache.last, a.healthCache.at = a.check(context.WithoutCancel(ctx)), time.Now()
	return a.healthCache.last
}

// check answers "ok" when every module file answers a query and takes a
// write, no consumer is stuck and replication has no error; "degraded"
// otherwise.
func (a *App) check(ctx context.Context) Health {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h := Health{Status: "ok", Databases: map[string]string{}}
	replica := false
	if n := a.Node; n != nil {
		leading, host, _ := n.Role()
		h.Cluster = &ClusterHealth{Role: "primary", Primary: host, Positions: n.Current()}
		if replica = !leading; replica {
			h.Cluster.Role = "replica"
		}
	}
	for _, d := range a.DBs {
		if err := d.Ping(ctx); err != nil {
			h.Databases[d.Name] = "error: " + err.Error()
			h.Status = "degraded"
			continue
		}
		// A file that answers reads may still refuse writes (a full or
		// read-only disk): the shop is down for buyers then. A replica's
		// files are written only by the primary.
		if replica {
			h.Databases[d.Name] = "ok (replica)"
			continue
		}
		if err := d.ProbeWrite(ctx); err != nil {
			h.Databases[d.Name] = "writes fail: " + err.Error()
			h.Status = "degraded"
			continue
		}
		h.Databases[d.Name] = "ok"
	}
	h.Consumers = append([]events.ConsumerStatus{}, a.Bus.Status(ctx)...)
	for _, s := range h.Consumers {
		if s.Stuck {
			h.Status = "degraded"
		}
	}
	if n, age, err := a.Mail.Pending(ctx); err != nil {
		h.Mail.Error = err.Error()
	} else {
		h.Mail.Pending, h.Mail.OldestAgeSeconds = n, age.Seconds()
	}
	if r := a.cfg.Replication; r != nil {
		h.Replication = r.Status(ctx)
		for _, st := range h.Replication {
			if st.Error != "" {
				h.Status = "degraded"
			}
		}
	}
	return h
}
