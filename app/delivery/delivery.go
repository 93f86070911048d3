// Package delivery owns the tickets themselves (delivery.db): the file or
// barcode a seller attaches to a listing, and who downloaded it when. It
// is a module of its own because its data is of another kind (files up to
// 5 MB, kept out of the listings' file so the lists stay small and fast)
// and its rule is its own: only the buyer of a complete order, or the
// seller, may have the ticket. It learns each ticket's seller from the
// tickets module's ticket:created, and each sale's buyer from the orders
// module's order:completed; it publishes ticket:delivered when a ticket
// is attached, so the lists can say "Instant download", the order page can
// offer it, and the buyer can be mailed.
package delivery

import (
	"bytes"
	"embed"
	"fmt"
	"image/png"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/qr"

	"ticketing/app/problem"
	"ticketing/app/text"
	"ticketing/db"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns delivery.db's schema.
func Migrations() db.Migrations { return db.Embedded("delivery", migrations) }

// Attachment is a ticket as its seller handed it over: a file, or a
// barcode's value and format.
type Attachment struct {
	TicketID      string
	Kind          string // "file" or "barcode"
	ContentType   string // a file's, from its content
	FileName      string
	Data          []byte
	Barcode       string
	BarcodeFormat string // "qr" or "code128"
	Size          int64
	SHA256        string
	CreatedAt     time.Time
}

// MaxFile is the largest ticket file taken.
const MaxFile = 5 << 20

// maxBarcode bounds a barcode's value (a QR code holds a few thousand
// characters; a ticket's code is far shorter).
const maxBarcode = 200

// EventTicketDelivered is appended when a ticket is attached (or replaced
// before it sold).
const EventTicketDelivered = "ticket:delivered"

// ticketDelivered is the payload of ticket:delivered.
type ticketDelivered struct {
	TicketID string `json:"ticketId"`
	Kind     string `json:"kind"`
}

// sniff says what a ticket file is from its content, never its name: a
// PDF, PNG or JPEG, or a field error naming what it is instead. A name
// whose extension says another of those types is refused too (a PDF
// called ticket.png): the buyer would get a file that lies.
func sniff(name string, data []byte) (string, error) {
	ct, err := sniffContent(data)
	if err != nil {
		return "", err
	}
	ext := strings.ToLower(path.Ext(name))
	if said, ok := extensions[ext]; ok && said != ct {
		return "", problem.Fields(map[string]string{"file": fmt.Sprintf("The file is called %s but it is a %s: rename it or attach the right file", name, typeNames[ct])})
	}
	return ct, nil
}

// extensions are the names of the types taken, and typeNames how they
// are said.
var (
	extensions = map[string]string{".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
	typeNames  = map[string]string{"application/pdf": "PDF", "image/png": "PNG image", "image/jpeg": "JPEG image"}
)

func sniffContent(data []byte) (string, error) {
	if len(data) == 0 {
		return "", problem.Fields(map[string]string{"file": "The file is empty"})
	}
	if len(data) > MaxFile {
		return "", problem.Fields(map[string]string{"file": "The file is larger than 5 MB"})
	}
	if bytes.HasPrefix(data, []byte("%PDF-")) {
		return "application/pdf", nil
	}
	switch ct := http.DetectContentType(data); ct {
	case "image/png", "image/jpeg":
		return ct, nil
	default:
		kind, _, _ := strings.Cut(ct, ";")
		return "", problem.Fields(map[string]string{"file": "The ticket must be a PDF, PNG or JPEG file; this one is " + kind})
	}
}

// checkBarcode validates a barcode's value and format.
func checkBarcode(value, format string) error {
	fields := map[string]string{}
	switch {
	case value == "":
		fields["barcode"] = "The barcode's value is required"
	case text.Line("Barcode", value, maxBarcode) != "":
		fields["barcode"] = text.Line("Barcode", value, maxBarcode)
	}
	switch format {
	case "qr":
	case "code128":
		for _, r := range value {
			if r < 32 || r > 126 {
				fields["barcode"] = "A Code 128 barcode holds only plain ASCII characters"
				break
			}
		}
	default:
		fields["format"] = "The format must be qr or code128"
	}
	return problem.Fields(fields)
}

// BarcodePNG renders a barcode as a scannable PNG: a QR code, or a Code
// 128 barcode, with a quiet zone.
func BarcodePNG(value, format string) ([]byte, error) {
	var code barcode.Barcode
	var err error
	w, h := 360, 360
	if format == "code128" {
		code, err = code128.Encode(value)
		w, h = 600, 160
	} else {
		code, err = qr.Encode(value, qr.M, qr.Auto)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s barcode: %w", format, err)
	}
	if code, err = barcode.Scale(code, w, h); err != nil {
		return nil, fmt.Errorf("scale barcode: %w", err)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, code); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return b.Bytes(), nil
}
