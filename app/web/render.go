package web

import (
	"bytes"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"ticketing/app/problem"
	"ticketing/views"
)

// csrfContextKey is where Echo's CSRF middleware leaves the token.
var csrfContextKey = middleware.DefaultCSRFConfig.ContextKey

// pageData is what every page template receives: the layout's needs plus the
// page's own Data.
type pageData struct {
	Title    string
	User     *User
	CSRF     string
	Flashes  []string
	Refusals []string // flashes that say no, shown as errors
	Path     string
	// TestMode puts the TEST MODE banner on the page: payments go to the
	// built-in test checkout and no money is taken.
	TestMode bool
	Data     any
}

// View names what to render: the page "<module>/<name>", and the fragment
// of it an htmx request gets instead of the whole page ("" means the whole
// page always).
type View struct {
	Page     string
	Fragment string
	Title    string
	Data     any
}

// Renderer renders pages with the request's user, CSRF token and flashes.
type Renderer struct {
	Views    *views.Views
	Sessions *Sessions
	TestMode bool
	reshow   map[string]echo.HandlerFunc // by route: see OnExpired
}

// Render writes v with status. An htmx fragment request gets only the
// fragment; everything else gets the page in the layout. The response varies
// on HX-Request, so caches keep the two apart.
func (r *Renderer) Render(c echo.Context, status int, v View) error {
	c.Response().Header().Add(echo.HeaderVary, HeaderHXRequest)
	p := r.page(c, v.Title, v.Data)
	var buf bytes.Buffer
	var err error
	if v.Fragment != "" && IsFragmentRequest(c) {
		err = r.Views.Fragment(&buf, v.Page, v.Fragment, p)
	} else {
		err = r.Views.Page(&buf, v.Page, p)
		pushOwnURL(c)
	}
	if err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// pushOwnURL tells htmx the address of a whole page it fetched: a page
// lives at its own URL whatever happened to the element that asked for it
// (a live list can remove the row whose form was submitted, and htmx then
// no longer knows the request was a boosted navigation). After a form's
// 303 the page's URL is where the redirect led.
func pushOwnURL(c echo.Context) {
	req := c.Request()
	h := req.Header
	if req.Method == http.MethodGet && h.Get(HeaderHXRequest) == "true" && h.Get(headerHXHistoryRestore) != "true" {
		c.Response().Header().Set("HX-Push-Url", req.URL.RequestURI())
	}
}

func (r *Renderer) page(c echo.Context, title string, data any) pageData {
	p := pageData{
		Title:    title,
		User:     CurrentUser(c),
		Path:     c.Request().URL.Path,
		TestMode: r.TestMode,
		Data:     data,
	}
	p.CSRF, _ = c.Get(csrfContextKey).(string)
	if r.Sessions != nil {
		p.Flashes, p.Refusals = r.Sessions.Flashes(c)
	}
	return p
}

// Redirect answers a form POST with 303 See Other, so the browser GETs the
// next page and a reload does not resubmit the form.
func Redirect(c echo.Context, url string) error {
	return c.Redirect(http.StatusSeeOther, url)
}

// Form is a submitted HTML form as a page re-renders it: the values the
// user typed and a message per field that was wrong.
type Form struct {
	Values  map[string]string
	Errors  map[string]string
	Message string
	// Status is what a refused form answers with: 422, or 429 for too
	// many attempts (set by Invalid).
	Status int
}

// FormValues reads the named fields of the posted form.
func FormValues(c echo.Context, names ...string) Form {
	f := Form{Values: make(map[string]string, len(names))}
	for _, n := range names {
		f.Values[n] = c.FormValue(n)
	}
	return f
}

// Value returns what the user typed in field name.
func (f Form) Value(name string) string { return f.Values[name] }

// Error returns the message for field name, "" when it is fine.
func (f Form) Error(name string) string { return f.Errors[name] }

// Invalid reports whether err is something the form can show next to its
// fields (a problem.Invalid, a Conflict like "Email in use", or too many
// attempts) and, if so, records it in f.
func (f *Form) Invalid(err error) bool {
	p, ok := problem.As(err)
	if !ok || (p.Kind != problem.Invalid && p.Kind != problem.Conflict && p.Kind != problem.TooManyRequests) {
		return false
	}
	f.Status = http.StatusUnprocessableEntity
	if p.Kind == problem.TooManyRequests {
		f.Status = http.StatusTooManyRequests
	}
	// A message that belongs to a field is said there, once; one that
	// belongs to none goes above the form.
	f.Errors = p.Fields
	if len(p.Fields) == 0 {
		f.Message = p.Message
	}
	return true
}
