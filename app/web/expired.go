package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
)

// Reshow renders a form again with f: what was typed, and why it is back.
// It runs for a request whose CSRF token failed, so it must only render:
// nothing it does may change state.
type Reshow func(c echo.Context, f Form) error

// formExpired is what a form whose token failed says, above its fields.
const formExpired = "This form expired, please send it again."

// OnExpired registers how the form posted to route (Echo's path, as in
// "/tickets/:id/edit") is shown again when its token has expired, behind
// the route's own middleware (RequireUser: the CSRF check runs before a
// route's middleware does). Call it while registering routes, before
// serving.
func (r *Renderer) OnExpired(route string, show Reshow, m ...echo.MiddlewareFunc) {
	if r.reshow == nil {
		r.reshow = map[string]echo.HandlerFunc{}
	}
	h := func(c echo.Context) error { return show(c, c.Get(expiredFormKey).(Form)) }
	for i := len(m) - 1; i >= 0; i-- {
		h = m[i](h)
	}
	r.reshow[route] = h
}

const expiredFormKey = "web.expiredForm"

// expired answers a form POST whose CSRF token failed: its form again
// where one is registered, with the values kept (the token is not among
// them), else a page that says so and leads back to where the form was.
// Both are 403: nothing was done.
func (r *Renderer) expired(c echo.Context) error {
	f := Form{Values: map[string]string{}, Message: formExpired, Status: http.StatusForbidden}
	if params, err := c.FormParams(); err == nil {
		for name, vs := range params {
			if name != "_csrf" && len(vs) > 0 {
				f.Values[name] = vs[0]
			}
		}
	}
	if show, ok := r.reshow[c.Path()]; ok {
		c.Set(expiredFormKey, f)
		return show(c)
	}
	return r.Render(c, http.StatusForbidden, View{Page: "errors/error", Title: "This form expired",
		Data: map[string]string{"Title": "This form expired", "Message": "Nothing was done. Go back to the page, and send it again.", "Back": sameSiteReferer(c)}})
}

// sameSiteReferer is the path of the page the request came from when it
// is one of ours, else "".
func sameSiteReferer(c echo.Context) string {
	u, err := url.Parse(c.Request().Referer())
	if err != nil || u.Host != c.Request().Host || u.Path == "" || u.Path[0] != '/' {
		return ""
	}
	return u.RequestURI()
}
