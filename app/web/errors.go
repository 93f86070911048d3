package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"ticketing/app/problem"
	"ticketing/db"
)

// apiStatus maps a kind to the JSON API's status, following the seed's
// contract: validation and state conflicts are 400, and acting on someone
// else's resource is 401 (the seed's NotAuthorizedError).
var apiStatus = map[problem.Kind]int{
	problem.Invalid:         http.StatusBadRequest,
	problem.Conflict:        http.StatusBadRequest,
	problem.NotFound:        http.StatusNotFound,
	problem.Unauthenticated: http.StatusUnauthorized,
	problem.Forbidden:       http.StatusUnauthorized,
	problem.TooManyRequests: http.StatusTooManyRequests,
	problem.Unavailable:     http.StatusServiceUnavailable,
	problem.PaymentRequired: http.StatusPaymentRequired,
	problem.Internal:        http.StatusInternalServerError,
}

// pageStatus maps a kind to the status of an HTML page: a re-rendered form
// is 422, someone else's resource is 403.
var pageStatus = map[problem.Kind]int{
	problem.Invalid:         http.StatusUnprocessableEntity,
	problem.Conflict:        http.StatusConflict,
	problem.NotFound:        http.StatusNotFound,
	problem.Unauthenticated: http.StatusUnauthorized,
	problem.Forbidden:       http.StatusForbidden,
	problem.TooManyRequests: http.StatusTooManyRequests,
	problem.Unavailable:     http.StatusServiceUnavailable,
	problem.PaymentRequired: http.StatusPaymentRequired,
	problem.Internal:        http.StatusInternalServerError,
}

// ErrorBody is the API's error shape: {"errors":[{"message","field"}]}.
type ErrorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// ErrorItem is one error; Field is set where one applies.
type ErrorItem struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// ErrorHandler is the one place errors become responses. Handlers just
// return errors; this maps their kind to a status once, renders the API's
// JSON shape under /api/ and an error page elsewhere, and logs what the
// user is not shown.
func ErrorHandler(r *Renderer, logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := classify(err)
		// Machines get JSON: the API, the health check, Stripe's webhook.
		api := isAPI(c) || c.Request().URL.Path == "/healthz" || strings.HasPrefix(c.Request().URL.Path, "/webhooks/")
		status := statusOf(pageStatus, p, err)
		if api {
			status = statusOf(apiStatus, p, err)
		}
		if status >= 500 {
			// The user sees p.Message; the cause is only logged.
			logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
		}
		var werr error
		if api {
			werr = c.JSON(status, body(p))
		} else {
			werr = renderErrorPage(r, c, p, status)
		}
		if werr != nil {
			logger.Error("write error response", "err", werr)
		}
	}
}

func renderErrorPage(r *Renderer, c echo.Context, p *problem.Error, status int) error {
	if p.Kind == problem.Unauthenticated && c.Request().Method == http.MethodGet {
		return Redirect(c, "/auth/signin?next="+url.QueryEscape(c.Request().URL.RequestURI()))
	}
	if p.Kind == problem.Unauthenticated {
		return Redirect(c, "/auth/signin")
	}
	title := pageTitles[status]
	if title == "" {
		title = http.StatusText(status)
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	return r.Render(c, status, View{Page: "errors/error", Title: title, Data: map[string]string{"Title": title, "Message": p.Message}})
}

// pageTitles are what an error page's heading says, in words a buyer
// uses rather than HTTP's; the status itself is still the response's.
var pageTitles = map[int]string{
	http.StatusBadRequest:            "That did not work",
	http.StatusForbidden:             "Not allowed",
	http.StatusNotFound:              "Not found",
	http.StatusMethodNotAllowed:      "That did not work",
	http.StatusConflict:              "That changed meanwhile",
	http.StatusRequestEntityTooLarge: "Too large",
	http.StatusUnprocessableEntity:   "Please check what you sent",
	http.StatusTooManyRequests:       "Too many attempts",
	http.StatusPaymentRequired:       "Payment failed",
	http.StatusInternalServerError:   "Something went wrong",
	http.StatusServiceUnavailable:    "Please try again shortly",
}

func statusOf(m map[problem.Kind]int, p *problem.Error, err error) int {
	var he *echo.HTTPError
	if errors.As(err, &he) && p.Kind == problem.Internal {
		return he.Code
	}
	return m[p.Kind]
}

// classify turns any error into a problem: ours as they are, Echo's own
// (404 route, 405, 413, CSRF) with their message, a database that cannot
// take writes as Unavailable, anything else as Internal with a generic
// message.
func classify(err error) *problem.Error {
	if p, ok := problem.As(err); ok {
		return p
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			msg = m
		}
		switch he.Code {
		case http.StatusNotFound:
			return problem.New(problem.NotFound, "Not found")
		case http.StatusBadRequest:
			return problem.New(problem.Invalid, msg)
		case http.StatusForbidden: // a cross-site form (CSRF)
			return problem.New(problem.Forbidden, "This form was sent from another site, so nothing was done")
		case http.StatusRequestEntityTooLarge:
			return problem.New(problem.Invalid, "Request body is too large")
		}
		// Status comes from the HTTPError itself (405 and the like).
		return &problem.Error{Kind: problem.Internal, Message: msg}
	}
	if db.IsUnavailable(err) {
		return problem.New(problem.Unavailable, "The service cannot save changes right now; please try again shortly")
	}
	return problem.New(problem.Internal, "Something went wrong on our side")
}

func body(p *problem.Error) ErrorBody {
	if len(p.Fields) == 0 {
		return ErrorBody{Errors: []ErrorItem{{Message: p.Message}}}
	}
	items := make([]ErrorItem, 0, len(p.Fields))
	for _, f := range p.FieldNames() {
		items = append(items, ErrorItem{Message: p.Fields[f], Field: f})
	}
	return ErrorBody{Errors: items}
}
