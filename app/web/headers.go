package web

import (
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// SecurityHeaders sets the headers every answer carries:
//
//   - Content-Security-Policy: scripts, styles, fonts and connections only
//     from this origin (htmx and its SSE extension are vendored in
//     /static; no inline script or style, no eval); images also as data:
//     URIs (Pico CSS draws its icons so); forms post only here and to
//     Stripe Checkout (the Pay button's 303 leads there, and Chromium
//     checks form-action on redirects); no framing, no plugins, no <base>.
//   - Strict-Transport-Security when BASE_URL is https: browsers then
//     never try plain HTTP for two years.
//   - nosniff, X-Frame-Options for old browsers, and a same-origin
//     Referrer-Policy, so ids in URLs do not leak to other sites.
func SecurityHeaders(baseURL string) echo.MiddlewareFunc {
	formAction := "'self' https://checkout.stripe.com"
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		// The test checkout is at BASE_URL, which need not be the origin
		// the browser used (localhost and 127.0.0.1).
		formAction += " " + u.Scheme + "://" + u.Host
	}
	csp := strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"font-src 'self'",
		"connect-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
		"form-action " + formAction,
	}, "; ")
	hsts := strings.HasPrefix(baseURL, "https://")
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "same-origin")
			if hsts {
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			return next(c)
		}
	}
}

// NoStoreWhenSignedIn marks every answer that may show a signed-in user's
// data (the user was signed in when the request came, or is when the answer
// goes) Cache-Control: no-store, so no browser or proxy keeps it: after
// signing out, Back does not bring an order page back from the cache.
// Static files keep their own caching.
func NoStoreWhenSignedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if strings.HasPrefix(c.Request().URL.Path, "/static/") {
			return next(c)
		}
		before := CurrentUser(c) != nil
		c.Response().Before(func() {
			if before || CurrentUser(c) != nil {
				c.Response().Header().Set("Cache-Control", "no-store")
			}
		})
		return next(c)
	}
}
