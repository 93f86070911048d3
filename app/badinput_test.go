package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"ticketing/app/apptest"
)

// Bad input is a 4xx with a message, never a 500: every API route and
// every form, fed malformed bodies, wrong types, absurd values and junk ids.
func TestBadInputNeverFailsTheServer(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	cl := h.Client(t)
	cl.SignUp(t, "fuzz@example.com", "password")
	other := h.Client(t)
	other.SignUp(t, "other@example.com", "password")
	tk := createTicket(t, other, "Show", 10)

	bodies := []string{
		``, `{`, `[]`, `null`, `"string"`, `42`, `{"a":1}{"b":2}`,
		`{"email":123,"password":true}`, `{"title":["x"],"price":{"a":1}}`,
		`{"price":"1e400"}`, `{"price":1e400}`, `{"price":-0.0}`, `{"price":99999999999999999999999}`,
		`{"ticketId":123}`, `{"ticketId":"` + strings.Repeat("a", 10000) + `"}`, `{"orderId":"../../etc","token":"tok_visa"}`,
		`{"title":"` + strings.Repeat("é", 500) + `","price":1}`, "{\"title\":\"\x00\",\"price\":1}",
	}
	routes := []struct{ method, path string }{
		{http.MethodPost, "/api/users/signup"},
		{http.MethodPost, "/api/users/signin"},
		{http.MethodPost, "/api/tickets"},
		{http.MethodPut, "/api/tickets/" + tk.ID},
		{http.MethodPut, "/api/tickets/nonsense"},
		{http.MethodPost, "/api/orders"},
		{http.MethodPost, "/api/payments"},
		{http.MethodDelete, "/api/orders/nonsense"},
	}
	for _, r := range routes {
		for _, b := range bodies {
			status := cl.JSON(t, r.method, r.path, b, nil)
			assert.True(t, status >= 400 && status < 500, "%s %s %q: %d", r.method, r.path, b, status)
		}
	}
	for _, p := range []string{"/api/tickets/%00", "/api/orders/%C0%AF", "/tickets/" + strings.Repeat("x", 5000), "/orders/nonsense", "/payments/test-checkout/nonsense"} {
		resp := cl.Do(t, http.MethodGet, p, nil)
		resp.Body.Close()
		assert.Less(t, resp.StatusCode, 500, p)
	}
	forms := map[string]url.Values{
		"/tickets":                      {"title": {strings.Repeat("x", 1000)}, "price": {"NaN"}},
		"/tickets/" + tk.ID + "/edit":   {"title": {""}, "price": {"-1"}},
		"/orders":                       {"ticketId": {"garbage"}},
		"/orders/nonsense/cancel":       {},
		"/orders/nonsense/pay":          {},
		"/auth/signin":                  {"email": {strings.Repeat("@", 300)}},
		"/payments/test-checkout/x/pay": {},
	}
	for path, v := range forms {
		resp := cl.Form(t, path, v)
		resp.Body.Close()
		assert.Less(t, resp.StatusCode, 500, path)
	}
	var body struct{ Status string }
	assert.Equal(t, http.StatusOK, cl.JSON(t, http.MethodGet, "/healthz", nil, &body), "still healthy")
}
