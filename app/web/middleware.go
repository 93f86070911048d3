package web

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// CSRF protects every HTML form: a POST must carry the token from the
// _csrf form field or the X-CSRF-Token header (htmx sends it from the
// layout's hx-headers), unless the browser's Sec-Fetch-Site says the request
// is same-origin. The JSON API and Stripe's webhook are skipped: the API is
// protected by SameSite cookies plus requiring application/json, the webhook
// by its signature.
//
// A form whose token no longer matches (a tab left open past the cookie's
// life, cookies cleared, a browser that sends no Sec-Fetch-Site) is not
// acted on: it is shown again with what was typed, a fresh token and
// "This form expired", with 403 (see Renderer.OnExpired). A cross-site
// POST is refused outright.
func CSRF(secure bool, r *Renderer) echo.MiddlewareFunc {
	cookie := func(token string) *http.Cookie {
		return &http.Cookie{Name: csrfCookie, Value: token, Path: "/", HttpOnly: true, Secure: secure,
			SameSite: http.SameSiteLaxMode, Expires: time.Now().Add(csrfMaxAge)}
	}
	return middleware.CSRFWithConfig(middleware.CSRFConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/webhooks/") || strings.HasPrefix(p, "/static/")
		},
		TokenLookup:    "form:_csrf,header:X-CSRF-Token",
		CookieName:     csrfCookie,
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSecure:   secure,
		CookieSameSite: http.SameSiteLaxMode,
		CookieMaxAge:   int(csrfMaxAge / time.Second),
		ErrorHandler: func(_ error, c echo.Context) error {
			// The cookie's token when there is one (other open tabs hold
			// it), else a new one; the re-shown form carries it.
			token := rand.Text()
			if k, err := c.Cookie(csrfCookie); err == nil && k.Value != "" {
				token = k.Value
			}
			c.SetCookie(cookie(token))
			c.Set(csrfContextKey, token)
			return r.expired(c)
		},
	})
}

const (
	csrfCookie = "_csrf"
	csrfMaxAge = 24 * time.Hour
)

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
