package tickets

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ticketing/app/web"
	"ticketing/events"
)

// dashboard is the seller's view of their tickets: each one's state,
// revenue, and sales per day.
type dashboard struct {
	Tickets  []Ticket
	OnSale   int
	Reserved int
	Sold     int
	Revenue  int64 // cents
	Chart    chart
	Key      string // the state shown, for the live stream
}

// chart is a bar chart of sales per day, laid out for an SVG: the last
// chartDays days, today rightmost.
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int64 // cents, the tallest bar
}

// bar is one day.
type bar struct {
	X, Y, W, H int
	Day        string // "24 Nov"
	Cents      int64
	Count      int
}

const (
	chartDays   = 14
	chartWidth  = 900
	chartHeight = 150
	chartLabels = 20 // room under the bars for day labels
)

// dashboard builds the seller's dashboard as of now.
func (s *Store) dashboard(ctx context.Context, userID string, now time.Time) (dashboard, error) {
	ts, err := s.ForSeller(ctx, userID)
	if err != nil {
		return dashboard{}, err
	}
	d := dashboard{Tickets: ts}
	var versions int64
	perDay := make([]bar, chartDays)
	today := now.UTC().Truncate(24 * time.Hour)
	for i := range perDay {
		perDay[i].Day = today.AddDate(0, 0, i-chartDays+1).Format("2 Jan")
	}
	for _, t := range ts {
		versions += t.Version
		switch {
		case t.Sold():
			d.Sold++
			d.Revenue += t.PriceCents
			if i := chartDays - 1 - int(today.Sub(t.SoldAt.UTC().Truncate(24*time.Hour))/(24*time.Hour)); i >= 0 && i < chartDays {
				perDay[i].Cents += t.PriceCents
				perDay[i].Count++
			}
		case t.Reserved():
			d.Reserved++
		default:
			d.OnSale++
		}
	}
	d.Chart = layout(perDay)
	d.Key = fmt.Sprintf("%d-%d", len(ts), versions)
	return d, nil
}

// layout places the bars: equal widths, heights proportional to revenue.
func layout(days []bar) chart {
	c := chart{Width: chartWidth, Height: chartHeight + chartLabels}
	for _, b := range days {
		c.Max = max(c.Max, b.Cents)
	}
	slot := chartWidth / len(days)
	for i, b := range days {
		b.W = slot - 6
		b.X = i*slot + 3
		if c.Max > 0 {
			b.H = int(b.Cents * int64(chartHeight-4) / c.Max)
		}
		if b.Cents > 0 && b.H < 2 {
			b.H = 2
		}
		b.Y = chartHeight - b.H
		c.Bars = append(c.Bars, b)
	}
	return c
}

func handleDashboard(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		d, err := s.dashboard(c.Request().Context(), web.CurrentUser(c).ID, s.Now())
		if err != nil {
			return err
		}
		return r.Render(c, http.StatusOK, web.View{Page: "tickets/sell", Fragment: "dashboard", Title: "Your tickets", Data: d})
	}
}

// handleDashboardStream resends the dashboard whenever one of the
// seller's tickets changes (listed, reserved, released, sold).
func handleDashboardStream(s *Store, r *web.Renderer, streams *web.Streams) echo.HandlerFunc {
	return func(c echo.Context) error {
		user := web.CurrentUser(c).ID
		shown := c.Request().Header.Get("Last-Event-ID")
		if shown == "" {
			shown = c.QueryParam("v")
		}
		return streams.Serve(c, []*events.Log{s.log}, func(ctx context.Context, send func(web.Message) error) error {
			d, err := s.dashboard(ctx, user, s.Now())
			if err != nil || d.Key == shown {
				return err
			}
			html, err := r.Fragment(c, "tickets/sell", "dashboard", d)
			if err != nil {
				return err
			}
			shown = d.Key
			return send(web.Message{ID: shown, Event: "dashboard", Data: html})
		})
	}
}
