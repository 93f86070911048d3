// Package views holds the html/template files of the website, embedded in
// the binary, and renders them.
//
// One layout (layout.html) wraps every page. Shared fragments live in
// fragments/; each page is pages/<module>/<name>.html, defines "content"
// and may define fragments of its own (named for what they show:
// "ticket-form", "ticket-row"). The layout and the shared fragments are
// parsed once; each page is parsed into a Clone of them, so pages can
// define blocks with the same names without clashing.
package views

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"strings"
	"time"
)

//go:embed layout.html fragments/*.html pages
var files embed.FS

// Views is the parsed set of pages.
type Views struct {
	pages map[string]*template.Template
}

// New parses every page. A template error is a bug: it fails at start.
func New() (*Views, error) {
	base, err := template.New("layout.html").Funcs(Funcs).ParseFS(files, "layout.html", "fragments/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	v := &Views{pages: map[string]*template.Template{}}
	err = fs.WalkDir(files, "pages", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
			return err
		}
		t, err := base.Clone()
		if err != nil {
			return err
		}
		if _, err := t.ParseFS(files, path); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path, "pages/"), ".html")
		v.pages[name] = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Views) page(name string) (*template.Template, error) {
	t, ok := v.pages[name]
	if !ok {
		return nil, fmt.Errorf("no page %q", name)
	}
	return t, nil
}

// Page renders the page named "<module>/<name>" inside the layout. It renders
// into a buffer first, so a template error never leaves half a page sent.
func (v *Views) Page(w io.Writer, page string, data any) error {
	return v.exec(w, page, "layout", data)
}

// Fragment renders only the named template of the page (a fragment the page
// defines, or a shared one), for htmx requests.
func (v *Views) Fragment(w io.Writer, page, name string, data any) error {
	return v.exec(w, page, name, data)
}

func (v *Views) exec(w io.Writer, page, name string, data any) error {
	t, err := v.page(page)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("render %s %s: %w", page, name, err)
	}
	_, err = buf.WriteTo(w)
	return err
}

// Funcs are the helpers every template may call.
var Funcs = template.FuncMap{
	"money":    Money,
	"datetime": func(t time.Time) template.HTML { return timeElement(t, "Mon 2 Jan 2006, 15:04 UTC", "datetime") },
	"clock":    func(t time.Time) template.HTML { return timeElement(t, "15:04 UTC", "clock") },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dict":     dict,
}

// timeElement is t as a <time> in UTC, the server's format; with
// JavaScript the browser rewrites it in the visitor's zone (app.js reads
// data-local: "datetime" or "clock").
func timeElement(t time.Time, layout, kind string) template.HTML {
	u := t.UTC()
	return template.HTML(`<time datetime="` + u.Format(time.RFC3339) + `" data-local="` + kind + `">` + u.Format(layout) + `</time>`)
}

// Money formats integer cents as dollars: 2050 → "$20.50".
func Money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	whole := fmt.Sprint(cents / 100)
	// thousands separators: 1234567 → 1,234,567
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return fmt.Sprintf("%s$%s.%02d", sign, b.String(), cents%100)
}

// dict builds a map from alternating keys and values, to pass several
// values to a fragment: {{template "field" (dict "Name" "email" "Form" .Form)}}.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
