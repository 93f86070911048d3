package app

import (
	"context"
	"net/http"
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
}

// handleHealth answers 200 when every module file answers a query and no
// consumer is stuck, 503 otherwise, with the details either way.
func handleHealth(a *App) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		h := Health{Status: "ok", Databases: map[string]string{}}
		for _, d := range a.DBs {
			if err := d.Ping(ctx); err != nil {
				h.Databases[d.Name] = "error: " + err.Error()
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
		if r := a.cfg.Replication; r != nil {
			h.Replication = r.Status(ctx)
			for _, st := range h.Replication {
				if st.Error != "" {
					h.Status = "degraded"
				}
			}
		}
		status := http.StatusOK
		if h.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		return c.JSON(status, h)
	}
}
