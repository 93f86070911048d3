package app_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

var orderURL = regexp.MustCompile(`/orders/[0-9a-f]{24}$`)

// Buying from the front page's list puts the order page at its own URL,
// whatever the live list does meanwhile (it removes the bought ticket's
// row, with the form that was submitted): a reload, a bookmark or a copied
// link is the order.
func TestBrowserPurchaseFromTheListIsAtTheOrdersURL(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	seller, buyer := person(t, true), person(t, true)
	require.NoError(t, chromedp.Do(seller, signUpInBrowser(h.URL, "seller@example.com")...))
	require.NoError(t, chromedp.Do(seller, sellInBrowser(h.URL, "Front page show", "40")...))
	require.NoError(t, chromedp.Do(buyer, signUpInBrowser(h.URL, "buyer@example.com")...))
	require.NoError(t, chromedp.Do(buyer,
		chromedp.Navigate(h.URL+"/"),
		waitText("#ticket-rows", "Front page show"),
		waitSSE(),
		chromedp.Click(`#ticket-rows form[action="/orders"] button`),
		waitText("#order-status", "reserved for you"),
	))
	assert.Regexp(t, orderURL, location(buyer, t), "the address bar shows the order")
	require.NoError(t, chromedp.Do(buyer, chromedp.Reload(), waitText("#order-status", "reserved for you")))
	assert.Regexp(t, orderURL, location(buyer, t))
}

// waitSSE waits until the page's live stream is open, so that the list
// changes under the click as it does for a real buyer.
func waitSSE() chromedp.Action[chromedp.Void] {
	return waitJS(`(() => {
		const e = document.querySelector("[sse-connect]");
		const d = e && e["htmx-internal-data"];
		return !!(d && d.sseEventSource && d.sseEventSource.readyState === 1);
	})()`, "the live stream never opened")
}

// A refused edit (the ticket was reserved meanwhile) re-renders the same
// edit form, not a listing form that would list a duplicate; a reserved
// or sold ticket's edit page says why and has no Save button.
func TestBrowserRefusedEditStaysAnEdit(t *testing.T) {
	t.Parallel()
	for _, js := range []bool{true, false} {
		s := apptest.NewShop(t)
		id := s.Seller.Sell(t, "Editable show", 30)
		seller := person(t, js)
		require.NoError(t, chromedp.Do(seller, signInInBrowser(s.URL, "/auth/signin", "seller@example.com")...))
		require.NoError(t, chromedp.Do(seller, chromedp.Navigate(s.URL+"/tickets/"+id+"/edit"), chromedp.WaitVisible("#title")))
		s.Buyer.Order(t, id) // reserved while the form is open
		require.NoError(t, chromedp.Do(seller,
			chromedp.Click("#ticket-form button"),
			waitText("main", "Cannot edit a reserved ticket"),
		))
		action, err := chromedp.Run(seller, chromedp.EvaluateAsDevTools[string](`(document.querySelector("#ticket-form") || {}).action || ""`))
		require.NoError(t, err)
		assert.False(t, strings.HasSuffix(action, "/tickets"), "js=%v: the refused form must not post to /tickets (a new listing): %q", js, action)
		text, err := chromedp.Run(seller, chromedp.Text("main"))
		require.NoError(t, err)
		assert.NotContains(t, text, "List ticket", "js=%v", js)
		title, err := chromedp.Run(seller, chromedp.Title())
		require.NoError(t, err)
		assert.NotContains(t, title, "Edit  ·", "js=%v: the title names the ticket", js)

		// The edit page of a reserved ticket: why, and no Save.
		require.NoError(t, chromedp.Do(seller, chromedp.Navigate(s.URL+"/tickets/"+id+"/edit"), waitText("main", "reserved")))
		buttons, err := chromedp.Run(seller, chromedp.EvaluateAsDevTools[int](`document.querySelectorAll("main form#ticket-form button").length`))
		require.NoError(t, err)
		assert.Zero(t, buttons, "js=%v: no Save button on a reserved ticket's edit page", js)
	}
}

// A sold ticket's page says it is sold, and links its buyer's order.
func TestBrowserSoldTicketSaysSold(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	id := s.Seller.Sell(t, "Sold show", 30)
	order := s.Buyer.Order(t, id)
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	s.Settle(t)
	for _, js := range []bool{true, false} {
		buyer := person(t, js)
		require.NoError(t, chromedp.Do(buyer, signInInBrowser(s.URL, "/auth/signin", "buyer@example.com")...))
		require.NoError(t, chromedp.Do(buyer, chromedp.Navigate(s.URL+"/tickets/"+id), waitText("main .badge", "Sold")))
		text, err := chromedp.Run(buyer, chromedp.Text("main"))
		require.NoError(t, err)
		assert.NotContains(t, text, "someone is checking out", "js=%v", js)
		href, err := chromedp.Run(buyer, chromedp.EvaluateAsDevTools[string](`(document.querySelector('main a[href^="/orders/"]') || {}).getAttribute ? document.querySelector('main a[href^="/orders/"]').getAttribute("href") : ""`))
		require.NoError(t, err)
		assert.Equal(t, "/orders/"+order, href, "js=%v: the buyer is linked to their order", js)
	}
}

// After signing out, Back does not bring a private page back: not from the
// browser's cache (JS off: signed-in pages are no-store) and not from
// htmx's history cache (JS on: signed-in pages are never put in it, and
// signing out clears it).
func TestBrowserBackAfterSignOutShowsNoPrivatePage(t *testing.T) {
	t.Parallel()
	for _, js := range []bool{true, false} {
		s := apptest.NewShop(t)
		id := s.Seller.Sell(t, "Private order show", 30)
		buyer := person(t, js)
		require.NoError(t, chromedp.Do(buyer, signUpInBrowser(s.URL, "fan@example.com")...))
		require.NoError(t, chromedp.Do(buyer,
			chromedp.Navigate(s.URL+"/tickets/"+id),
			chromedp.Click(`form[action="/orders"] button`),
			waitText("#order-status", "reserved for you"),
			chromedp.Navigate(s.URL+"/orders"), // a second private page, so Back has somewhere private to go
			waitText("main", "Private order show"),
			chromedp.Click(`form[action="/auth/signout"] button`),
			waitText("header", "Sign in"),
			chromedp.NavigateBack(),
			chromedp.Sleep(500*time.Millisecond), // whatever Back brings has arrived
		))
		text, err := chromedp.Run(buyer, chromedp.Text("body"))
		require.NoError(t, err)
		assert.NotContains(t, text, "Private order show", "js=%v: Back after sign-out shows a signed-in page", js)
		assert.NotContains(t, text, "Sign out", "js=%v", js)
	}
}

// No page is wider than a 360 px phone: nothing scrolls sideways, the
// signed-in menu included.
func TestBrowserPagesFitA360PixelPhone(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	reserved := s.Seller.Sell(t, "A rather long concert title, with its venue and the row", 1234.5)
	order := s.Buyer.Order(t, reserved)
	s.Seller.Sell(t, "Another show", 45)
	show := addShowAt(t, s.Seller, "The Longest Performer Name Of The Season, With Friends", time.Now().Add(72*time.Hour))
	var seat struct{ ID string }
	require.Equal(t, http.StatusCreated, s.Seller.JSON(t, http.MethodPost, "/api/tickets",
		map[string]any{"showId": show, "section": "Balcony left", "row": "AA", "seat": "1021", "faceValue": 1000, "price": 1200}, &seat))
	showOrder := s.Buyer.Order(t, seat.ID)
	s.Settle(t)
	pages := map[string][]string{
		"seller@example.com": {"/", "/tickets/" + reserved, "/tickets/new", "/tickets/new?show=" + show, "/shows/new", "/shows/" + show + "/edit", "/sell", "/orders", "/auth/signout", "/account"},
		"buyer@example.com":  {"/orders/" + order, "/orders/" + showOrder, "/orders"},
		"":                   {"/", "/auth/signin", "/auth/signup", "/tickets/" + reserved, "/shows/" + show, "/tickets/" + seat.ID},
	}
	for _, js := range []bool{true, false} {
		for who, paths := range pages {
			tab := person(t, js)
			require.NoError(t, chromedp.Do(tab, viewport(360)))
			if who != "" {
				require.NoError(t, chromedp.Do(tab, signInInBrowser(s.URL, "/auth/signin", who)...))
			}
			for _, path := range paths {
				require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+path), chromedp.WaitVisible("main")))
				// A phone's browser widens the layout to fit what overflows
				// (innerWidth grows with it), so the width to fit is the
				// screen's.
				fits, err := chromedp.Run(tab, chromedp.EvaluateAsDevTools[string](
					`(() => { const w = Math.min(window.innerWidth, screen.width); const s = document.documentElement.scrollWidth; return s <= w ? "" : s + " > " + w; })()`))
				require.NoError(t, err)
				assert.Empty(t, fits, "js=%v %s as %q: the page is wider than the phone", js, path, who)
			}
		}
	}
}

// Back after paying shows the test checkout as paid, with a link to the
// order and no Pay button; the button that leaves checkout says what it
// does (the order stays reserved, it is not cancelled).
func TestBrowserBackAfterPayingShowsThePaidCheckout(t *testing.T) {
	t.Parallel()
	for _, js := range []bool{true, false} {
		s := apptest.NewShop(t)
		id := s.Seller.Sell(t, "Paid show", 30)
		buyer := person(t, js)
		require.NoError(t, chromedp.Do(buyer, signInInBrowser(s.URL, "/auth/signin", "buyer@example.com")...))
		require.NoError(t, chromedp.Do(buyer,
			chromedp.Navigate(s.URL+"/tickets/"+id),
			chromedp.Click(`form[action="/orders"] button`),
			waitText("#order-status", "reserved for you"),
		))
		order := location(buyer, t)
		require.NoError(t, chromedp.Do(buyer,
			chromedp.Click(`form[action$="/pay"] button`),
			waitText(".test-mode", "TEST MODE"),
		))
		leave, err := chromedp.Run(buyer, chromedp.Text(`main a[href^="/orders/"]`))
		require.NoError(t, err)
		assert.NotContains(t, strings.ToLower(leave), "cancel", "js=%v: leaving checkout does not cancel the order, and must not say so", js)
		require.NoError(t, chromedp.Do(buyer,
			chromedp.Click(`form[action$="/pay"] button`),
			waitText("#order-status", "Paid"),
			back(js),
			waitText("main", "paid"),
		))
		pay, err := chromedp.Run(buyer, chromedp.EvaluateAsDevTools[int](`document.querySelectorAll('main form[action$="/pay"] button:not([disabled])').length`))
		require.NoError(t, err)
		assert.Zero(t, pay, "js=%v: no Pay button on a paid checkout", js)
		href, err := chromedp.Run(buyer, chromedp.EvaluateAsDevTools[string](`document.querySelector('main a[href^="/orders/"]').getAttribute("href")`))
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(order, href), "js=%v: the paid checkout links the order (%s, %s)", js, href, order)
	}
}

// back presses the browser's Back button. With JS on, htmx handles Back
// itself and no page loads, so chromedp.NavigateBack would wait forever.
func back(js bool) chromedp.Action[chromedp.Void] {
	if !js {
		return chromedp.NavigateBack()
	}
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.EvaluateAsDevTools[any](`history.back()`)(ctx, tg)
		return err
	})
}

// Without JavaScript the order page states its deadline once (the
// countdown beside it needs the script); with it, the countdown shows.
func TestBrowserOrderDeadlineIsSaidOnce(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	order := s.SellAndReserve(t, 30)
	for _, js := range []bool{true, false} {
		buyer := person(t, js)
		require.NoError(t, chromedp.Do(buyer, signInInBrowser(s.URL, "/auth/signin", "buyer@example.com")...))
		require.NoError(t, chromedp.Do(buyer, chromedp.Navigate(s.URL+"/orders/"+order), waitText("#order-status", "reserved for you")))
		if js {
			require.NoError(t, chromedp.Do(buyer, waitText("#order-status", "left)")))
		}
		text, err := chromedp.Run(buyer, chromedp.Text("#order-status"))
		require.NoError(t, err)
		assert.Equal(t, 1, strings.Count(text, "UTC"), "js=%v: %q", js, text)
	}
}

// Focus follows htmx's swaps: to the first invalid field of a refused
// form, to the heading of a page reached by a boosted link.
func TestBrowserFocusFollowsSwaps(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	p := person(t, true)
	focused := func() string {
		id, err := chromedp.Run(p, chromedp.EvaluateAsDevTools[string](`document.activeElement ? (document.activeElement.id || document.activeElement.tagName) : ""`))
		require.NoError(t, err)
		return id
	}
	require.NoError(t, chromedp.Do(p,
		chromedp.Navigate(h.URL+"/auth/signup"),
		chromedp.WaitVisible("#email"),
		chromedp.SendKeys("#displayName", "Fan"),
		chromedp.SendKeys("#email", "not-an-email"),
		chromedp.SendKeys("#password", "password"),
		chromedp.Click("#signup-form button"),
		waitText("#email-error", "Email must be valid"),
	))
	assert.Eventually(t, func() bool { return focused() == "email" }, 5*time.Second, 20*time.Millisecond, "the invalid field has focus: %s", focused())
	require.NoError(t, chromedp.Do(p,
		chromedp.Click(`header a[href="/auth/signin"]`),
		waitText("main h1", "Sign in"),
	))
	assert.Eventually(t, func() bool { return focused() == "H1" }, 5*time.Second, 20*time.Millisecond, "the new page's heading has focus: %s", focused())
}

// Times are <time datetime> in UTC; with JS the browser shows them in the
// visitor's zone.
func TestBrowserTimesInTheVisitorsZone(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	order := s.SellAndReserve(t, 30)
	for _, js := range []bool{true, false} {
		buyer := person(t, js)
		require.NoError(t, chromedp.Do(buyer, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			return tg.Call(ctx, "Emulation.setTimezoneOverride", map[string]any{"timezoneId": "Asia/Tokyo"}, nil)
		})))
		require.NoError(t, chromedp.Do(buyer, signInInBrowser(s.URL, "/auth/signin", "buyer@example.com")...))
		require.NoError(t, chromedp.Do(buyer, chromedp.Navigate(s.URL+"/orders/"+order), waitText("#order-status", "reserved for you")))
		text, err := chromedp.Run(buyer, chromedp.Text("#order-status strong time"))
		require.NoError(t, err)
		if js {
			assert.Contains(t, text, "GMT+9", "the visitor's zone")
		} else {
			assert.Contains(t, text, "UTC")
		}
		iso, err := chromedp.Run(buyer, chromedp.AttributeValue("#order-status strong time", "datetime"))
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(iso.Value, "Z"), "machine-readable UTC: %q", iso.Value)
	}
}

// The live list sends only swaps whose targets the page holds: a sale
// (reserved, then sold), a listing, a release and an edit raise no
// htmx:oobErrorNoTarget in an open front page.
func TestBrowserLiveListRaisesNoSwapErrors(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	sold := s.Seller.Sell(t, "Sold during the visit", 30)
	viewer := person(t, true)
	require.NoError(t, chromedp.Do(viewer,
		chromedp.Navigate(s.URL+"/"),
		waitText("#ticket-rows", "Sold during the visit"),
		waitSSE(),
		waitJS(`window.swapErrors = []; document.addEventListener("htmx:oobErrorNoTarget", e => swapErrors.push(e.detail.content.outerHTML)); true`, "no listener"),
	))
	listed := s.Seller.Sell(t, "Listed during the visit", 20)
	order := s.Buyer.Order(t, sold)
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	s.Settle(t)
	back := s.Buyer.Order(t, listed)
	require.Equal(t, http.StatusNoContent, s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+back, nil).StatusCode)
	require.Equal(t, http.StatusOK, s.Seller.JSON(t, http.MethodPut, "/api/tickets/"+listed, map[string]any{"title": "Edited during the visit", "price": 25}, nil))
	require.NoError(t, chromedp.Do(viewer, waitText("#ticket-rows", "Edited during the visit")))
	text, err := chromedp.Run(viewer, chromedp.Text("#ticket-list"))
	require.NoError(t, err)
	assert.NotContains(t, text, "Sold during the visit")
	assert.NotContains(t, text, "No tickets for sale yet")
	errs, err := chromedp.Run(viewer, chromedp.EvaluateAsDevTools[[]string](`swapErrors`))
	require.NoError(t, err)
	assert.Empty(t, errs, "swaps without a target")
}

// With JS, htmx shows what the server answers when it is not a success,
// as a page load would: the sign-in form saying there were too many
// attempts (429), the page of a ticket that is not there (404).
func TestBrowserRefusalsAndErrorPagesShowWithJS(t *testing.T) {
	t.Parallel()
	h := apptest.New(t)
	h.Client(t).SignUp(t, "fan@example.com", "password")
	api := h.Client(t)
	for range 10 {
		require.Equal(t, http.StatusBadRequest, api.JSON(t, http.MethodPost, "/api/users/signin", map[string]string{"email": "fan@example.com", "password": "wrong"}, nil))
	}
	p := person(t, true)
	require.NoError(t, chromedp.Do(p, signInInBrowser(h.URL, "/auth/signin", "fan@example.com")[:5]...))
	require.NoError(t, chromedp.Do(p, waitText("#signin-form .form-message", "Too many sign-in attempts")))
	require.NoError(t, chromedp.Do(p,
		waitJS(`(() => { const a = document.createElement("a"); a.id = "gone"; a.href = "/tickets/000000000000000000000000"; a.textContent = "gone"; document.querySelector("main").append(a); htmx.process(a); a.click(); return true })()`, "no link"),
		waitText("main h1", "Not found"),
	))
}
