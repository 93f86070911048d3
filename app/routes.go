package app

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"ticketing/app/auth"
	"ticketing/app/delivery"
	"ticketing/app/mail"
	"ticketing/app/orders"
	"ticketing/app/payments"
	"ticketing/app/tickets"
	"ticketing/app/web"
	"ticketing/static"
)

// internalRoutes is what only the operator reaches (METRICS_ADDR, not the
// internet): the Prometheus metrics and the detailed health.
func internalRoutes(a *App) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.handler())
	mux.Handle("GET /healthz", handleHealth(a))
	return mux
}

// routes is the whole HTTP surface on one screen: operations, static files,
// then each module's JSON API (under /api) and pages.
func routes(e *echo.Echo, a *App) {
	e.GET("/healthz", handlePublicHealth(a))
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", static.Handler())))
	// Browsers and bots ask for /favicon.ico whatever the page says.
	e.GET("/favicon.ico", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg") })

	api := e.Group("/api", web.RequireJSON)
	site := e.Group("")

	auth.Routes(api, site, a.Auth, a.Sessions, a.Renderer, a.limiter)
	tickets.Routes(api, site, a.Tickets, a.Renderer, a.Streams)
	orders.Routes(api, site, a.Orders, a.Renderer, a.Streams)
	payments.Routes(api, site, a.Payments, a.Webhook, a.Renderer, a.cfg.BaseURL)
	delivery.Routes(site, a.Delivery, a.Sessions)
	if !a.cfg.Production {
		mail.Routes(site, a.Mail, a.Renderer)
	}

	// Anything else under /api is a JSON 404, not a page.
	api.Any("/*", func(c echo.Context) error { return echo.ErrNotFound })
}
