// Package static holds the website's vendored front-end files (htmx, Pico
// CSS) and our stylesheet, embedded in the binary: no CDN at run time.
package static

import (
	"embed"
	"net/http"
)

//go:embed app.css app.js favicon.svg vendor
var files embed.FS

// Handler serves the files. Vendored files carry their version in their
// name, so they can be cached for a long time.
func Handler() http.Handler {
	fs := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) > 7 && r.URL.Path[:7] == "vendor/" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		fs.ServeHTTP(w, r)
	})
}
