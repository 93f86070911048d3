package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

// Unknown pages are a 404 in the site's layout; unknown API paths a JSON
// 404; every script and stylesheet comes from our own static files.
func TestNotFoundAndAssets(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	cl := h.Client(t)

	resp, doc := cl.Get(t, "/no/such/page")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "Not found", strings.TrimSpace(doc.Find("main h1").Text()))
	assert.Equal(t, 1, doc.Find("header.site-header").Length(), "in the layout")

	var body struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	assert.Equal(t, http.StatusNotFound, cl.JSON(t, http.MethodGet, "/api/no/such", nil, &body))
	require.Len(t, body.Errors, 1)

	_, doc = cl.Get(t, "/")
	var assets []string
	doc.Find("script[src], link[rel=stylesheet], link[rel=icon]").Each(func(_ int, s *goquery.Selection) {
		assets = append(assets, s.AttrOr("src", s.AttrOr("href", "")))
	})
	require.NotEmpty(t, assets)
	for _, a := range assets {
		assert.True(t, strings.HasPrefix(a, "/static/"), "no CDN: %s", a)
		resp := cl.Do(t, http.MethodGet, a, nil)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, a)
	}
	resp = cl.Do(t, http.MethodGet, "/favicon.ico", nil)
	resp.Body.Close()
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "/favicon.ico")
	assert.Equal(t, "/static/favicon.svg", resp.Header.Get("Location"))
	resp = cl.Do(t, http.MethodGet, "/static/favicon.svg", nil)
	resp.Body.Close()
	assert.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"))
}
