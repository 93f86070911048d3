package app_test

import (
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

// TestScreenshots saves the main pages at a desktop's 1280 px and a
// phone's 390 px, with JavaScript on and off, to $SCREENSHOT_DIR; it runs
// only when that is set (the pictures are for people to look at).
func TestScreenshots(t *testing.T) {
	if os.Getenv("SCREENSHOT_DIR") == "" {
		t.Skip("set SCREENSHOT_DIR to take the screenshots")
	}
	s := apptest.NewShop(t)
	var showID string
	resp := s.Seller.Form(t, "/account", url.Values{"displayName": {"Night Owl Tickets"}})
	resp.Body.Close()
	require.Equal(t, 303, resp.StatusCode)
	for _, sh := range []struct {
		title, venue, city, country, start, zone string
		seats                                    int
	}{
		{"Radiohead", "Ziggo Dome", "Amsterdam", "Netherlands", "2027-06-12T20:00", "Europe/Amsterdam", 3},
		{"Nils Frahm", "Elbphilharmonie", "Hamburg", "Germany", "2027-03-01T20:00", "Europe/Berlin", 2},
		{"Perfume", "Tokyo Dome", "Tokyo", "Japan", "2027-04-02T18:30", "Asia/Tokyo", 1},
		{"Arooj Aftab", "Lincoln Center", "New York", "United States", "2027-02-14T19:30", "America/New_York", 0},
	} {
		var created struct{ ID string }
		require.Equal(t, 201, s.Seller.JSON(t, "POST", "/api/shows", map[string]any{"title": sh.title, "venue": sh.venue, "city": sh.city,
			"country": sh.country, "startsAt": sh.start, "timeZone": sh.zone, "description": "Doors open an hour before the show."}, &created))
		for i := range sh.seats {
			require.Equal(t, 201, s.Seller.JSON(t, "POST", "/api/tickets", map[string]any{"showId": created.ID, "section": "Floor", "row": fmt.Sprint(i + 3),
				"seat": fmt.Sprint(10 + i), "faceValue": 80, "price": 80 + 5*i}, nil))
		}
		if showID == "" {
			showID = created.ID
		}
	}
	reserved := s.Seller.Sell(t, "Radiohead, row 12", 89.5)
	orderID := s.Buyer.Order(t, reserved)
	onSale := s.Seller.Sell(t, "Nils Frahm, balcony", 45)
	sold := s.Seller.Sell(t, "Björk, floor", 120.5)
	s.Settle(t)
	require.Equal(t, 303, s.Seller.Attach(t, sold, "ticket.pdf", []byte("%PDF-1.4\n%%EOF\n"), "", ""))
	s.Settle(t)
	paidOrder := s.Buyer.Order(t, sold)
	require.Equal(t, 201, s.Buyer.JSON(t, "POST", "/api/payments", map[string]string{"orderId": paidOrder, "token": "tok_visa"}, nil))
	s.Settle(t)
	for _, js := range []bool{true, false} {
		for _, width := range []int{1280, 390} {
			tab := person(t, js)
			require.NoError(t, chromedp.Do(tab, viewport(width)))
			name := func(page string) string { return fmt.Sprintf("%s-%d-js-%v", page, width, js) }
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible("#ticket-rows"), shot(t, name("list"))))
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/shows/"+showID), chromedp.WaitVisible("#ticket-rows"), shot(t, name("show"))))
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/auth/signin"), chromedp.WaitVisible("#email"), shot(t, name("signin"))))
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/auth/signup"), chromedp.WaitVisible("#displayName"), shot(t, name("signup"))))
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/auth/forgot"), chromedp.WaitVisible("#forgot-form"), shot(t, name("forgot"))))
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/auth/reset?token=x"), chromedp.WaitVisible("#reset-form"), shot(t, name("reset"))))
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/tickets/000000000000000000000000"), chromedp.WaitVisible("main h1"), shot(t, name("not-found"))))
			toPay := s.Buyer.Order(t, s.Seller.Sell(t, fmt.Sprintf("Arctic Monkeys, stalls (%d px)", width), 65))
			require.NoError(t, chromedp.Do(tab, signInInBrowser(s.URL, "/auth/signin", "buyer@example.com")...))
			require.NoError(t, chromedp.Do(tab,
				chromedp.Navigate(s.URL+"/orders/"+orderID), waitText("#order-status", "reserved for you"), shot(t, name("order")),
				chromedp.Navigate(s.URL+"/orders"), chromedp.WaitVisible("main"), shot(t, name("orders")),
				chromedp.Navigate(s.URL+"/orders/"+paidOrder), waitText("#order-status", "Download your ticket"), shot(t, name("order-paid")),
				chromedp.Navigate(s.URL+"/mailbox"), chromedp.WaitVisible("main"), shot(t, name("mailbox")),
				chromedp.Navigate(s.URL+"/tickets/"+sold), waitText("main .badge", "Sold"), shot(t, name("ticket-sold-to-you")),
				chromedp.Navigate(s.URL+"/tickets/"+onSale), chromedp.WaitVisible("main"), shot(t, name("ticket-on-sale")),
				chromedp.Navigate(s.URL+"/orders/"+toPay), chromedp.Click(`form[action$="/pay"] button`), waitText("main", "TEST MODE"), shot(t, name("checkout")),
			))
			seller := person(t, js)
			require.NoError(t, chromedp.Do(seller, viewport(width)))
			require.NoError(t, chromedp.Do(seller, signInInBrowser(s.URL, "/auth/signin", "seller@example.com")...))
			require.NoError(t, chromedp.Do(seller,
				chromedp.Navigate(s.URL+"/sell"), chromedp.WaitVisible("#dashboard"), shot(t, name("dashboard")),
				chromedp.Navigate(s.URL+"/tickets/"+onSale), chromedp.WaitVisible("#attachment-form"), shot(t, name("ticket-seller")),
				chromedp.Navigate(s.URL+"/tickets/"+reserved+"/edit"), chromedp.WaitVisible("#ticket-form"), shot(t, name("edit-reserved")),
				chromedp.Navigate(s.URL+"/tickets/"+onSale+"/edit"), chromedp.WaitVisible("#ticket-form"), shot(t, name("edit")),
				chromedp.Navigate(s.URL+"/tickets/new?show=none"), chromedp.WaitVisible("#ticket-form"), shot(t, name("new")),
				chromedp.Navigate(s.URL+"/tickets/new"), chromedp.WaitVisible("#choose-show"), shot(t, name("choose-show")),
				chromedp.Navigate(s.URL+"/tickets/new?show="+showID), chromedp.WaitVisible("#ticket-form"), shot(t, name("new-for-show")),
				chromedp.Navigate(s.URL+"/shows/new"), chromedp.WaitVisible("#show-form"), shot(t, name("add-show")),
				chromedp.Navigate(s.URL+"/account"), chromedp.WaitVisible("#account-form"), shot(t, name("account")),
			))
		}
	}
}
