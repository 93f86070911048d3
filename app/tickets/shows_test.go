package tickets_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/web"
)

// showJSON is a show as the API answers it.
type showJSON struct {
	ID          string       `json:"id"`
	Title       string       `json:"title"`
	Venue       string       `json:"venue"`
	City        string       `json:"city"`
	Country     string       `json:"country"`
	StartsAt    string       `json:"startsAt"`
	TimeZone    string       `json:"timeZone"`
	Description string       `json:"description"`
	UserID      string       `json:"userId"`
	Version     int64        `json:"version"`
	OnSale      int          `json:"onSale"`
	LowestPrice *json.Number `json:"lowestPrice"`
	Tickets     []map[string]any
}

// amsterdam is a show input at the Ziggo Dome, starting at start (the
// venue's wall clock) in Europe/Amsterdam.
func amsterdam(title, start string) map[string]any {
	return map[string]any{"title": title, "venue": "Ziggo Dome", "city": "Amsterdam", "country": "Netherlands",
		"startsAt": start, "timeZone": "Europe/Amsterdam"}
}

func addShow(t *testing.T, c *apptest.Client, body map[string]any) showJSON {
	t.Helper()
	var sh showJSON
	require.Equal(t, http.StatusCreated, c.JSON(t, http.MethodPost, "/api/shows", body, &sh), "add show %v", body)
	return sh
}

func listShows(t *testing.T, c *apptest.Client, query string) []string {
	t.Helper()
	var shows []showJSON
	require.Equal(t, http.StatusOK, c.JSON(t, http.MethodGet, "/api/shows?"+query, nil, &shows), query)
	titles := []string{}
	for _, sh := range shows {
		titles = append(titles, sh.Title)
	}
	return titles
}

// A show: its start is the venue's clock in its zone, answered with the
// venue's offset; bad input is a 400 naming the field.
func TestShowsAPI(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	sh := addShow(t, s.Seller, amsterdam("Radiohead", "2027-06-12T20:00"))
	assert.Equal(t, "2027-06-12T20:00:00+02:00", sh.StartsAt, "summer time at the venue")
	assert.Equal(t, "Europe/Amsterdam", sh.TimeZone)
	assert.Zero(t, sh.OnSale)
	assert.Nil(t, sh.LowestPrice)
	offset := addShow(t, s.Seller, map[string]any{"title": "Björk", "venue": "Harpa", "city": "Reykjavík", "country": "Iceland",
		"startsAt": "2027-01-10T19:30:00Z", "timeZone": "Atlantic/Reykjavik"})
	assert.Equal(t, "2027-01-10T19:30:00Z", offset.StartsAt)

	var got showJSON
	require.Equal(t, http.StatusOK, s.Client(t).JSON(t, http.MethodGet, "/api/shows/"+sh.ID, nil, &got))
	assert.Equal(t, "Ziggo Dome", got.Venue)
	assert.Empty(t, got.Tickets)
	assert.Equal(t, http.StatusNotFound, s.Client(t).JSON(t, http.MethodGet, "/api/shows/nope", nil, nil))
	assert.Equal(t, http.StatusUnauthorized, s.Client(t).JSON(t, http.MethodPost, "/api/shows", amsterdam("Anon", "2027-06-12T20:00"), nil))

	past := time.Now().Add(-time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"no such zone", func(b map[string]any) { b["timeZone"] = "Mars/Olympus_Mons" }, "timeZone"},
		{"the server's zone", func(b map[string]any) { b["timeZone"] = "Local" }, "timeZone"},
		{"no zone", func(b map[string]any) { b["timeZone"] = "" }, "timeZone"},
		{"in the past", func(b map[string]any) { b["startsAt"] = past }, "startsAt"},
		{"not a time", func(b map[string]any) { b["startsAt"] = "next friday" }, "startsAt"},
		{"no start", func(b map[string]any) { b["startsAt"] = "" }, "startsAt"},
		{"a city of 10,000 characters", func(b map[string]any) { b["city"] = strings.Repeat("A", 10_000) }, "city"},
		{"no venue", func(b map[string]any) { b["venue"] = "  " }, "venue"},
		{"a control character", func(b map[string]any) { b["title"] = "Bell\a" }, "title"},
		{"a description of 2,001 characters", func(b map[string]any) { b["description"] = strings.Repeat("x", 2001) }, "description"},
	} {
		body := amsterdam("Bad show", "2027-06-12T20:00")
		tc.edit(body)
		var errs web.ErrorBody
		require.Equal(t, http.StatusBadRequest, s.Seller.JSON(t, http.MethodPost, "/api/shows", body, &errs), tc.name)
		fields := map[string]string{}
		for _, e := range errs.Errors {
			fields[e.Field] = e.Message
		}
		assert.NotEmpty(t, fields[tc.field], "%s: %v", tc.name, errs)
	}
	var errs web.ErrorBody
	require.Equal(t, http.StatusBadRequest, s.Seller.JSON(t, http.MethodPost, "/api/shows", map[string]any{"startsAt": 5}, &errs))
	assert.NotEmpty(t, errs.Errors, "a number where text goes is a 400, not a 500")

	// Only who added it edits it, and only until a ticket for it sells.
	edit := amsterdam("Radiohead", "2027-06-13T20:00")
	var edited showJSON
	require.Equal(t, http.StatusOK, s.Seller.JSON(t, http.MethodPut, "/api/shows/"+sh.ID, edit, &edited))
	assert.Equal(t, "2027-06-13T20:00:00+02:00", edited.StartsAt)
	assert.Equal(t, int64(2), edited.Version)
	assert.Equal(t, http.StatusUnauthorized, s.Buyer.JSON(t, http.MethodPut, "/api/shows/"+sh.ID, edit, nil), "not who added it")
	tk := sellFor(t, s.Seller, sh.ID, 80, 90)
	order := s.Buyer.Order(t, tk)
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	s.Settle(t)
	require.Equal(t, http.StatusBadRequest, s.Seller.JSON(t, http.MethodPut, "/api/shows/"+sh.ID, edit, &errs))
	assert.Contains(t, errs.Errors[0].Message, "has sold")
}

// sellFor lists a ticket for a show at price with face value face and
// returns its id.
func sellFor(t *testing.T, c *apptest.Client, showID string, face, price float64) string {
	t.Helper()
	var tk struct{ ID string }
	require.Equal(t, http.StatusCreated, c.JSON(t, http.MethodPost, "/api/tickets",
		map[string]any{"showId": showID, "section": "Floor", "faceValue": face, "price": price}, &tk))
	return tk.ID
}

// The list of shows: upcoming only, soonest first or cheapest first,
// found by performer, venue or city, by one city, by the date at the
// venue; each with its count on sale and lowest price.
func TestListShows(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	a := addShow(t, s.Seller, amsterdam("Radiohead", "2027-06-12T20:00"))
	b := addShow(t, s.Seller, map[string]any{"title": "Nils Frahm", "venue": "Elbphilharmonie", "city": "Hamburg", "country": "Germany",
		"startsAt": "2027-03-01T20:00", "timeZone": "Europe/Berlin"})
	// 00:30 on 2 April in Tokyo is still 1 April in UTC: the date filter
	// means the venue's date.
	c := addShow(t, s.Seller, map[string]any{"title": "Perfume", "venue": "Tokyo Dome", "city": "Tokyo", "country": "Japan",
		"startsAt": "2027-04-02T00:30", "timeZone": "Asia/Tokyo"})
	soon := addShow(t, s.Seller, amsterdam("Starting soon", time.Now().Add(1500*time.Millisecond).Format(time.RFC3339Nano)))

	sellFor(t, s.Seller, a.ID, 50, 55)
	sellFor(t, s.Seller, a.ID, 50, 60)
	sellFor(t, s.Seller, b.ID, 90, 100)
	var detail showJSON
	require.Equal(t, http.StatusOK, s.Buyer.JSON(t, http.MethodGet, "/api/shows/"+a.ID, nil, &detail))
	assert.Equal(t, 2, detail.OnSale)
	assert.Equal(t, "55", detail.LowestPrice.String())
	require.Len(t, detail.Tickets, 2)
	assert.Equal(t, "55", fmt.Sprint(detail.Tickets[0]["price"]), "cheapest first")

	assert.Equal(t, []string{"Starting soon", "Nils Frahm", "Perfume", "Radiohead"}, listShows(t, s.Buyer, ""), "soonest first")
	assert.Equal(t, []string{"Radiohead", "Nils Frahm", "Starting soon", "Perfume"}, listShows(t, s.Buyer, "sort=price"), "cheapest first, none on sale last")
	assert.Equal(t, []string{"Nils Frahm"}, listShows(t, s.Buyer, "q=elbphil"), "by venue")
	assert.Equal(t, []string{"Perfume"}, listShows(t, s.Buyer, "q=tokyo"), "by city")
	assert.Equal(t, []string{"Starting soon", "Radiohead"}, listShows(t, s.Buyer, "city=AMSTERDAM"))
	assert.Equal(t, []string{"Perfume"}, listShows(t, s.Buyer, "from=2027-04-02&to=2027-04-02"), "the venue's date")
	assert.Equal(t, []string{"Nils Frahm", "Perfume"}, listShows(t, s.Buyer, "from=2027-02-01&to=2027-05-01"))
	assert.Equal(t, []string{"Starting soon", "Nils Frahm"}, listShows(t, s.Buyer, "limit=2"))
	assert.Equal(t, []string{"Perfume", "Radiohead"}, listShows(t, s.Buyer, "limit=2&page=2"))
	for _, bad := range []string{"from=tomorrow", "to=2027-13-01", "sort=name", "page=-1", "city=" + url.QueryEscape("a\x01b")} {
		var errs web.ErrorBody
		assert.Equal(t, http.StatusBadRequest, s.Buyer.JSON(t, http.MethodGet, "/api/shows?"+bad, nil, &errs), bad)
		require.NotEmpty(t, errs.Errors, bad)
		assert.NotEmpty(t, errs.Errors[0].Field, bad)
	}

	// Past shows drop off the lists; their page stays, without tickets.
	time.Sleep(time.Until(parseTime(t, soon.StartsAt)) + time.Second) // (the answer's start is to the second)
	assert.Equal(t, []string{"Nils Frahm", "Perfume", "Radiohead"}, listShows(t, s.Buyer, ""))
	require.Equal(t, http.StatusOK, s.Buyer.JSON(t, http.MethodGet, "/api/shows/"+soon.ID, nil, &detail))
	assert.Empty(t, detail.Tickets)
	_, doc := s.Buyer.Get(t, "/")
	assert.NotContains(t, doc.Find("#shows").Text(), "Starting soon")
	assert.Contains(t, doc.Find("#shows").Text(), "2 tickets from $55.00")
	assert.Contains(t, doc.Find("#show-"+a.ID).Text(), "Sat 12 Jun 2027, 20:00 CEST · Ziggo Dome, Amsterdam", "in the venue's zone")
	assert.Contains(t, doc.Find("#show-"+c.ID).Text(), "Fri 2 Apr 2027, 00:30 JST")
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return at
}

// A show's listing: seat and face value, the price capped at the face
// value plus PRICE_CAP_PERCENT (the field error says the highest price);
// the title is the show's unless given; a listing without a show has no
// cap; every field is in the answer, null when unset.
func TestListingsForShows(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	sh := addShow(t, s.Seller, amsterdam("Radiohead", "2027-06-12T20:00"))
	post := func(body map[string]any) (int, map[string]any, map[string]string) {
		var out map[string]any
		status := s.Seller.JSON(t, http.MethodPost, "/api/tickets", body, &out)
		fields := map[string]string{}
		if errs, ok := out["errors"].([]any); ok {
			for _, e := range errs {
				m := e.(map[string]any)
				fields[fmt.Sprint(m["field"])] = fmt.Sprint(m["message"])
			}
		}
		return status, out, fields
	}

	status, tk, _ := post(map[string]any{"showId": sh.ID, "section": "A", "row": "12", "seat": "7", "faceValue": 80, "price": 96})
	require.Equal(t, http.StatusCreated, status, "exactly the face value plus 20%%")
	assert.Equal(t, "Radiohead", tk["title"], "the show's title")
	assert.Equal(t, sh.ID, tk["showId"])
	assert.Equal(t, "12", tk["row"])
	assert.Equal(t, float64(80), tk["faceValue"])

	status, _, fields := post(map[string]any{"showId": sh.ID, "faceValue": 80, "price": 96.01})
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "Price must be at most $96.00 (the face value plus 20%)", fields["price"])
	status, _, fields = post(map[string]any{"showId": sh.ID, "price": 50})
	require.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, fields["faceValue"], "Face value is required")
	for _, face := range []any{0, -5, "80", 12.345, 2_000_000} {
		status, _, fields = post(map[string]any{"showId": sh.ID, "faceValue": face, "price": 50})
		require.Equal(t, http.StatusBadRequest, status, "face value %v", face)
		assert.NotEmpty(t, fields["faceValue"], "face value %v", face)
	}
	status, _, fields = post(map[string]any{"showId": "6b0000000000000000000000", "price": 50})
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "No such show", fields["showId"])
	status, _, fields = post(map[string]any{"showId": sh.ID, "faceValue": 80, "price": 90, "seat": strings.Repeat("9", 21)})
	require.Equal(t, http.StatusBadRequest, status)
	assert.NotEmpty(t, fields["seat"])
	status, _, fields = post(map[string]any{"showId": 7, "price": 90})
	require.Equal(t, http.StatusBadRequest, status)
	assert.NotEmpty(t, fields["showId"])

	// Without a show: the seed's listing, no cap, every new field null.
	status, plain, _ := post(map[string]any{"title": "Mystery gig", "price": 1000})
	require.Equal(t, http.StatusCreated, status)
	for _, f := range []string{"showId", "section", "row", "seat", "faceValue", "orderId"} {
		v, ok := plain[f]
		assert.True(t, ok, "%s is always in the answer", f)
		assert.Nil(t, v, "%s is null when unset", f)
	}
	status, _, fields = post(map[string]any{"price": 10})
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "Title is required", fields["title"], "without a show the title is needed")

	// A PUT of the seed's {title, price} keeps the show and the seat; the
	// cap holds on edits; the show does not change.
	id := tk["id"].(string)
	var put map[string]any
	require.Equal(t, http.StatusOK, s.Seller.JSON(t, http.MethodPut, "/api/tickets/"+id, map[string]any{"title": "Radiohead, floor", "price": 90}, &put))
	assert.Equal(t, sh.ID, put["showId"])
	assert.Equal(t, "A", put["section"])
	assert.Equal(t, float64(80), put["faceValue"])
	require.Equal(t, http.StatusBadRequest, s.Seller.JSON(t, http.MethodPut, "/api/tickets/"+id, map[string]any{"title": "x", "price": 97}, nil))
	other := addShow(t, s.Seller, amsterdam("Other", "2027-07-01T20:00"))
	require.Equal(t, http.StatusBadRequest, s.Seller.JSON(t, http.MethodPut, "/api/tickets/"+id, map[string]any{"title": "x", "price": 90, "showId": other.ID}, nil))
	require.Equal(t, http.StatusOK, s.Seller.JSON(t, http.MethodPut, "/api/tickets/"+id, map[string]any{"title": "x", "price": 90, "row": nil}, &put))
	assert.Nil(t, put["row"], "null clears")
}

// PRICE_CAP_PERCENT=0 turns the cap off: a show's listing needs no face
// value and may ask any price.
func TestNoPriceCap(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t, apptest.WithConfig(func(c *app.Config) { c.PriceCapPercent = 0 }))
	sh := addShow(t, s.Seller, amsterdam("Radiohead", "2027-06-12T20:00"))
	require.Equal(t, http.StatusCreated, s.Seller.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"showId": sh.ID, "price": 5000}, nil))
	require.Equal(t, http.StatusCreated, s.Seller.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"showId": sh.ID, "faceValue": 10, "price": 5000}, nil))
}

// A show's page follows its tickets live: a new seat goes into its place
// by price, a reserved one goes; another show's listings are no news.
// The seller's dashboard and the ticket's page give the show's time at
// the venue.
func TestShowPageIsLive(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	sh := addShow(t, s.Seller, amsterdam("Radiohead", "2027-06-12T20:00"))
	other := addShow(t, s.Seller, amsterdam("Other", "2027-06-13T20:00"))
	cheap := sellFor(t, s.Seller, sh.ID, 50, 50)
	dear := sellFor(t, s.Seller, sh.ID, 50, 60)

	_, doc := s.Buyer.Get(t, "/shows/"+sh.ID)
	assert.Equal(t, "/shows/"+sh.ID+"/stream", doc.Find("#ticket-list").AttrOr("sse-connect", ""))
	assert.Equal(t, []string{"ticket-" + cheap, "ticket-" + dear}, doc.Find("#ticket-rows li[id]").Map(func(_ int, li *goquery.Selection) string { return li.AttrOr("id", "") }), "cheapest first")
	events := s.Buyer.Stream(t, "/shows/"+sh.ID+"/stream", "")
	sellFor(t, s.Seller, other.ID, 50, 55)
	middle := sellFor(t, s.Seller, sh.ID, 50, 55)
	e := apptest.Next(t, events)
	assert.Contains(t, e.Data, `id="ticket-`+middle+`"`, "the other show's listing sent nothing")
	assert.Contains(t, e.Data, `hx-swap-oob="beforebegin:#ticket-`+dear+`"`, "between the two, by price")
	s.Buyer.Order(t, cheap)
	e = apptest.Next(t, events)
	assert.Equal(t, `<li id="ticket-`+cheap+`" hx-swap-oob="delete"></li>`, strings.TrimSpace(e.Data))

	_, doc = s.Seller.Get(t, "/sell")
	assert.Contains(t, doc.Find("#dashboard").Text(), "Sat 12 Jun 2027, 20:00 CEST · Ziggo Dome, Amsterdam")
	_, doc = s.Buyer.Get(t, "/tickets/"+dear)
	assert.Contains(t, doc.Find("main").Text(), "Sat 12 Jun 2027, 20:00 CEST · Ziggo Dome, Amsterdam")
	assert.Contains(t, doc.Find("main").Text(), "Section Floor")
	_, doc = s.Buyer.Get(t, "/tickets/"+s.Seller.Sell(t, "Mystery gig", 10))
	assert.Contains(t, doc.Find("main").Text(), "belongs to no show")
}
