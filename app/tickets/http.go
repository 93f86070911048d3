package tickets

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"ticketing/app/problem"
	"ticketing/app/web"
	"ticketing/db"
	"ticketing/events"
)

// Routes registers the JSON API (the seed's /api/tickets) and the pages.
func Routes(api, site *echo.Group, s *Store, r *web.Renderer, streams *web.Streams) {
	api.POST("/tickets", handleAPICreate(s), web.RequireUser)
	api.GET("/tickets", handleAPIList(s))
	api.GET("/tickets/:id", handleAPIShow(s))
	api.PUT("/tickets/:id", handleAPIUpdate(s), web.RequireUser)

	r.OnExpired("/tickets", showNew(r), web.RequireUser)
	r.OnExpired("/tickets/:id/edit", showEdit(s, r), web.RequireUser)
	site.GET("/", handleHome(s, r))
	site.GET("/tickets/stream", handleStream(s, r, streams))
	site.GET("/sell", handleDashboard(s, r), web.RequireUser)
	site.GET("/sell/stream", handleDashboardStream(s, r, streams), web.RequireUser)
	site.GET("/tickets/new", handleNew(r), web.RequireUser)
	site.POST("/tickets", handleCreate(s, r), web.RequireUser)
	site.GET("/tickets/:id", handleShow(s, r))
	site.GET("/tickets/:id/edit", handleEdit(s, r), web.RequireUser)
	site.POST("/tickets/:id/edit", handleUpdate(s, r), web.RequireUser)
}

// ticketInput is the API's body. Price stays raw JSON so that 10.55
// becomes 1055 cents exactly, never through a float, and a price sent as a
// string is a field error rather than a malformed body.
type ticketInput struct {
	Title string          `json:"title"`
	Price json.RawMessage `json:"price"`
}

// parse validates both fields at once, so every error comes back together.
func (in ticketInput) parse() (string, int64, error) {
	fields := map[string]string{}
	raw := strings.TrimSpace(string(in.Price))
	if strings.HasPrefix(raw, `"`) {
		raw = "not a number"
	} else if raw == "null" {
		raw = ""
	}
	price, err := ParsePrice(raw)
	if p, ok := problem.As(err); ok {
		fields["price"] = p.Fields["price"]
	}
	if _, err := validate(in.Title, max(price, 1)); err != nil {
		if p, ok := problem.As(err); ok && p.Fields["title"] != "" {
			fields["title"] = p.Fields["title"]
		}
	}
	return in.Title, price, problem.Fields(fields)
}

// bindTicket decodes and validates the API's {title, price}.
func bindTicket(c echo.Context) (string, int64, error) {
	var in ticketInput
	if err := web.Bind(c, &in); err != nil {
		return "", 0, err
	}
	return in.parse()
}

func handleAPICreate(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		title, price, err := bindTicket(c)
		if err != nil {
			return err
		}
		t, err := s.Create(c.Request().Context(), web.CurrentUser(c).ID, title, price)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusCreated, t)
	}
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
		title, price, err := bindTicket(c)
		if err != nil {
			return err
		}
		t, err = s.Update(c.Request().Context(), t.ID, web.CurrentUser(c).ID, title, price)
		if err != nil {
			return err
		}
		return web.JSON(c, http.StatusOK, t)
	}
}

// homePage is the list of tickets on sale.
type homePage struct {
	Query   string
	Tickets []Ticket
	Next    string
	Paged   bool // a later page: it links back to the newest
	Live    bool // the first, unfiltered page follows changes as they happen
}

func handleHome(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		q := listQuery(c)
		if _, _, ok := decodeCursor(q.Before); q.Before != "" && !ok {
			q.Before = "" // a mangled link: the first page, not an error
		}
		p, err := s.ListOnSale(c.Request().Context(), q)
		if err != nil {
			return err
		}
		return r.Render(c, http.StatusOK, web.View{Page: "tickets/home", Fragment: "ticket-list", Title: "Tickets for sale",
			Data: homePage{Query: q.Query, Tickets: p.Tickets, Next: p.Next, Paged: q.Before != "", Live: q.Query == "" && q.Before == ""}})
	}
}

// formPage is the new and edit forms.
type formPage struct {
	Ticket Ticket // zero for a new ticket
	Form   web.Form
}

func handleNew(r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		return r.Render(c, http.StatusOK, web.View{Page: "tickets/new", Title: "Sell a ticket", Data: formPage{}})
	}
}

// parseForm reads the title and price fields, with every error at once.
func parseForm(form web.Form) (string, int64, error) {
	// The field's text is what a JSON number would be, so both the form
	// and the API go through parse.
	return ticketInput{Title: form.Value("title"), Price: json.RawMessage(strings.TrimSpace(form.Value("price")))}.parse()
}

// showNew renders the listing form again, refused or expired.
func showNew(r *web.Renderer) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		return r.Render(c, form.Status, web.View{Page: "tickets/new", Fragment: "ticket-form", Title: "Sell a ticket", Data: formPage{Form: form}})
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
		return r.Render(c, form.Status, web.View{Page: "tickets/edit", Fragment: "ticket-form", Title: "Edit " + t.Title, Data: formPage{Ticket: t, Form: form}})
	}
}

func handleCreate(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showNew(r)
	return func(c echo.Context) error {
		form := web.FormValues(c, "title", "price")
		title, price, err := parseForm(form)
		var t Ticket
		if err == nil {
			t, err = s.Create(c.Request().Context(), web.CurrentUser(c).ID, title, price)
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
}

func handleShow(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		t, err := s.Get(c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		u := web.CurrentUser(c)
		return r.Render(c, http.StatusOK, web.View{Page: "tickets/show", Title: t.Title,
			Data: showPage{Ticket: t, IsOwner: u != nil && u.ID == t.UserID, IsBuyer: u != nil && t.BuyerID != "" && u.ID == t.BuyerID}})
	}
}

// priceField is a price as the form shows it: whole amounts as they are
// ("20"), others with both decimals ("120.50", as on the ticket).
func priceField(cents int64) string {
	if cents%100 == 0 {
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
	return func(c echo.Context) error {
		t, err := ownTicket(c, s)
		if err != nil {
			return err
		}
		form := web.Form{Values: map[string]string{"title": t.Title, "price": priceField(t.PriceCents)}}
		return r.Render(c, http.StatusOK, web.View{Page: "tickets/edit", Title: "Edit " + t.Title, Data: formPage{Ticket: t, Form: form}})
	}
}

func handleUpdate(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showEdit(s, r)
	return func(c echo.Context) error {
		t, err := ownTicket(c, s)
		if err != nil {
			return err
		}
		form := web.FormValues(c, "title", "price")
		title, price, err := parseForm(form)
		if err == nil {
			var updated Ticket
			if updated, err = s.Update(c.Request().Context(), t.ID, web.CurrentUser(c).ID, title, price); err == nil {
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

// liveRow is one change to the list: the ticket as it is now, and what
// the change was. Shown says the page holds the ticket's row already (so a
// new copy replaces it). Before, for a ticket back on sale, is the ticket
// on sale that follows it in the list ("" when it is the oldest), so it
// goes back where a reload would show it.
type liveRow struct {
	Ticket Ticket
	Change change
	Shown  bool
	Before string
}

// livePage is what an open front page holds, as far as its stream can
// tell: the rows of the first page when the stream opened, and those the
// stream has added or removed since. The stream sends only swaps whose
// targets the page has, so htmx never looks for a row that is not there:
// a ticket edited, reserved or sold that is not on the page is no news to
// it, nor is one released that belongs on a later page.
type livePage struct {
	rows     map[string]bool
	complete bool // the page shows every ticket on sale: none are on later pages
}

func openLivePage(ctx context.Context, s *Store) (*livePage, error) {
	p, err := s.ListOnSale(ctx, ListQuery{})
	if err != nil {
		return nil, err
	}
	lp := &livePage{rows: make(map[string]bool, len(p.Tickets)), complete: p.Next == ""}
	for _, t := range p.Tickets {
		lp.rows[t.ID] = true
	}
	return lp, nil
}

// apply decides what the page needs for one change, and records it; ok
// is false when the page needs nothing.
func (lp *livePage) apply(ctx context.Context, s *Store, t Ticket, ch change) (row liveRow, ok bool, err error) {
	row = liveRow{Ticket: t, Change: ch, Shown: lp.rows[t.ID]}
	switch ch {
	case listed:
		ok = true
	case edited:
		ok = row.Shown
	case reserved, sold:
		ok = row.Shown
		delete(lp.rows, t.ID)
		return row, ok, nil
	case released:
		next, err := s.ListOnSale(ctx, ListQuery{Limit: 1, Before: encodeCursor(db.Timestamp(t.CreatedAt), t.ID)})
		if err != nil {
			return row, false, err
		}
		if len(next.Tickets) > 0 {
			row.Before = next.Tickets[0].ID
			ok = lp.rows[row.Before]
		} else {
			ok = lp.complete
		}
	}
	if ok {
		lp.rows[t.ID] = true
	}
	return row, ok, nil
}

// handleStream sends the list's changes as they commit, as htmx
// out-of-band swaps: a ticket listed appears at the top, one released goes
// back to its place (newest first), an edited one is replaced where it is,
// a reserved or sold one disappears. The event id is the tickets log's seq,
// so a reconnecting browser (Last-Event-ID) gets what it missed.
func handleStream(s *Store, r *web.Renderer, streams *web.Streams) echo.HandlerFunc {
	return func(c echo.Context) error {
		pos, err := strconv.ParseInt(c.Request().Header.Get("Last-Event-ID"), 10, 64)
		if err != nil {
			if pos, err = s.log.Head(c.Request().Context()); err != nil {
				return err
			}
		}
		page, err := openLivePage(c.Request().Context(), s)
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
}
