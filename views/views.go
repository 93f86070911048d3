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
	"sync"
	texttemplate "text/template"
	"time"
)

//go:embed layout.html fragments/*.html pages mail
var files embed.FS

// Views is the parsed set of pages, and of emails.
type Views struct {
	pages map[string]*template.Template
	mails map[string]mailTemplates
}

// mailTemplates are one email's parts: mail/<kind>.txt defines "subject"
// and is the plain-text part; mail/<kind>.html is the HTML part.
type mailTemplates struct {
	text *texttemplate.Template
	html *template.Template
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
	if v.mails, err = parseMails(); err != nil {
		return nil, err
	}
	return v, nil
}

func parseMails() (map[string]mailTemplates, error) {
	txts, err := fs.Glob(files, "mail/*.txt")
	if err != nil {
		return nil, err
	}
	mails := map[string]mailTemplates{}
	for _, path := range txts {
		kind := strings.TrimSuffix(strings.TrimPrefix(path, "mail/"), ".txt")
		text, err := texttemplate.New(kind).Funcs(texttemplate.FuncMap(mailFuncs)).ParseFS(files, path)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		html, err := template.New(kind).Funcs(mailFuncs).ParseFS(files, "mail/"+kind+".html")
		if err != nil {
			return nil, fmt.Errorf("parse mail/%s.html: %w", kind, err)
		}
		mails[kind] = mailTemplates{text: text, html: html}
	}
	return mails, nil
}

// mailFuncs are what an email's templates may call.
var mailFuncs = template.FuncMap{
	"money":     Money,
	"venuetime": func(t time.Time) string { return t.Format("Mon 2 Jan 2006, 15:04 MST") },
}

// Mail renders the email of kind with data: its subject, plain-text and
// HTML parts.
func (v *Views) Mail(kind string, data any) (subject, text, html string, err error) {
	m, ok := v.mails[kind]
	if !ok {
		return "", "", "", fmt.Errorf("no mail %q", kind)
	}
	var b bytes.Buffer
	if err := m.text.ExecuteTemplate(&b, "subject", data); err != nil {
		return "", "", "", fmt.Errorf("mail %s subject: %w", kind, err)
	}
	subject = strings.TrimSpace(b.String())
	b.Reset()
	if err := m.text.ExecuteTemplate(&b, kind+".txt", data); err != nil {
		return "", "", "", fmt.Errorf("mail %s text: %w", kind, err)
	}
	text = b.String()
	b.Reset()
	if err := m.html.ExecuteTemplate(&b, kind+".html", data); err != nil {
		return "", "", "", fmt.Errorf("mail %s html: %w", kind, err)
	}
	return subject, text, b.String(), nil
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
	// venuetime is a show's start as the venue's clock says it (t in the
	// venue's zone): "Fri 12 Jun 2027, 20:00 CEST", the same for every
	// visitor, so it is not rewritten in theirs.
	"venuetime": func(t time.Time) template.HTML {
		return template.HTML(`<time datetime="` + t.Format(time.RFC3339) + `">` + t.Format("Mon 2 Jan 2006, 15:04 MST") + `</time>`)
	},
	"dict": dict,
	// timezones are suggestions for a venue's zone (any IANA zone is
	// taken).
	"timezones": func() []string { return commonZones },
}

// commonZones are the IANA zones of the cities most concerts are in.
var commonZones = []string{
	"Africa/Cairo", "Africa/Johannesburg", "Africa/Lagos", "America/Argentina/Buenos_Aires", "America/Bogota", "America/Chicago",
	"America/Denver", "America/Los_Angeles", "America/Mexico_City", "America/New_York", "America/Phoenix", "America/Santiago",
	"America/Sao_Paulo", "America/Toronto", "America/Vancouver", "Asia/Bangkok", "Asia/Dubai", "Asia/Hong_Kong", "Asia/Jakarta",
	"Asia/Kolkata", "Asia/Manila", "Asia/Seoul", "Asia/Shanghai", "Asia/Singapore", "Asia/Taipei", "Asia/Tokyo", "Atlantic/Reykjavik",
	"Australia/Brisbane", "Australia/Melbourne", "Australia/Perth", "Australia/Sydney", "Europe/Amsterdam", "Europe/Athens",
	"Europe/Berlin", "Europe/Brussels", "Europe/Budapest", "Europe/Copenhagen", "Europe/Dublin", "Europe/Helsinki", "Europe/Istanbul",
	"Europe/Lisbon", "Europe/London", "Europe/Madrid", "Europe/Milan", "Europe/Oslo", "Europe/Paris", "Europe/Prague", "Europe/Rome",
	"Europe/Stockholm", "Europe/Vienna", "Europe/Warsaw", "Europe/Zurich", "Pacific/Auckland", "Pacific/Honolulu", "UTC",
}

// timeElement is t as a <time> in UTC, the server's format; with
// JavaScript the browser rewrites it in the visitor's zone (app.js reads
// data-local: "datetime" or "clock").
func timeElement(t time.Time, layout, kind string) template.HTML {
	u := t.UTC()
	return template.HTML(`<time datetime="` + u.Format(time.RFC3339) + `" data-local="` + kind + `">` + u.Format(layout) + `</time>`)
}

// InZone is t in the IANA zone named (a venue's), UTC when there is no
// such zone. Zones are loaded once: loading one reads the embedded
// tzdata, too slow for every time on every page.
func InZone(t time.Time, zone string) time.Time {
	if loc, ok := zones.Load(zone); ok {
		return t.In(loc.(*time.Location))
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return t.UTC()
	}
	zones.Store(zone, loc)
	return t.In(loc)
}

// zones caches the loaded time zones by name (a few hundred at most: only
// valid names are stored).
var zones sync.Map

// Seats is where a ticket is for, as its listing says: "Section A · Row
// 12 · Seat 7" with the parts it names, or "General admission".
func Seats(section, row, seat string) string {
	var parts []string
	for _, p := range []struct{ name, v string }{{"Section", section}, {"Row", row}, {"Seat", seat}} {
		if p.v != "" {
			parts = append(parts, p.name+" "+p.v)
		}
	}
	if len(parts) == 0 {
		return "General admission"
	}
	return strings.Join(parts, " · ")
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
