package payments

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"ticketing/app/problem"
	"ticketing/app/web"
)

// Routes registers the seed's POST /api/payments, the Pay button, Stripe's
// webhook and, in test mode, the built-in checkout page.
func Routes(api, site *echo.Group, s *Store, wh *Webhook, r *web.Renderer, baseURL string) {
	api.POST("/payments", handleAPICharge(s), web.RequireUser)
	site.POST("/orders/:id/pay", handlePay(s, r, baseURL), web.RequireUser)
	site.POST("/webhooks/stripe", handleWebhook(wh))
	if s.gateway.Test() {
		site.GET("/payments/test-checkout/:id", handleTestCheckout(s, r))
		site.POST("/payments/test-checkout/:id/pay", handleTestPay(s, wh, r))
	}
}

// handleAPICharge is the seed's direct charge (Store.Charge).
func handleAPICharge(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in struct {
			OrderID string `json:"orderId"`
			Token   string `json:"token"`
		}
		if err := web.Bind(c, &in); err != nil {
			return err
		}
		fields := map[string]string{}
		if in.OrderID == "" {
			fields["orderId"] = "orderId must be provided"
		}
		if in.Token == "" {
			fields["token"] = "token must be provided"
		}
		if err := problem.Fields(fields); err != nil {
			return err
		}
		p, err := s.charge(c.Request().Context(), web.CurrentUser(c).ID, in.OrderID, in.Token)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusCreated, p)
	}
}

// handlePay is the Pay button: an open Checkout Session for the order, and
// the browser sent there. A boosted htmx form must not follow a redirect to
// another origin, so htmx gets HX-Redirect instead of a 303.
func handlePay(s *Store, r *web.Renderer, baseURL string) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		id := c.Param("id")
		o, err := s.payableOrder(ctx, id, web.CurrentUser(c).ID)
		if p, ok := problem.As(err); ok && p.Kind == problem.Invalid {
			if err := r.Sessions.FlashRefusal(c, p.Message+"."); err != nil {
				return err
			}
			return web.Redirect(c, "/orders/"+id)
		}
		if p, ok := problem.As(err); ok && p.Kind == problem.Forbidden {
			return errOrderNotFound
		}
		if err != nil {
			return err
		}
		sess, err := s.checkout(ctx, o, baseURL+"/orders/"+o.ID+"?paid=1", baseURL+"/orders/"+o.ID)
		if err != nil {
			return err
		}
		if c.Request().Header.Get(web.HeaderHXRequest) == "true" {
			c.Response().Header().Set(web.HeaderHXRedirect, sess.URL)
			return c.NoContent(http.StatusOK)
		}
		return c.Redirect(http.StatusSeeOther, sess.URL)
	}
}

// maxWebhookBytes bounds a webhook body; Stripe's events are far smaller.
const maxWebhookBytes = 512 << 10

// handleWebhook answers Stripe: 200 once the event is applied (or is one
// we do not use), 400 for what a retry cannot mend (a bad signature, a
// malformed event), 5xx for what it can (Stripe then retries). Errors go
// through the one error handler, as JSON.
func handleWebhook(wh *Webhook) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxWebhookBytes))
		if err != nil {
			return problem.New(problem.Invalid, "Request body too large")
		}
		err = wh.Handle(c.Request().Context(), body, c.Request().Header.Get("Stripe-Signature"))
		switch {
		case errors.Is(err, errBadSignature):
			return problem.New(problem.Invalid, "Invalid Stripe signature")
		case errors.Is(err, errMalformed):
			wh.store.logger.Error("signed Stripe event that cannot be applied; answered 400 so Stripe stops retrying", "err", err)
			return problem.New(problem.Invalid, "Malformed event")
		case err != nil:
			return fmt.Errorf("webhook (Stripe will retry): %w", err)
		}
		return c.JSON(http.StatusOK, map[string]bool{"received": true})
	}
}

// userID is the signed-in user's id, "" for a visitor.
func userID(c echo.Context) string {
	if u := web.CurrentUser(c); u != nil {
		return u.ID
	}
	return ""
}

func handleTestCheckout(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		info, err := s.buyersSession(c.Request().Context(), c.Param("id"), userID(c))
		if err != nil {
			return err
		}
		return r.Render(c, http.StatusOK, web.View{Page: "payments/checkout", Title: "Test checkout", Data: info})
	}
}

// handleTestPay is the test checkout's Pay button: the signed event Stripe
// would send, through the same webhook code, then back to the order.
func handleTestPay(s *Store, wh *Webhook, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		info, err := s.buyersSession(ctx, c.Param("id"), userID(c))
		if err != nil {
			return err
		}
		if info.Session.Status != sessionOpen && info.Session.Status != sessionComplete {
			return problem.New(problem.Conflict, "This checkout session has expired; go back to your order")
		}
		payload, header := wh.TestEvent(info)
		if err := wh.Handle(ctx, payload, header); err != nil {
			return err
		}
		// The flash is also what keeps Back from showing the checkout as
		// it was: a changed cookie takes no-store pages out of the
		// browser's back-forward cache.
		if err := r.Sessions.Flash(c, "Payment received."); err != nil {
			return err
		}
		return web.Redirect(c, "/orders/"+info.Order.ID+"?paid=1")
	}
}
