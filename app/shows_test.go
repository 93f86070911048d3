package app_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
	"ticketing/app/web"
)

// addShowAt adds a show in Amsterdam starting at start, as seller.
func addShowAt(t *testing.T, seller *apptest.Client, title string, start time.Time) string {
	t.Helper()
	var sh struct{ ID string }
	require.Equal(t, http.StatusCreated, seller.JSON(t, http.MethodPost, "/api/shows", map[string]any{
		"title": title, "venue": "Paradiso", "city": "Amsterdam", "country": "Netherlands",
		"startsAt": start.Format(time.RFC3339Nano), "timeZone": "Europe/Amsterdam"}, &sh))
	return sh.ID
}

// A reservation never outlives its show's start: the deadline is the
// earlier of the window and the start.
func TestReservationEndsWhenTheShowStarts(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	start := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	show := addShowAt(t, s.Seller, "Soon", start)
	var tk struct{ ID string }
	require.Equal(t, http.StatusCreated, s.Seller.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"showId": show, "faceValue": 40, "price": 45}, &tk))
	o := s.Reserve(t, s.Buyer, tk.ID)
	assert.Equal(t, start.UTC().Format(time.RFC3339), o.ExpiresAt, "the show's start, not 15 minutes from now")

	later := addShowAt(t, s.Seller, "Later", time.Now().Add(24*time.Hour))
	require.Equal(t, http.StatusCreated, s.Seller.JSON(t, http.MethodPost, "/api/tickets", map[string]any{"showId": later, "faceValue": 40, "price": 45}, &tk))
	o = s.Reserve(t, s.Buyer, tk.ID)
	expires, err := time.Parse(time.RFC3339, o.ExpiresAt)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(15*time.Minute), expires, 5*time.Second, "the window")
}

// 50 buyers rush a show's 200 tickets while it starts: every reservation the
// orders module took was made before the start and ends by it, every
// attempt after it is a 400 that says the show has started, and every
// cross-module rule holds.
func TestShowStartingDuringTheRush(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	show := addShowAt(t, s.Seller, "Doors open", time.Now().Add(time.Hour))
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		var tk struct{ ID string }
		require.Equal(t, http.StatusCreated, s.Seller.JSON(t, http.MethodPost, "/api/tickets",
			map[string]any{"showId": show, "seat": fmt.Sprint(i + 1), "faceValue": 50, "price": 55}, &tk))
		ids[i] = tk.ID
	}
	buyers := make([]*apptest.Client, 50)
	for b := range buyers {
		buyers[b] = s.Client(t)
		buyers[b].SignUp(t, fmt.Sprintf("fan%d@example.com", b), "password")
	}
	// The doors are moved to open in 1.5 s: the orders module learns the
	// new start from show:updated, as it would any edit.
	start := time.Now().Add(1500 * time.Millisecond)
	require.Equal(t, http.StatusOK, s.Seller.JSON(t, http.MethodPut, "/api/shows/"+show, map[string]any{
		"title": "Doors open", "venue": "Paradiso", "city": "Amsterdam", "country": "Netherlands",
		"startsAt": start.Format(time.RFC3339Nano), "timeZone": "Europe/Amsterdam"}, nil))

	var next, reserved, refused atomic.Int64
	var mu sync.Mutex
	var late []string
	var wg sync.WaitGroup
	for _, buyer := range buyers {
		wg.Go(func() {
			for time.Now().Before(start.Add(time.Second)) {
				i := int(next.Add(1)-1) % n
				sent := time.Now()
				var o struct {
					apptest.OrderJSON
					web.ErrorBody
				}
				status, err := buyer.Try(http.MethodPost, "/api/orders", map[string]string{"ticketId": ids[i]}, &o)
				if err != nil {
					t.Error(err)
					return
				}
				switch {
				case status == http.StatusCreated:
					reserved.Add(1)
					if exp, err := time.Parse(time.RFC3339, o.ExpiresAt); err != nil || exp.After(start) {
						mu.Lock()
						late = append(late, o.ExpiresAt)
						mu.Unlock()
					}
				case status == http.StatusBadRequest && sent.After(start):
					if len(o.Errors) == 0 || o.Errors[0].Message != "This show has started; its tickets can no longer be reserved" {
						t.Errorf("after the start: %v", o.Errors)
						return
					}
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Positive(t, reserved.Load(), "some reservations before the start")
	assert.Positive(t, refused.Load(), "refusals after it")
	assert.Empty(t, late, "no reservation outlives the show's start")

	orders, err := s.App.DB("orders").Read().QueryContext(context.Background(), "SELECT created_at, expires_at FROM orders")
	require.NoError(t, err)
	defer orders.Close()
	for orders.Next() {
		var created, expires string
		require.NoError(t, orders.Scan(&created, &expires))
		c, _ := time.Parse(time.RFC3339Nano, created)
		e, _ := time.Parse(time.RFC3339Nano, expires)
		assert.True(t, c.Before(start), "an order taken at %s, after the start", created)
		assert.False(t, e.After(start), "an order ending at %s, after the start", expires)
	}
	require.NoError(t, orders.Err())
	s.Settle(t)
	t.Logf("%d reserved before the start, %d refused after it", reserved.Load(), refused.Load())
}

// The price cap under concurrent listings: of 50 sellers listing at once,
// those asking more than the face value plus 20% are all refused with the
// highest price, the others all listed.
func TestPriceCapUnderConcurrentListings(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	show := addShowAt(t, s.Seller, "Capped", time.Now().Add(24*time.Hour))
	var listed, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		seller := s.Client(t)
		seller.SignUp(t, fmt.Sprintf("seller%d@example.com", i), "password")
		price := 120.0 // the cap for 100
		if i%2 == 1 {
			price = 120.01
		}
		wg.Go(func() {
			var errs web.ErrorBody
			status, err := seller.Try(http.MethodPost, "/api/tickets", map[string]any{"showId": show, "faceValue": 100, "price": price}, &errs)
			switch {
			case err != nil:
				t.Error(err)
			case status == http.StatusCreated && price == 120:
				listed.Add(1)
			case status == http.StatusBadRequest && price > 120 && len(errs.Errors) == 1 && errs.Errors[0].Field == "price" &&
				errs.Errors[0].Message == "Price must be at most $120.00 (the face value plus 20%)":
				refused.Add(1)
			default:
				t.Errorf("price %v: %d %v", price, status, errs)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(25), listed.Load())
	assert.Equal(t, int64(25), refused.Load())
	var count int
	require.NoError(t, s.App.DB("tickets").Read().QueryRow("SELECT on_sale FROM shows WHERE id = ?", show).Scan(&count))
	assert.Equal(t, 25, count, "the show's count on sale follows its listings")
}

// The website, as a seller and a buyer meet shows: the seller finds no
// show for their ticket, adds it, and lists a seat for it; the buyer finds
// it from the front page by city, opens the show and buys the seat. With
// JavaScript and without, the buyer on a 390 px phone.
func TestBrowserSellForANewShowAndBuyIt(t *testing.T) {
	t.Parallel()
	for _, js := range []bool{true, false} {
		h := apptest.New(t)
		seller := person(t, js)
		require.NoError(t, chromedp.Do(seller, signUpInBrowser(h.URL, "seller@example.com")...))
		require.NoError(t, chromedp.Do(seller,
			chromedp.Navigate(h.URL+"/tickets/new"),
			chromedp.SendKeys("#q", "Ezra Collective"),
			chromedp.Click("#choose-show button"),
			waitText("main", "No upcoming show matches"),
			chromedp.Click(`a[href^="/shows/new"]`),
			chromedp.WaitVisible("#show-form"),
		))
		title, err := chromedp.Run(seller, chromedp.Value("#title"))
		require.NoError(t, err)
		assert.Equal(t, "Ezra Collective", title, "js=%v: what was searched for", js)
		require.NoError(t, chromedp.Do(seller,
			chromedp.SendKeys("#venue", "TivoliVredenburg"),
			chromedp.SendKeys("#city", "Utrecht"),
			chromedp.SendKeys("#country", "Netherlands"),
			chromedp.SetValue("#startsAt", "2027-05-20T21:00"),
			chromedp.SendKeys("#timeZone", "Europe/Amsterdam"),
			chromedp.Click("#show-form button"),
			waitText("main", "Thu 20 May 2027, 21:00 CEST · TivoliVredenburg, Utrecht"),
			chromedp.SendKeys("#section", "Ronda"),
			chromedp.SendKeys("#row", "3"),
			chromedp.SendKeys("#seat", "14"),
			chromedp.SendKeys("#faceValue", "40"),
			chromedp.SendKeys("#price", "49"),
			chromedp.Click("#ticket-form button"),
			waitText("#price-error", "Price must be at most $48.00 (the face value plus 20%)"),
			chromedp.SetValue("#price", "48"),
			chromedp.Click("#ticket-form button"),
			waitText("main", "Section Ronda · Row 3 · Seat 14"),
		))

		buyer := person(t, js)
		require.NoError(t, chromedp.Do(buyer, viewport(390)))
		require.NoError(t, chromedp.Do(buyer, signUpInBrowser(h.URL, "buyer@example.com")...))
		require.NoError(t, chromedp.Do(buyer,
			chromedp.Navigate(h.URL+"/"),
			chromedp.SetValue("#city", "Utrecht"),
			chromedp.Click("#show-filters button"),
			waitJS(`location.search.includes("city=Utrecht") && document.querySelector("#city").value === "Utrecht"`, "the city filter was not applied"),
			waitText("#shows", "Ezra Collective"),
			waitText("#shows", "1 ticket from $48.00"),
			chromedp.Click(`#shows a[href^="/shows/"]`),
			waitText("h1", "Ezra Collective"),
			waitText("#ticket-rows", "Section Ronda · Row 3 · Seat 14"),
			chromedp.Click(`#ticket-rows form[action="/orders"] button`),
			waitText("#order-status", "reserved for you"),
			waitText("main", "Thu 20 May 2027, 21:00 CEST · TivoliVredenburg, Utrecht"),
			chromedp.Click(`form[action$="/pay"] button`),
			waitText("main", "TEST MODE"),
			chromedp.Click(`.test-checkout form[action$="/pay"] button`),
			waitText("#order-status", "Paid"),
		))
		fits, err := chromedp.Run(buyer, chromedp.EvaluateAsDevTools[bool](`document.documentElement.scrollWidth <= Math.min(innerWidth, screen.width)`))
		require.NoError(t, err)
		assert.True(t, fits, "js=%v: the order page fits the phone", js)
	}
}
