package app_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image/png"
	"io"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

// pdf is a small PDF file's content.
var pdf = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

// download is what GET /tickets/{id}/attachment answers c: the status
// and the body.
func download(t *testing.T, c *apptest.Client, ticketID string) (int, []byte, http.Header) {
	t.Helper()
	resp := c.Do(t, http.MethodGet, "/tickets/"+ticketID+"/attachment", nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

// Only the buyer of a complete order, and the seller, have the ticket;
// everyone else gets 404: another user, a visitor, the buyer before
// paying, the buyer of a cancelled or a refunded order. Each download is
// recorded.
func TestDeliveryAccess(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	ctx := t.Context()
	paid := s.Seller.Sell(t, "Delivered show", 30)
	require.Equal(t, http.StatusSeeOther, s.Seller.Attach(t, paid, "ticket.pdf", pdf, "", ""))
	s.Settle(t)
	_, doc := s.Client(t).Get(t, "/")
	assert.Contains(t, doc.Find("#ticket-"+paid).Text(), "Instant download")

	other := s.Client(t)
	other.SignUp(t, "other@example.com", "password")
	order := s.Buyer.Order(t, paid)
	for who, c := range map[string]*apptest.Client{"the buyer before paying": s.Buyer, "another user": other, "a visitor": s.Client(t)} {
		status, _, _ := download(t, c, paid)
		assert.Equal(t, http.StatusNotFound, status, who)
	}
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	s.Settle(t)
	status, body, hdr := download(t, s.Buyer, paid)
	require.Equal(t, http.StatusOK, status, "the buyer of a complete order")
	assert.Equal(t, pdf, body)
	assert.Equal(t, "application/pdf", hdr.Get("Content-Type"))
	assert.Contains(t, hdr.Get("Content-Disposition"), "attachment")
	assert.Equal(t, "no-store", hdr.Get("Cache-Control"))
	status, _, _ = download(t, s.Seller, paid)
	assert.Equal(t, http.StatusOK, status, "the seller sees their own upload")
	status, _, _ = download(t, other, paid)
	assert.Equal(t, http.StatusNotFound, status, "another user, after the sale too")
	n, err := s.App.Delivery.Downloads(ctx, paid, s.BuyerUser.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the download is recorded")
	_, doc = s.Buyer.Get(t, "/orders/"+order)
	assert.Equal(t, "/tickets/"+paid+"/attachment", doc.Find("#download").AttrOr("href", ""), "the order page offers it")

	// Sold: the file can no longer be replaced.
	assert.Equal(t, http.StatusConflict, s.Seller.Attach(t, paid, "other.pdf", pdf, "", ""))

	// A cancelled order's buyer, and a refunded one's.
	cancelled := s.Seller.Sell(t, "Cancelled show", 30)
	require.Equal(t, http.StatusSeeOther, s.Seller.Attach(t, cancelled, "", nil, "CANCELLED-1", "qr"))
	s.Settle(t)
	o := s.Buyer.Order(t, cancelled)
	require.Equal(t, http.StatusNoContent, s.Buyer.Do(t, http.MethodDelete, "/api/orders/"+o, nil).StatusCode)
	s.Settle(t)
	status, _, _ = download(t, s.Buyer, cancelled)
	assert.Equal(t, http.StatusNotFound, status, "the buyer of a cancelled order")

	refunded := s.Seller.Sell(t, "Refunded show", 30)
	require.Equal(t, http.StatusSeeOther, s.Seller.Attach(t, refunded, "", nil, "REFUNDED-1", "code128"))
	s.Settle(t)
	s.PayTooLate(t, s.Buyer.Order(t, refunded))
	status, _, _ = download(t, s.Buyer, refunded)
	assert.Equal(t, http.StatusNotFound, status, "the buyer of a refunded order")

	// A barcode comes back as a scannable image.
	status, body, hdr = download(t, s.Seller, refunded)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "image/png", hdr.Get("Content-Type"))
	img, err := png.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 100)
}

// Bad uploads are a clear 4xx and store nothing: a file over 5 MB, a
// PDF called .png, an HTML file called .pdf, an empty file, no file and
// no barcode, a barcode Code 128 cannot hold; and only the seller may.
func TestDeliveryRefusesBadUploads(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	id := s.Seller.Sell(t, "Refused uploads", 30)
	s.Settle(t)
	big := append(append([]byte{}, pdf...), bytes.Repeat([]byte("x"), 6<<20)...)
	for name, tc := range map[string]struct {
		file    string
		data    []byte
		barcode string
		format  string
		status  int
	}{
		"6 MB":                  {"big.pdf", big, "", "", http.StatusUnprocessableEntity}, // "Request body is too large", before anything reads it
		"a PDF called .png":     {"ticket.png", pdf, "", "", http.StatusUnprocessableEntity},
		"HTML called .pdf":      {"ticket.pdf", []byte("<!doctype html><html><body>not a ticket</body></html>"), "", "", http.StatusUnprocessableEntity},
		"an empty file":         {"ticket.pdf", nil, "", "", http.StatusUnprocessableEntity},
		"nothing":               {"", nil, "", "qr", http.StatusUnprocessableEntity},
		"a barcode of non-text": {"", nil, "é-ticket", "code128", http.StatusUnprocessableEntity},
		"a format we lack":      {"", nil, "ABC", "pdf417", http.StatusUnprocessableEntity},
	} {
		assert.Equal(t, tc.status, s.Seller.Attach(t, id, tc.file, tc.data, tc.barcode, tc.format), name)
	}
	var n int
	require.NoError(t, s.App.DB("delivery").Read().QueryRow("SELECT count(*) FROM attachments").Scan(&n))
	assert.Zero(t, n, "nothing stored")
	assert.Equal(t, http.StatusForbidden, s.Buyer.Attach(t, id, "ticket.pdf", pdf, "", ""), "not the seller")
	assert.Equal(t, http.StatusSeeOther, s.Seller.Attach(t, id, "ticket", pdf, "", ""), "a name without an extension: the content says")
	sum := sha256.Sum256(pdf)
	var stored string
	require.NoError(t, s.App.DB("delivery").Read().QueryRow("SELECT sha256 FROM attachments WHERE ticket_id = ?", id).Scan(&stored))
	assert.Equal(t, hex.EncodeToString(sum[:]), stored, "the file as sent")
}

// A ticket sold without its file: the seller's dashboard asks for it;
// once attached, the buyer is mailed and their order page offers it.
func TestTicketOwedThenDelivered(t *testing.T) {
	t.Parallel()
	mp, smtp := withMailpit(t)
	s := apptest.NewShop(t, smtp)
	id := s.Seller.Sell(t, "Owed ticket", 30)
	order := s.Buyer.Order(t, id)
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	s.Settle(t)
	_, doc := s.Seller.Get(t, "/sell")
	assert.Equal(t, "/tickets/"+id+"#attachment", doc.Find("#sell-"+id+" a.owed").AttrOr("href", ""), "the dashboard asks for the file")
	_, doc = s.Buyer.Get(t, "/orders/"+order)
	assert.Contains(t, doc.Find("#ticket-owed").Text(), "The seller has been asked to send the ticket")
	mp.WaitFor(t, 3) // receipt, sold, owed

	_, doc = s.Buyer.Get(t, "/orders/"+order)
	stream := doc.Find("#order").AttrOr("sse-connect", "")
	require.NotEmpty(t, stream, "a paid order still owed its ticket follows changes")
	live := s.Buyer.Stream(t, stream, "")
	require.Equal(t, http.StatusSeeOther, s.Seller.Attach(t, id, "ticket.pdf", pdf, "", ""), "a sold ticket still owed can be attached")
	e := apptest.Next(t, live)
	assert.Contains(t, e.Data, `href="/tickets/`+id+`/attachment"`, "an open order page gets the download, live")
	s.Settle(t)
	msgs := mp.WaitFor(t, 4)
	var ready *apptest.MailpitMessage
	for i := range msgs {
		if msgs[i].Subject == "Your ticket is ready: Owed ticket" {
			ready = &msgs[i]
		}
	}
	require.NotNil(t, ready, "the buyer is told")
	assert.Equal(t, "buyer@example.com", ready.To[0].Address)
	assert.Contains(t, ready.Text, s.URL+"/orders/"+order)
	_, doc = s.Buyer.Get(t, "/orders/"+order)
	assert.Equal(t, "/tickets/"+id+"/attachment", doc.Find("#download").AttrOr("href", ""))
	status, body, _ := download(t, s.Buyer, id)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, pdf, body)
	_, doc = s.Seller.Get(t, "/sell")
	assert.Zero(t, doc.Find("#sell-"+id+" a.owed").Length())
	assert.Equal(t, http.StatusConflict, s.Seller.Attach(t, id, "again.pdf", pdf, "", ""), "given once sold, it stays")
}

// In the browser: a buyer has the order page open when the payment
// completes; "Download your ticket" appears on it, live.
func TestBrowserDownloadAppearsWhenPaid(t *testing.T) {
	t.Parallel()
	s := apptest.NewShop(t)
	id := s.Seller.Sell(t, "Instant show", 30)
	require.Equal(t, http.StatusSeeOther, s.Seller.Attach(t, id, "ticket.pdf", pdf, "", ""))
	s.Settle(t)
	order := s.Buyer.Order(t, id)
	tab := person(t, true)
	require.NoError(t, chromedp.Do(tab, signInInBrowser(s.URL, "/auth/signin", "buyer@example.com")...))
	require.NoError(t, chromedp.Do(tab,
		chromedp.Navigate(s.URL+"/orders/"+order),
		waitText("#order-status", "reserved for you"),
		waitSSE(),
	))
	require.Equal(t, http.StatusCreated, s.Buyer.JSON(t, http.MethodPost, "/api/payments", map[string]string{"orderId": order, "token": "tok_visa"}, nil))
	require.NoError(t, chromedp.Do(tab, waitText("#order-status", "Download your ticket")))
	href, err := chromedp.Run(tab, chromedp.AttributeValue("#download", "href"))
	require.NoError(t, err)
	assert.Equal(t, "/tickets/"+id+"/attachment", href.Value)
}
