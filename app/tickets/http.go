package tickets

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ticketing/app/problem"
	"ticketing/app/web"
	"ticketing/events"
)

// Routes registers the JSON API (the seed's /api/tickets) and the pages.
func Routes(api, site *echo.Group, s *Store, r *web.Renderer, streams *web.Streams) {
	api.POST("/tickets", handleAPICreate(s), web.RequireUser)
	api.GET("/tickets", handleAPIList(s))
	api.GET("/tickets/:id", handleAPIShow(s))
	api.PUT("/tickets/:id", handleAPIUpdate(s), web.RequireUser)

	r.OnExpired("/tickets", showNew(s, r), web.RequireUser)
	r.OnExpired("/tickets/:id/edit", showEdit(s, r), web.RequireUser)
	api.GET("/shows", handleAPIShows(s))
	api.POST("/shows", handleAPICreateShow(s), web.RequireUser)
	api.GET("/shows/:id", handleAPIShowDetail(s))
	api.PUT("/shows/:id", handleAPIUpdateShow(s), web.RequireUser)

	r.OnExpired("/shows", showShowForm(s, r, false), web.RequireUser)
	r.OnExpired("/shows/:id/edit", showShowForm(s, r, true), web.RequireUser)
	site.GET("/shows/new", handleNewShow(r, s), web.RequireUser)
	site.POST("/shows", handleCreateShow(s, r), web.RequireUser)
	site.GET("/shows/:id", handleShowPage(s, r))
	site.GET("/shows/:id/stream", handleShowStream(s, r, streams))
	site.GET("/shows/:id/edit", handleEditShow(s, r), web.RequireUser)
	site.POST("/shows/:id/edit", handleUpdateShow(s, r), web.RequireUser)

	site.GET("/", handleHome(s, r))
	site.GET("/tickets/stream", handleStream(s, r, streams))
	site.GET("/sell", handleDashboard(s, r), web.RequireUser)
	site.GET("/sell/stream", handleDashboardStream(s, r, streams), web.RequireUser)
	site.GET("/tickets/new", handleNew(s, r), web.RequireUser)
	site.POST("/tickets", handleCreate(s, r), web.RequireUser)
	site.GET("/tickets/:id", handleShow(s, r))
	site.GET("/tickets/:id/edit", handleEdit(s, r), web.RequireUser)
	site.POST("/tickets/:id/edit", handleUpdate(s, r), web.RequireUser)
}

// ticketInput is the API's body. Amounts stay raw JSON so that 10.55
// becomes 1055 cents exactly, never through a float, and one sent as a
// string is a field error rather than a malformed body. The show's
// listing fields are optional: absent keeps what the ticket says (a PUT
// from a client that knows only the seed's {title, price} changes nothing
// else), null clears.
type ticketInput struct {
	Title     string          `json:"title"`
	Price     json.RawMessage `json:"price"`
	ShowID    json.RawMessage `json:"showId"`
	Section   json.RawMessage `json:"section"`
	Row       json.RawMessage `json:"row"`
	Seat      json.RawMessage `json:"seat"`
	FaceValue json.RawMessage `json:"faceValue"`
}

// listing reads the input over base (the ticket as it is for an edit,
// zero for a new one), with every field's error at once; the store checks
// the rest (the show, the cap) with the same field names.
func (in ticketInput) listing(base Listing) (Listing, error) {
	fields := map[string]string{}
	l := base
	l.Title = in.Title
	var err error
	if l.PriceCents, err = parseMoney("price", "Price", amountText(in.Price)); err != nil {
		fields["price"] = problem.FieldsOf(err)["price"]
	}
	if in.FaceValue != nil {
		l.FaceValueCents = 0
		if raw := amountText(in.FaceValue); raw != "" {
			if l.FaceValueCents, err = parseMoney("faceValue", "Face value", raw); err != nil {
				fields["faceValue"] = problem.FieldsOf(err)["faceValue"]
			}
		}
	}
	for _, f := range []struct {
		field, name string
		raw         json.RawMessage
		dst         *string
	}{{"showId", "Show", in.ShowID, &l.ShowID}, {"section", "Section", in.Section, &l.Section}, {"row", "Row", in.Row, &l.Row}, {"seat", "Seat", in.Seat, &l.Seat}} {
		if f.raw == nil {
			continue
		}
		*f.dst = "" // null
		if err := json.Unmarshal(f.raw, f.dst); err != nil {
			fields[f.field] = f.name + " must be a string"
		}
	}
	if len(fields) > 0 {
		// The text fields' own errors come back with the amounts'.
		if _, err := validateListing(Listing{Title: cmp.Or(l.Title, "untitled"), PriceCents: 1, Section: l.Section, Row: l.Row, Seat: l.Seat}, nil, 0, time.Time{}); err != nil {
			maps.Copy(fields, problem.FieldsOf(err))
		}
		if strings.TrimSpace(l.Title) == "" && l.ShowID == "" {
			fields["title"] = "Title is required"
		}
		return Listing{}, problem.Fields(fields)
	}
	return l, nil
}

// amountText is a JSON amount as the text ParsePrice reads: "" for
// absent or null, something that is not a number for a string.
func amountText(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case strings.HasPrefix(s, `"`):
		return "not a number"
	case s == "null":
		return ""
	}
	return s
}

// bindTicket decodes the API's body over base.
func bindTicket(c echo.Context, base Listing) (Listing, error) {
	var in ticketInput
	if err := web.Bind(c, &in); err != nil {
		return Listing{}, err
	}
	return in.listing(base)
}

func handleAPICreate(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		l, err := bindTicket(c, Listing{})
		if err != nil {
			return err
		}
		t, err := s.Create(c.Request().Context(), web.CurrentUser(c).ID, l)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusCreated, t)
	}
}

// listingOf is what a ticket's listing says now.
func listingOf(t Ticket) Listing {
	return Listing{Title: t.Title, PriceCents: t.PriceCents, ShowID: t.ShowID, Section: t.Section, Row: t.Row, Seat: t.Seat, FaceValueCents: t.FaceValueCents}
}

func listQuery(c echo.Context) ListQuery {
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	return ListQuery{Query: c.QueryParam("q"), Limit: limit, Before: c.QueryParam("before")}
}

func handleAPIList(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := s.ListOnSale(c.Request().Context(), listQuery(c))
		if err != nil {
			return err
		}
		if p.Next != "" {
			c.Response().Header().Set("Link", `</api/tickets?before=`+p.Next+`>; rel="next"`)
		}
		if p.Tickets == nil {
			p.Tickets = []Ticket{}
		}
		return web.JSON(c, http.StatusOK, p.Tickets)
	}
}

func handleAPIShow(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		t, err := s.Get(c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusOK, t)
	}
}

func handleAPIUpdate(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		// The seed's order of checks: 404, then ownership, then the body.
		t, err := s.Get(c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		if t.UserID != web.CurrentUser(c).ID {
			return problem.New(problem.Forbidden, "Not authorized")
		}
		l, err := bindTicket(c, listingOf(t))
		if err != nil {
			return err
		}
		t, err = s.Update(c.Request().Context(), t.ID, web.CurrentUser(c).ID, l)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusOK, t)
	}
}

// homePage is the front page: the upcoming shows, found and sorted as
// the visitor asked, and the tickets on sale that belong to no show.
type homePage struct {
	Shows  ShowPage
	Filter ShowQuery
	Form   web.Form // the filters, with an error at each that was wrong
	Cities []string
	// Tickets are the listings without a show, newest first.
	Query   string
	Tickets []Ticket
	Next    string
	Paged   bool // a later page: it links back to the newest
	Live    bool // the first, unfiltered page follows changes as they happen
}

// showQuery reads the show filters of a list request.
func showQuery(c echo.Context) ShowQuery {
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	page, _ := strconv.Atoi(c.QueryParam("page"))
	return ShowQuery{Query: c.QueryParam("q"), City: c.QueryParam("city"), From: c.QueryParam("from"), To: c.QueryParam("to"),
		Sort: c.QueryParam("sort"), Limit: limit, Page: page}
}

func handleHome(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		q := listQuery(c)
		q.NoShow = true
		if _, _, ok := decodeCursor(q.Before, false); q.Before != "" && !ok {
			q.Before = "" // a mangled link: the first page, not an error
		}
		page := homePage{Filter: showQuery(c), Form: web.FormValues(c, "q", "city", "from", "to", "sort")}
		status := http.StatusOK
		shows, err := s.ListShows(ctx, page.Filter)
		if page.Form.Invalid(err) {
			status = page.Form.Status
		} else if err != nil {
			return err
		}
		page.Shows = shows
		if page.Cities, err = s.Cities(ctx); err != nil {
			return err
		}
		p, err := s.ListOnSale(ctx, q)
		if page.Form.Invalid(err) {
			status = page.Form.Status
		} else if err != nil {
			return err
		}
		page.Query, page.Tickets, page.Next, page.Paged, page.Live = q.Query, p.Tickets, p.Next, q.Before != "", q.Query == "" && q.Before == ""
		return r.Render(c, status, web.View{Page: "tickets/home", Fragment: "ticket-list", Title: "Concert tickets", Data: page})
	}
}

// formPage is the new and edit forms of a listing.
type formPage struct {
	Ticket Ticket // zero for a new ticket
	Show   *Show  // the listing's show; nil for a listing without one
	Form   web.Form
	Cap    int // the price cap, percent (0: none)
}

// choosePage is the first step of listing a ticket: which show it is for.
type choosePage struct {
	Query string
	Shows []Show
}

// handleNew is the listing form for ?show=<id> (or ?show=none for a
// ticket without a show), else the step that finds the show: the
// upcoming shows matching ?q, soonest first, with a way to add one.
func handleNew(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showNew(s, r)
	return func(c echo.Context) error {
		id := c.QueryParam("show")
		if id != "" {
			form := web.Form{Values: map[string]string{"showId": id}}
			if id == "none" {
				form.Values["showId"] = ""
			}
			return show(c, form)
		}
		q := c.QueryParam("q")
		p, err := s.ListShows(c.Request().Context(), ShowQuery{Query: q, Limit: 10})
		if err != nil {
			return err
		}
		return r.Render(c, http.StatusOK, web.View{Page: "tickets/choose", Title: "Sell a ticket", Data: choosePage{Query: q, Shows: p.Shows}})
	}
}

// listingFields are the listing form's fields.
var listingFields = []string{"showId", "title", "price", "section", "row", "seat", "faceValue"}

// formListing reads the listing form over base: the same parsing as the
// API's, since a field's text is what its JSON would be.
func formListing(form web.Form, base Listing) (Listing, error) {
	str := func(name string) json.RawMessage {
		b, _ := json.Marshal(strings.TrimSpace(form.Value(name)))
		return b
	}
	in := ticketInput{Title: form.Value("title"), Price: json.RawMessage(strings.TrimSpace(form.Value("price"))),
		Section: str("section"), Row: str("row"), Seat: str("seat"), FaceValue: json.RawMessage(strings.TrimSpace(form.Value("faceValue")))}
	if form.Value("showId") != "" {
		in.ShowID = str("showId")
	}
	if len(in.FaceValue) == 0 {
		in.FaceValue = json.RawMessage("null")
	}
	return in.listing(base)
}

// formShow loads the show a listing form names, nil for none; one that
// is not there is a 404.
func formShow(c echo.Context, s *Store, id string) (*Show, error) {
	if id == "" {
		return nil, nil
	}
	sh, err := s.GetShow(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	return &sh, nil
}

// showNew renders the listing form, new or refused or expired, for the
// show its showId names.
func showNew(s *Store, r *web.Renderer) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		sh, err := formShow(c, s, form.Value("showId"))
		if err != nil {
			return err
		}
		title := "Sell a ticket"
		if sh != nil {
			title = "Sell a ticket for " + sh.Title
		}
		return r.Render(c, cmp.Or(form.Status, http.StatusOK), web.View{Page: "tickets/new", Fragment: "ticket-form", Title: title,
			Data: formPage{Show: sh, Form: form, Cap: s.PriceCapPercent()}})
	}
}

// showEdit renders the edit form again, refused or expired, for the
// ticket as it is now (a refusal may be because it was reserved
// meanwhile), and only to its seller.
func showEdit(s *Store, r *web.Renderer) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		t, err := ownTicket(c, s)
		if err != nil {
			return err
		}
		sh, err := formShow(c, s, t.ShowID)
		if err != nil {
			return err
		}
		return r.Render(c, cmp.Or(form.Status, http.StatusOK), web.View{Page: "tickets/edit", Fragment: "ticket-form", Title: "Edit " + t.Title,
			Data: formPage{Ticket: t, Show: sh, Form: form, Cap: s.PriceCapPercent()}})
	}
}

func handleCreate(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showNew(s, r)
	return func(c echo.Context) error {
		form := web.FormValues(c, listingFields...)
		l, err := formListing(form, Listing{})
		var t Ticket
		if err == nil {
			t, err = s.Create(c.Request().Context(), web.CurrentUser(c).ID, l)
		}
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		return web.Redirect(c, "/tickets/"+t.ID)
	}
}

// showPage is one ticket.
type showPage struct {
	Ticket  Ticket
	IsOwner bool
	IsBuyer bool // the viewer's order holds it
	Started bool // its show has begun: it can no longer be bought
}

func handleShow(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		t, err := s.Get(c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		u := web.CurrentUser(c)
		return r.Render(c, http.StatusOK, web.View{Page: "tickets/show", Title: t.Title,
			Data: showPage{Ticket: t, IsOwner: u != nil && u.ID == t.UserID, IsBuyer: u != nil && t.BuyerID != "" && u.ID == t.BuyerID,
				Started: t.ShowID != "" && !s.Now().Before(t.Show.StartsAt)}})
	}
}

// priceField is a price as the form shows it: whole amounts as they are
// ("20"), others with both decimals ("120.50", as on the ticket); "" for
// none.
func priceField(cents int64) string {
	switch {
	case cents == 0:
		return ""
	case cents%100 == 0:
		return strconv.FormatInt(cents/100, 10)
	}
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}

// ownTicket loads a ticket the signed-in user may edit.
func ownTicket(c echo.Context, s *Store) (Ticket, error) {
	t, err := s.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return Ticket{}, err
	}
	if t.UserID != web.CurrentUser(c).ID {
		return Ticket{}, problem.New(problem.Forbidden, "Only the seller can edit this ticket")
	}
	return t, nil
}

func handleEdit(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showEdit(s, r)
	return func(c echo.Context) error {
		t, err := ownTicket(c, s)
		if err != nil {
			return err
		}
		return show(c, web.Form{Values: map[string]string{"title": t.Title, "price": priceField(t.PriceCents),
			"section": t.Section, "row": t.Row, "seat": t.Seat, "faceValue": priceField(t.FaceValueCents)}})
	}
}

func handleUpdate(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showEdit(s, r)
	return func(c echo.Context) error {
		t, err := ownTicket(c, s)
		if err != nil {
			return err
		}
		form := web.FormValues(c, listingFields...)
		l, err := formListing(form, listingOf(t))
		if err == nil {
			var updated Ticket
			if updated, err = s.Update(c.Request().Context(), t.ID, web.CurrentUser(c).ID, l); err == nil {
				t = updated
			}
		}
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		return web.Redirect(c, "/tickets/"+t.ID)
	}
}

// liveRow is one change to a live list of tickets: the ticket as it is
// now; Shown, the page holds its row (to be removed first: it went, or it
// moves, or a replay after a reconnect brings it again); Insert, its row
// goes (back) on the page, before the row of Before, or at the end when
// Before is "".
type liveRow struct {
	Ticket Ticket
	Shown  bool
	Insert bool
	Before string
}

// livePage is what an open list of tickets holds, as far as its stream
// can tell: the rows of its first page when the stream opened, and those
// the stream has added or removed since. The stream sends only swaps
// whose targets the page has, so htmx never looks for a row that is not
// there: a ticket not on the page that is reserved, sold or edited is no
// news to it, nor is one that belongs on a later page or on another list.
type livePage struct {
	q        ListQuery
	rows     map[string]bool
	complete bool // the page shows the whole list: nothing is on later pages
}

func openLivePage(ctx context.Context, s *Store, q ListQuery) (*livePage, error) {
	p, err := s.ListOnSale(ctx, q)
	if err != nil {
		return nil, err
	}
	lp := &livePage{q: q, rows: make(map[string]bool, len(p.Tickets)), complete: p.Next == ""}
	for _, t := range p.Tickets {
		lp.rows[t.ID] = true
	}
	return lp, nil
}

// belongs reports whether t is one of the list's tickets.
func (lp *livePage) belongs(t Ticket) bool {
	switch {
	case lp.q.ShowID != "":
		return t.ShowID == lp.q.ShowID
	case lp.q.NoShow:
		return t.ShowID == ""
	}
	return true
}

// apply decides what the page needs for one change, and records it; ok
// is false when the page needs nothing.
func (lp *livePage) apply(ctx context.Context, s *Store, t Ticket, ch change) (row liveRow, ok bool, err error) {
	row = liveRow{Ticket: t, Shown: lp.rows[t.ID]}
	delete(lp.rows, t.ID)
	if (ch == listed || ch == released || ch == edited) && !t.Reserved() && lp.belongs(t) {
		// Its place is before the ticket that follows it in the list's
		// order, if the page holds that one; at the end if none follows
		// and the page is the whole list.
		q := lp.q
		q.Limit, q.Before = 1, cursorAfter(t, q.byPrice())
		next, err := s.ListOnSale(ctx, q)
		if err != nil {
			return row, false, err
		}
		if len(next.Tickets) > 0 {
			row.Before = next.Tickets[0].ID
			row.Insert = lp.rows[row.Before]
		} else {
			row.Insert = lp.complete
		}
	}
	if row.Insert {
		lp.rows[t.ID] = true
	}
	return row, row.Shown || row.Insert, nil
}

// listStream sends a list's changes as they commit, as htmx out-of-band
// swaps (see livePage). The event id is the tickets log's seq, so a
// reconnecting browser (Last-Event-ID) gets what it missed.
func listStream(c echo.Context, s *Store, r *web.Renderer, streams *web.Streams, q ListQuery) error {
	pos, err := strconv.ParseInt(c.Request().Header.Get("Last-Event-ID"), 10, 64)
	if err != nil {
		if pos, err = s.log.Head(c.Request().Context()); err != nil {
			return err
		}
	}
	page, err := openLivePage(c.Request().Context(), s, q)
	if err != nil {
		return err
	}
	return streams.Serve(c, []*events.Log{s.log}, func(ctx context.Context, send func(web.Message) error) error {
		for {
			batch, err := s.log.Read(ctx, pos, 100)
			if err != nil || len(batch) == 0 {
				return err
			}
			for _, e := range batch {
				pos = e.Seq
				if e.Type != eventTicketCreated && e.Type != eventTicketUpdated {
					continue
				}
				var ch ticketChanged
				if err := e.Decode(&ch); err != nil {
					return err
				}
				t, err := s.Get(ctx, ch.ID) // as it is now, with its seller's name
				if err != nil {
					return err
				}
				row, ok, err := page.apply(ctx, s, t, ch.Change)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				html, err := r.Fragment(c, "tickets/home", "ticket-live", row)
				if err != nil {
					return err
				}
				if err := send(web.Message{ID: strconv.FormatInt(e.Seq, 10), Event: "tickets", Data: html}); err != nil {
					return err
				}
			}
		}
	})
}

// handleStream is the front page's list of tickets without a show, live.
func handleStream(s *Store, r *web.Renderer, streams *web.Streams) echo.HandlerFunc {
	return func(c echo.Context) error {
		return listStream(c, s, r, streams, ListQuery{NoShow: true})
	}
}

func handleAPIShows(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		q := showQuery(c)
		p, err := s.ListShows(c.Request().Context(), q)
		if err != nil {
			return err
		}
		if p.Next != 0 {
			next := c.Request().URL.Query()
			next.Set("page", strconv.Itoa(p.Next))
			c.Response().Header().Set("Link", `</api/shows?`+next.Encode()+`>; rel="next"`)
		}
		if p.Shows == nil {
			p.Shows = []Show{}
		}
		return web.JSON(c, http.StatusOK, p.Shows)
	}
}

func handleAPICreateShow(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in ShowInput
		if err := web.Bind(c, &in); err != nil {
			return err
		}
		sh, err := s.CreateShow(c.Request().Context(), web.CurrentUser(c).ID, in)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusCreated, sh)
	}
}

// showDetail is a show with its tickets on sale, cheapest first.
type showDetail struct {
	Show
	Tickets []Ticket `json:"tickets"`
}

// MarshalJSON writes the show's fields and its tickets beside them.
func (d showDetail) MarshalJSON() ([]byte, error) {
	show, err := json.Marshal(d.Show)
	if err != nil {
		return nil, err
	}
	tickets, err := json.Marshal(d.Tickets)
	if err != nil {
		return nil, err
	}
	return append(append(show[:len(show)-1], `,"tickets":`...), append(tickets, '}')...), nil
}

func handleAPIShowDetail(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		sh, err := s.GetShow(ctx, c.Param("id"))
		if err != nil {
			return err
		}
		var p Page // none once the show has begun
		if !sh.Started(s.Now()) {
			q := listQuery(c)
			q.ShowID = sh.ID
			if p, err = s.ListOnSale(ctx, q); err != nil {
				return err
			}
		}
		if p.Next != "" {
			c.Response().Header().Set("Link", `</api/shows/`+sh.ID+`?before=`+p.Next+`>; rel="next"`)
		}
		return web.JSON(c, http.StatusOK, showDetail{Show: sh, Tickets: append([]Ticket{}, p.Tickets...)})
	}
}

func handleAPIUpdateShow(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		// As for tickets: 404, then who may, then the body.
		sh, err := s.GetShow(c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		if sh.UserID != web.CurrentUser(c).ID {
			return problem.New(problem.Forbidden, "Only who added the show can edit it")
		}
		var in ShowInput
		if err := web.Bind(c, &in); err != nil {
			return err
		}
		if sh, err = s.UpdateShow(c.Request().Context(), sh.ID, web.CurrentUser(c).ID, in); err != nil {
			return err
		}
		return web.JSON(c, http.StatusOK, sh)
	}
}

// showFields are the show form's fields.
var showFields = []string{"title", "venue", "city", "country", "startsAt", "timeZone", "description"}

func showInputOf(f web.Form) ShowInput {
	return ShowInput{Title: f.Value("title"), Venue: f.Value("venue"), City: f.Value("city"), Country: f.Value("country"),
		StartsAt: f.Value("startsAt"), TimeZone: f.Value("timeZone"), Description: f.Value("description")}
}

// showFormPage is the form that adds or edits a show.
type showFormPage struct {
	Show *Show // nil for a new one
	Form web.Form
}

// showShowForm renders the show form, new or refused or expired; edit
// says it is the form of the show in the path, shown only to who may
// edit it.
func showShowForm(s *Store, r *web.Renderer, edit bool) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		page := showFormPage{Form: form}
		view := web.View{Page: "shows/new", Fragment: "show-form", Title: "Add a show"}
		if edit {
			sh, err := editableShow(c, s)
			if err != nil {
				return err
			}
			page.Show = &sh
			view = web.View{Page: "shows/edit", Fragment: "show-form", Title: "Edit " + sh.Title}
		}
		view.Data = page
		return r.Render(c, cmp.Or(form.Status, http.StatusOK), view)
	}
}

// editableShow loads the show in the path for the signed-in user to
// edit: only who added it, until a ticket for it sold.
func editableShow(c echo.Context, s *Store) (Show, error) {
	sh, err := s.GetShow(c.Request().Context(), c.Param("id"))
	if err != nil {
		return Show{}, err
	}
	if sh.UserID != web.CurrentUser(c).ID {
		return Show{}, problem.New(problem.Forbidden, "Only who added the show can edit it")
	}
	ok, err := s.ShowEditable(c.Request().Context(), sh, sh.UserID)
	if err != nil {
		return Show{}, err
	}
	if !ok {
		return Show{}, errShowSold
	}
	return sh, nil
}

// handleNewShow is the form that adds a show; ?title= fills in what the
// seller searched for.
func handleNewShow(r *web.Renderer, s *Store) echo.HandlerFunc {
	show := showShowForm(s, r, false)
	return func(c echo.Context) error {
		return show(c, web.Form{Values: map[string]string{"title": c.QueryParam("title")}})
	}
}

func handleCreateShow(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showShowForm(s, r, false)
	return func(c echo.Context) error {
		form := web.FormValues(c, showFields...)
		sh, err := s.CreateShow(c.Request().Context(), web.CurrentUser(c).ID, showInputOf(form))
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		return web.Redirect(c, "/tickets/new?show="+sh.ID)
	}
}

// showFormValues are a show's fields as its form shows them: the start
// in the venue's wall-clock time.
func showFormValues(sh Show) web.Form {
	return web.Form{Values: map[string]string{"title": sh.Title, "venue": sh.Venue, "city": sh.City, "country": sh.Country,
		"startsAt": sh.Local().Format("2006-01-02T15:04"), "timeZone": sh.TimeZone, "description": sh.Description}}
}

func handleEditShow(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showShowForm(s, r, true)
	return func(c echo.Context) error {
		sh, err := editableShow(c, s)
		if err != nil {
			return err
		}
		return show(c, showFormValues(sh))
	}
}

func handleUpdateShow(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showShowForm(s, r, true)
	return func(c echo.Context) error {
		if _, err := editableShow(c, s); err != nil {
			return err
		}
		form := web.FormValues(c, showFields...)
		sh, err := s.UpdateShow(c.Request().Context(), c.Param("id"), web.CurrentUser(c).ID, showInputOf(form))
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		return web.Redirect(c, "/shows/"+sh.ID)
	}
}

// showPageData is a show's page: the show and its tickets on sale,
// cheapest first.
type showPageData struct {
	Show     Show
	Tickets  []Ticket
	Next     string
	Paged    bool
	Live     bool // the first page follows changes as they happen
	Started  bool
	Editable bool
}

func handleShowPage(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		sh, err := s.GetShow(ctx, c.Param("id"))
		if err != nil {
			return err
		}
		q := ListQuery{ShowID: sh.ID, Before: c.QueryParam("before")}
		if _, _, ok := decodeCursor(q.Before, true); q.Before != "" && !ok {
			q.Before = ""
		}
		p, err := s.ListOnSale(ctx, q)
		if err != nil {
			return err
		}
		page := showPageData{Show: sh, Tickets: p.Tickets, Next: p.Next, Paged: q.Before != "", Started: sh.Started(s.Now())}
		page.Live = !page.Paged && !page.Started
		if u := web.CurrentUser(c); u != nil {
			if page.Editable, err = s.ShowEditable(ctx, sh, u.ID); err != nil {
				return err
			}
		}
		return r.Render(c, http.StatusOK, web.View{Page: "shows/show", Title: sh.Title, Data: page})
	}
}

// handleShowStream is a show page's list of tickets, live.
func handleShowStream(s *Store, r *web.Renderer, streams *web.Streams) echo.HandlerFunc {
	return func(c echo.Context) error {
		sh, err := s.GetShow(c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		return listStream(c, s, r, streams, ListQuery{ShowID: sh.ID})
	}
}
