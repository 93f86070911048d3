package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// CSRF protects every HTML form: a POST must carry the token from the
// _csrf form field or the X-CSRF-Token header (htmx sends it from the
// layout's hx-headers), unless the browser's Sec-Fetch-Site says the request
// is same-origin. The JSON API and Stripe's webhook are skipped: the API is
// protected by SameSite cookies plus requiring application/json, the webhook
// by its signature.
func CSRF(secure bool) echo.MiddlewareFunc {
	return middleware.CSRFWithConfig(middleware.CSRFConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/webhooks/") || strings.HasPrefix(p, "/static/")
		},
		TokenLookup:    "form:_csrf,header:X-CSRF-Token",
		CookieName:     "_csrf",
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSecure:   secure,
		CookieSameSite: http.SameSiteLaxMode,
	})
}

// Settler is what read-your-writes needs from events.Bus.
type Settler interface {
	Track(ctx context.Context) context.Context
	Settle(ctx context.Context)
}

// ReadYourWrites makes a request that appended events answer only after the
// in-process consumers of those events have applied them (bounded; see
// events.Bus.Settle). The wait runs just before the response's header is
// written, so it covers JSON, pages and redirects alike: a client that
// creates a ticket and then orders it never sees a 404.
func ReadYourWrites(s Settler) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx := s.Track(c.Request().Context())
			c.SetRequest(c.Request().WithContext(ctx))
			c.Response().Before(func() { s.Settle(ctx) })
			return next(c)
		}
	}
}
