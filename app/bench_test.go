package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/apptest"
	"ticketing/app/mail"
	"ticketing/app/orders"
	"ticketing/app/tickets"
	"ticketing/db"
)

// BenchmarkPropagation: from an order:created commit to the ticket being
// locked in the tickets module, over 10,000 orders placed one after
// another; reports p50 and p99.
func BenchmarkPropagation(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		h := apptest.New(b)
		seller, err := h.App.Auth.SignUp(ctx, "seller@example.com", "password", "The Seller")
		require.NoError(b, err)
		var ids []string
		for range 10_000 {
			tk, err := h.App.Tickets.Create(ctx, seller.ID, tickets.Listing{Title: "Show", PriceCents: 1000})
			require.NoError(b, err)
			ids = append(ids, tk.ID)
		}
		require.NoError(b, h.App.Bus.WaitIdle(ctx))
		for _, id := range ids {
			_, err := h.App.Orders.Reserve(ctx, "buyer", id)
			require.NoError(b, err)
		}
		require.NoError(b, h.App.Bus.WaitIdle(ctx))
		lat := h.App.Bus.Latencies("tickets", "orders")
		require.GreaterOrEqual(b, len(lat), 10_000)
		lat = lat[len(lat)-10_000:]
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkExpirySweep: 10,000 reservations fall due at once (they passed
// while the process was down); the time from start until every order is
// cancelled and every ticket is back on sale.
func BenchmarkExpirySweep(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		a := apptest.Open(b, apptest.WithDataDir(dir))
		a.Orders.Now = func() time.Time { return time.Now().Add(-time.Hour) } // due while "down"
		apptest.Reserve(b, a, 10_000)
		for _, name := range []string{"tickets", "expiration"} {
			_, err := a.Bus.Consumers(a.DB(name)).PollOnce(ctx)
			require.NoError(b, err)
		}
		require.NoError(b, a.Close())

		h := apptest.New(b, apptest.WithDataDir(dir), apptest.WithConfig(func(c *app.Config) { c.SweepInterval = time.Hour }))
		b.StartTimer()
		start := time.Now()
		for {
			require.NoError(b, h.App.Bus.WaitIdle(ctx))
			n, err := h.App.Expiration.Pending(ctx)
			require.NoError(b, err)
			if n == 0 {
				require.NoError(b, h.App.Bus.WaitIdle(ctx))
				break
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Since(start)
		b.StopTimer()
		require.NoError(b, orders.CheckInvariants(ctx, h.App.DB("orders"), h.App.DB("tickets"), time.Now()))
		var onSale int
		require.NoError(b, h.App.DB("tickets").Read().QueryRow("SELECT count(*) FROM tickets WHERE order_id IS NULL").Scan(&onSale))
		require.Equal(b, 10_000, onSale, fmt.Sprintf("all back on sale after %v", took))
		b.ReportMetric(took.Seconds()*1000, "ms-to-all-released")
		b.StartTimer()
	}
}

// BenchmarkStartCheck: the start's quick_check (and `ticketing check`'s
// integrity_check) of orders.db holding 100,000 orders; reports the time
// of each per run.
func BenchmarkStartCheck(b *testing.B) {
	dir := b.TempDir()
	a := apptest.Open(b, apptest.WithDataDir(dir))
	apptest.Reserve(b, a, 100_000)
	require.NoError(b, a.Close())
	path := filepath.Join(dir, "orders.db")
	ctx := context.Background()
	b.ResetTimer()
	var quick, full time.Duration
	for range b.N {
		q, err := db.Check(ctx, path, false)
		require.NoError(b, err)
		f, err := db.Check(ctx, path, true)
		require.NoError(b, err)
		quick, full = quick+q, full+f
	}
	b.ReportMetric(float64(quick.Milliseconds())/float64(b.N), "quick_check-ms")
	b.ReportMetric(float64(full.Milliseconds())/float64(b.N), "integrity_check-ms")
}

// BenchmarkBrowseShows: a shop of 10,000 upcoming shows in 50 cities with
// 200,000 tickets on sale (20 a show); 50 readers at once request the
// front page (shows soonest first, and a city filter) and show pages
// (tickets cheapest first) through the real handler tree; reports p50
// and p99 of each and the pages per second. Seeding takes a minute:
// go test -run '^$' -bench BrowseShows -benchtime 1x ./app
func BenchmarkBrowseShows(b *testing.B) {
	ctx := context.Background()
	a := apptest.Open(b)
	seller, err := a.Auth.SignUp(ctx, "seller@example.com", "password", "Big Promoter")
	require.NoError(b, err)
	const shows, perShow = 10_000, 20
	ids := make([]string, shows)
	start := time.Now().Add(24 * time.Hour)
	for i := range shows {
		sh, err := a.Tickets.CreateShow(ctx, seller.ID, tickets.ShowInput{Title: fmt.Sprintf("Performer %d", i), Venue: fmt.Sprintf("Hall %d", i%300),
			City: fmt.Sprintf("City %d", i%50), Country: "Netherlands", StartsAt: start.Add(time.Duration(i) * time.Hour).Format(time.RFC3339), TimeZone: "Europe/Amsterdam"})
		require.NoError(b, err)
		ids[i] = sh.ID
		for j := range perShow {
			_, err := a.Tickets.Create(ctx, seller.ID, tickets.Listing{ShowID: sh.ID, Section: "Floor", Seat: fmt.Sprint(j), FaceValueCents: 5000, PriceCents: int64(5000 + j*10)})
			require.NoError(b, err)
		}
	}
	srv := httptest.NewServer(a.Handler())
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	get := func(path string) time.Duration {
		t0 := time.Now()
		resp, err := client.Get(srv.URL + path)
		require.NoError(b, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(b, http.StatusOK, resp.StatusCode, path)
		return time.Since(t0)
	}
	b.ResetTimer()
	for range b.N {
		for _, page := range []struct {
			name string
			path func(i int) string
		}{
			{"front", func(int) string { return "/" }},
			{"city", func(i int) string { return fmt.Sprintf("/?city=City+%d&sort=price", i%50) }},
			{"show", func(i int) string { return "/shows/" + ids[(i*7919)%shows] }},
		} {
			const readers, each = 50, 40
			lat := make([]time.Duration, readers*each)
			var wg sync.WaitGroup
			t0 := time.Now()
			for r := range readers {
				wg.Go(func() {
					for k := range each {
						lat[r*each+k] = get(page.path(r*each + k))
					}
				})
			}
			wg.Wait()
			took := time.Since(t0)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, page.name+"-p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, page.name+"-p99-ms")
			b.ReportMetric(float64(len(lat))/took.Seconds(), page.name+"-pages/s")
		}
	}
}

// BenchmarkMailToMailpit: the sender worker delivering 1,000 messages
// owed (password reset links, each its own SMTP session) to a real
// Mailpit on 127.0.0.1; reports messages sent per second.
// go test -run '^$' -bench MailToMailpit -benchtime 1x ./app
func BenchmarkMailToMailpit(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		mp := apptest.NewMailpit(b)
		smtp, err := mail.ParseSMTPURL(mp.SMTPURL)
		require.NoError(b, err)
		a := apptest.Open(b, apptest.WithConfig(func(c *app.Config) { c.SMTP = smtp }))
		const n = 1000
		for i := range n {
			email := fmt.Sprintf("fan%d@example.com", i)
			_, err := a.Auth.SignUp(ctx, email, "password", "")
			require.NoError(b, err)
			require.NoError(b, a.Auth.RequestReset(ctx, email))
		}
		for {
			applied, err := a.Bus.Consumers(a.DB("mail")).PollOnce(ctx)
			require.NoError(b, err)
			if applied == 0 {
				break
			}
		}
		b.StartTimer()
		start := time.Now()
		sent, err := a.Mail.SendOnce(ctx)
		took := time.Since(start)
		require.NoError(b, err)
		require.Equal(b, n, sent)
		b.ReportMetric(float64(sent)/took.Seconds(), "mails/s")
	}
}
