package app_test

import (
	"context"
	"fmt"
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
	orderID := s.Buyer.Order(t, s.Seller.Sell(t, "Radiohead, row 12", 89.5))
	s.Seller.Sell(t, "Nils Frahm, balcony", 45)
	for _, js := range []bool{true, false} {
		for _, width := range []int{1280, 390} {
			tab := person(t, js)
			require.NoError(t, chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				return tg.Call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500}, nil)
			})))
			name := func(page string) string { return fmt.Sprintf("%s-%d-js-%v", page, width, js) }
			require.NoError(t, chromedp.Do(tab, chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible("#ticket-rows"), shot(t, name("list"))))
			require.NoError(t, chromedp.Do(tab, signInInBrowser(s.URL, "/auth/signin", "buyer@example.com")...))
			require.NoError(t, chromedp.Do(tab,
				chromedp.Navigate(s.URL+"/orders/"+orderID), waitText("#order-status", "reserved for you"), shot(t, name("order")),
			))
		}
	}
}
