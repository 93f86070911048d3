// Package web is the HTTP plumbing the modules share: decoding and encoding
// JSON, the session cookie and the signed-in user, rendering pages and
// fragments, CSRF, read-your-writes, and the one error handler that turns a
// problem.Kind into a status. It holds no rules of its own.
package web

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// isAPI reports whether the request is for the JSON API, which answers
// errors as {"errors":[...]} instead of pages.
func isAPI(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, "/api/")
}

// htmx request headers (https://htmx.org/reference/#request_headers).
const (
	HeaderHXRequest        = "HX-Request"
	headerHXBoosted        = "HX-Boosted"
	headerHXHistoryRestore = "HX-History-Restore-Request"
	HeaderHXRedirect       = "HX-Redirect"
)

// IsFragmentRequest reports whether the request wants only a fragment: an
// htmx request that is neither boosted navigation (which swaps the body and
// wants the whole page) nor a history restore (which needs the whole page).
func IsFragmentRequest(c echo.Context) bool {
	h := c.Request().Header
	return h.Get(HeaderHXRequest) == "true" &&
		h.Get(headerHXBoosted) != "true" &&
		h.Get(headerHXHistoryRestore) != "true"
}
