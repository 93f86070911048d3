package app_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
)

// The website in a real browser: headless Chromium driven by chromedp,
// one browser for the whole package, a separate browser context (its own
// cookies) per person, with and without JavaScript. Each scenario saves
// screenshots of its key pages to $SCREENSHOT_DIR (default: the test's
// temporary directory).

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// person returns a new tab in its own browser context, signed in as no one.
func person(t *testing.T, js bool) context.Context {
	t.Helper()
	path := chromium()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not installed (apt-get install -y chromium)")
		}
		t.Skip("chromium not installed: the browser tests need it (apt-get install -y chromium)")
	}
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-quic", true),
			chromedp.WindowSize(1200, 900),
		)
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(alloc)
		browser.ctx, browser.cancel = ctx, func() { cancel(); cancelAlloc() }
		browser.err = chromedp.Do(ctx) // start it
	})
	require.NoError(t, browser.err)
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	if !js {
		require.NoError(t, chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			return tg.Call(ctx, "Emulation.setScriptExecutionDisabled", map[string]any{"value": true}, nil)
		})))
	}
	return ctx
}

func shot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// waitText waits until the element's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.innerText.includes(%q); })()`, sel, want)
	return waitJS(js, fmt.Sprintf("%s never contained %q", sel, want))
}

// waitJS waits up to 15 s until the expression js is true in the page;
// failing, it says never and shows the page's body.
func waitJS(js, never string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		deadline := time.Now().Add(15 * time.Second)
		for {
			ok, err := chromedp.EvaluateAsDevTools[bool](js)(ctx, tg)
			if err == nil && ok {
				return nil
			}
			if time.Now().After(deadline) {
				html, _ := chromedp.OuterHTML("body")(ctx, tg)
				return fmt.Errorf("%s; body: %.2000s", never, html)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// viewport sets the tab's width, as a phone (under 500 px) or a desktop.
func viewport(width int) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		return tg.Call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500}, nil)
	})
}

func location(ctx context.Context, t *testing.T) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	return loc
}

// displayName is the name a test person signs up with: "Seller" for
// seller@example.com.
func displayName(email string) string {
	local, _, _ := strings.Cut(email, "@")
	return strings.ToUpper(local[:1]) + local[1:]
}

func signUpInBrowser(base, email string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + "/auth/signup"),
		chromedp.WaitVisible("#email"),
		chromedp.SendKeys("#displayName", displayName(email)),
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", "password"),
		chromedp.Click("#signup-form button"),
		waitText(".flash", "Welcome"),
	}
}

// signInInBrowser signs in from the sign-in page at path ("/auth/signin",
// perhaps with a next), with the password every test user has.
func signInInBrowser(base, path, email string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + path),
		chromedp.WaitVisible("#email"),
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", "password"),
		chromedp.Click("#signin-form button"),
		waitText(".flash", "Welcome back"),
	}
}

func sellInBrowser(base, title, price string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + "/tickets/new"),
		chromedp.Click(`a[href="/tickets/new?show=none"]`),
		chromedp.WaitVisible("#title"),
		chromedp.SendKeys("#title", title),
		chromedp.SendKeys("#price", price),
		chromedp.Click("#ticket-form button"),
		waitText("h1", title),
	}
}

// buyAndSell is the whole sale: a seller lists a ticket, a buyer buys it
// and pays in the test checkout, the seller's dashboard shows the sale.
func buyAndSell(t *testing.T, js bool) {
	h := apptest.New(t)
	prefix := "js"
	if !js {
		prefix = "nojs"
	}
	seller, buyer := person(t, js), person(t, js)
	require.NoError(t, chromedp.Do(seller, signUpInBrowser(h.URL, "seller@example.com")...))
	require.NoError(t, chromedp.Do(seller, sellInBrowser(h.URL, "Radiohead, row 12", "89.50")...))
	ticketURL := location(seller, t)

	require.NoError(t, chromedp.Do(buyer, signUpInBrowser(h.URL, "buyer@example.com")...))
	htmx, err := chromedp.Run(buyer, chromedp.EvaluateAsDevTools[bool](`typeof window.htmx !== "undefined"`))
	require.NoError(t, err)
	require.Equal(t, js, htmx, "htmx runs only when JavaScript is on")
	require.NoError(t, chromedp.Do(buyer,
		chromedp.Navigate(h.URL+"/"),
		waitText("#ticket-rows", "Radiohead, row 12"),
		shot(t, prefix+"-list"),
		chromedp.Navigate(ticketURL),
		chromedp.Click(`form[action="/orders"] button`),
		waitText("#order-status", "reserved for you"),
		shot(t, prefix+"-order"),
		chromedp.Click(`form[action$="/pay"] button`),
		waitText(".test-mode", "TEST MODE"),
		shot(t, prefix+"-test-checkout"),
		chromedp.Click(`form[action$="/pay"] button`),
		waitText("#order-status", "Paid"),
		shot(t, prefix+"-order-paid"),
	))
	require.NoError(t, chromedp.Do(seller,
		chromedp.Navigate(h.URL+"/sell"),
		waitText(".stats", "$89.50"),
		waitText("#dashboard table", "Sold"),
		shot(t, prefix+"-dashboard"),
	))
}

func TestBrowserBuyAndSell(t *testing.T) { buyAndSell(t, true) }

func TestBrowserBuyAndSellWithoutJavaScript(t *testing.T) { buyAndSell(t, false) }

func TestBrowserValidationErrors(t *testing.T) {
	h := apptest.New(t)
	for _, js := range []bool{true, false} {
		p := person(t, js)
		require.NoError(t, chromedp.Do(p,
			chromedp.Navigate(h.URL+"/auth/signup"),
			chromedp.WaitVisible("#email"),
			chromedp.SendKeys("#email", "not-an-email"),
			chromedp.SendKeys("#password", "x"),
			chromedp.Click("#signup-form button"),
			waitText("#email-error", "Email must be valid"),
			waitText("#password-error", "Password must be at least 4 characters"),
			shot(t, fmt.Sprintf("signup-errors-js-%v", js)),
		))
		value, err := chromedp.Run(p, chromedp.Value("#email"))
		require.NoError(t, err)
		assert.Equal(t, "not-an-email", value, "the value is kept")
		invalid, err := chromedp.Run(p, chromedp.AttributeValue("#email", "aria-invalid"))
		require.NoError(t, err)
		assert.Equal(t, "true", invalid.Value)
	}
}

// A reservation expiring while its page is open turns the page to
// "expired", and the ticket reappears in another tab's list, both live.
func TestBrowserExpiryIsLive(t *testing.T) {
	h := apptest.New(t, apptest.WithConfig(func(c *app.Config) {
		c.ReservationTTL = 6 * time.Second
		c.SweepInterval = 100 * time.Millisecond
	}))
	seller, buyer, watcher := person(t, true), person(t, true), person(t, true)
	require.NoError(t, chromedp.Do(seller, signUpInBrowser(h.URL, "seller@example.com")...))
	require.NoError(t, chromedp.Do(seller, sellInBrowser(h.URL, "Early show", "15")...))
	require.NoError(t, chromedp.Do(seller, sellInBrowser(h.URL, "Late show", "20")...))
	ticketURL := location(seller, t)
	id := ticketURL[strings.LastIndex(ticketURL, "/")+1:]
	require.NoError(t, chromedp.Do(seller, sellInBrowser(h.URL, "Encore", "25")...))

	require.NoError(t, chromedp.Do(buyer, signUpInBrowser(h.URL, "buyer@example.com")...))
	require.NoError(t, chromedp.Do(buyer,
		chromedp.Navigate(ticketURL),
		chromedp.Click(`form[action="/orders"] button`),
		waitText("#order-status", "reserved for you"),
	))
	require.NoError(t, chromedp.Do(watcher,
		chromedp.Navigate(h.URL+"/"),
		waitText("#ticket-rows", "Early show"),
	))
	require.NoError(t, chromedp.Do(buyer,
		waitText("#order-status", "Your reservation expired"),
		shot(t, "order-expired"),
	))
	require.NoError(t, chromedp.Do(watcher,
		chromedp.WaitVisible("#ticket-"+id),
		waitText("#ticket-rows", "Late show"),
		shot(t, "list-after-expiry"),
	))
	// Back where a reload would show it: newest first.
	titles, err := chromedp.Run(watcher, chromedp.EvaluateAsDevTools[[]string](
		`[...document.querySelectorAll("#ticket-rows > li .row-main a")].map(a => a.textContent.trim())`))
	require.NoError(t, err)
	assert.Equal(t, []string{"Encore", "Late show", "Early show"}, titles)
}

// Two browsers race for one ticket: one gets the order, the other is told
// it is already reserved.
func TestBrowserRaceForOneTicket(t *testing.T) {
	h := apptest.New(t)
	seller := person(t, true)
	require.NoError(t, chromedp.Do(seller, signUpInBrowser(h.URL, "seller@example.com")...))
	require.NoError(t, chromedp.Do(seller, sellInBrowser(h.URL, "Last seat", "30")...))
	ticketURL := location(seller, t)

	a, b := person(t, true), person(t, true)
	for i, p := range []context.Context{a, b} {
		require.NoError(t, chromedp.Do(p, signUpInBrowser(h.URL, fmt.Sprintf("fan%d@example.com", i))...))
		require.NoError(t, chromedp.Do(p, chromedp.Navigate(ticketURL), chromedp.WaitVisible(`form[action="/orders"] button`)))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []context.Context{a, b} {
		wg.Go(func() { errs[i] = chromedp.Do(p, chromedp.Click(`form[action="/orders"] button`)) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])

	won, lost := 0, 0
	for i, p := range []context.Context{a, b} {
		require.NoError(t, chromedp.Do(p, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				loc, err := chromedp.Location()(ctx, tg)
				if err == nil && strings.Contains(loc, "/orders/") {
					return nil
				}
				ok, err := chromedp.EvaluateAsDevTools[bool](`!!document.querySelector(".form-message") && document.querySelector(".form-message").innerText.includes("someone else just reserved")`)(ctx, tg)
				if err == nil && ok {
					return nil
				}
				time.Sleep(50 * time.Millisecond)
			}
			return fmt.Errorf("neither an order nor the already-reserved note")
		})))
		if strings.Contains(location(p, t), "/orders/") {
			won++
		} else {
			lost++
			require.NoError(t, chromedp.Do(p, shot(t, fmt.Sprintf("race-lost-%d", i))))
		}
	}
	assert.Equal(t, 1, won)
	assert.Equal(t, 1, lost)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// A payment that arrives after the reservation ended shows as refunded on
// the order page that is open, live.
func TestBrowserRefundArrivesOnAnOpenOrderPage(t *testing.T) {
	h := apptest.New(t)
	seller := h.Client(t)
	seller.SignUp(t, "seller@example.com", "password")
	ticketURL := "/tickets/" + seller.Sell(t, "Late show", 30)
	tab := person(t, true)
	require.NoError(t, chromedp.Do(tab, signUpInBrowser(h.URL, "buyer@example.com")...))
	require.NoError(t, chromedp.Do(tab,
		chromedp.Navigate(h.URL+ticketURL),
		chromedp.Click(`form[action="/orders"] button`),
		waitText("#order-status", "reserved for you"),
		chromedp.Click(`form[action$="/pay"] button`),
		waitText(".test-mode", "TEST MODE"),
		chromedp.NavigateBack(),
		waitText("#order-status", "reserved for you"),
	))
	orderID := strings.TrimPrefix(location(tab, t), h.URL+"/orders/")
	ctx := context.Background()
	sess, _, err := h.App.Payments.OpenSession(ctx, orderID)
	require.NoError(t, err)
	info, err := h.App.Payments.SessionByID(ctx, sess.ID)
	require.NoError(t, err)
	o, err := h.App.Orders.Get(ctx, orderID)
	require.NoError(t, err)
	_, err = h.App.Orders.Cancel(ctx, orderID, o.UserID)
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(tab, waitText("#order-status", "cancelled")))
	payload, header := h.App.Webhook.TestEvent(info)
	require.NoError(t, h.App.Webhook.Handle(ctx, payload, header))
	require.NoError(t, chromedp.Do(tab, waitText("#order-status", "your payment was refunded"), shot(t, "js-order-refunded")))
}
