package orders

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"ticketing/app/problem"
	"ticketing/app/web"
	"ticketing/events"
)

// Routes registers the JSON API (the seed's /api/orders) and the pages.
// watch are the logs whose commits can change an order page (orders' own,
// and payments', whose refunds the page reports).
func Routes(api, site *echo.Group, s *Store, r *web.Renderer, streams *web.Streams) {
	api.POST("/orders", handleAPIReserve(s), web.RequireUser)
	api.GET("/orders", handleAPIList(s), web.RequireUser)
	api.GET("/orders/:id", handleAPIShow(s), web.RequireUser)
	api.DELETE("/orders/:id", handleAPICancel(s), web.RequireUser)

	site.POST("/orders", handleReserve(s, r), web.RequireUser)
	site.GET("/orders", handleList(s, r), web.RequireUser)
	site.GET("/orders/:id", handleShow(s, r), web.RequireUser)
	site.POST("/orders/:id/cancel", handleCancel(s, r), web.RequireUser)
	site.GET("/orders/:id/stream", handleStream(s, r, streams), web.RequireUser)
}

func handleAPIReserve(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in struct {
			TicketID string `json:"ticketId"`
		}
		if err := web.Bind(c, &in); err != nil {
			return err
		}
		o, err := s.Reserve(c.Request().Context(), web.CurrentUser(c).ID, in.TicketID)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusCreated, o)
	}
}

func handleAPIList(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		list, err := s.ForUser(c.Request().Context(), web.CurrentUser(c).ID)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusOK, list)
	}
}

func handleAPIShow(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		o, err := s.GetForUser(c.Request().Context(), c.Param("id"), web.CurrentUser(c).ID)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusOK, o)
	}
}

func handleAPICancel(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := s.Cancel(c.Request().Context(), c.Param("id"), web.CurrentUser(c).ID); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleReserve is the Purchase button on a ticket's page. Losing the race
// to another buyer is not an error page: back to the ticket, with a note.
func handleReserve(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		ticketID := c.FormValue("ticketId")
		o, err := s.Reserve(c.Request().Context(), web.CurrentUser(c).ID, ticketID)
		if p, ok := problem.As(err); ok && (p.Kind == problem.Conflict || p == errOwnTicket) {
			msg := "Sorry, someone else just reserved this ticket."
			if p == errOwnTicket {
				msg = p.Message + "."
			}
			if err := r.Sessions.FlashRefusal(c, msg); err != nil {
				return err
			}
			return web.Redirect(c, "/tickets/"+ticketID)
		}
		if err != nil {
			return err
		}
		return web.Redirect(c, "/orders/"+o.ID)
	}
}

func handleList(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		list, err := s.ForUser(c.Request().Context(), web.CurrentUser(c).ID)
		if err != nil {
			return err
		}
		return r.Render(c, http.StatusOK, web.View{Page: "orders/list", Title: "My orders", Data: list})
	}
}

// showPage is one order, as of Now.
type showPage struct {
	Order   Order
	Expired bool // deadline passed, not yet swept
	// Paying is set when the buyer is back from checkout (?paid=1) and
	// the payment has not completed the order yet.
	Paying bool
}

func handleShow(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		o, err := s.GetForUser(c.Request().Context(), c.Param("id"), web.CurrentUser(c).ID)
		if p, ok := problem.As(err); ok && p.Kind == problem.Forbidden {
			return errOrderNotFound // a page does not confirm that someone else's order exists
		}
		if err != nil {
			return err
		}
		return r.Render(c, http.StatusOK, web.View{Page: "orders/show", Fragment: "order-status", Title: "Order for " + o.Ticket.Title,
			Data: showPage{Order: o, Expired: o.Expired(s.Now()), Paying: c.QueryParam("paid") != "" && o.Cancellable()}})
	}
}

func handleCancel(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		o, err := s.Cancel(c.Request().Context(), id, web.CurrentUser(c).ID)
		if err == errCannotCancel {
			// A Cancel button from before the payment: back to the order,
			// which says it is paid, with why nothing was cancelled.
			if err := r.Sessions.FlashRefusal(c, "This order is paid, so it can no longer be cancelled."); err != nil {
				return err
			}
			return web.Redirect(c, "/orders/"+id)
		}
		if err != nil {
			return err
		}
		return web.Redirect(c, "/orders/"+o.ID)
	}
}

// handleStream follows one order for its page: whenever its status or
// refund changes, the "order-status" fragment is sent again, so the page
// turns paid, expired or refunded the moment it happens. Every such change
// is an event in this module's own log, so that log is the only one it
// watches. The event id is
// the state shown (StreamKey); the page passes its own as ?v=, and a
// reconnecting browser sends the last one it got.
func handleStream(s *Store, r *web.Renderer, streams *web.Streams) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		_, err := s.GetForUser(ctx, c.Param("id"), web.CurrentUser(c).ID)
		if p, ok := problem.As(err); ok && p.Kind == problem.Forbidden {
			return errOrderNotFound // as the page: not confirming someone else's order exists
		}
		if err != nil {
			return err
		}
		shown := c.Request().Header.Get("Last-Event-ID")
		if shown == "" {
			shown = c.QueryParam("v")
		}
		return streams.Serve(c, []*events.Log{s.log}, func(ctx context.Context, send func(web.Message) error) error {
			o, err := s.Get(ctx, c.Param("id"))
			if err != nil || o.StreamKey() == shown {
				return err
			}
			html, err := r.Fragment(c, "orders/show", "order-status", showPage{Order: o, Expired: o.Expired(s.Now())})
			if err != nil {
				return err
			}
			shown = o.StreamKey()
			return send(web.Message{ID: shown, Event: "status", Data: html})
		})
	}
}
