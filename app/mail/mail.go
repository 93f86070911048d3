// Package mail owns the shop's email (mail.db): an outbox of the messages
// it owes, and the copies of people, tickets, shows and orders those
// messages speak of, learnt from the other modules' events. A consumer
// writes each message in the same transaction as its consumer position,
// so an event calls for its message exactly once; a sender worker
// delivers pending messages over SMTP with retries and backoff and marks
// them sent. Mail never slows or fails a purchase: an SMTP outage only
// leaves messages pending (on /healthz and /metrics) until it ends.
//
// Without SMTP (the default for `go run .`) nothing is lost either: every
// message stays in the table, is logged, and its recipient can read it at
// /mailbox outside production.
package mail

import (
	"context"
	"embed"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"ticketing/db"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns mail.db's schema.
func Migrations() db.Migrations { return db.Embedded("mail", migrations) }

// Message is one email the shop owes or sent.
type Message struct {
	ID        string
	Kind      string
	ToUser    string
	ToEmail   string
	Subject   string
	Text      string
	HTML      string
	MessageID string // the stable Message-ID header, <id@host>
	CreatedAt time.Time
	Status    string // pending, sent, or kept (no SMTP: kept for /mailbox)
	Attempts  int
	SentAt    time.Time
	LastError string
}

// The kinds of message.
const (
	kindReceipt   = "receipt"   // to the buyer: the order is paid
	kindSold      = "sold"      // to the seller: their ticket sold
	kindRefund    = "refund"    // to the buyer: a late payment was given back
	kindReset     = "reset"     // a password reset link
	kindReminder  = "reminder"  // to the buyer: the reservation runs out in 5 minutes
	kindAvailable = "available" // to the buyer: the ticket can be downloaded now
	kindOwed      = "owed"      // to the seller: the ticket of a sale is still to be attached
)

// Transport delivers one message; the SMTP client in production, nil
// without SMTP.
type Transport interface {
	Send(ctx context.Context, from string, m Message) error
}

// SMTP is a Transport over an SMTP server, configured by SMTP_URL:
// smtp://user:pass@host:587 (STARTTLS required), smtps://… (implicit
// TLS); ?tls=opportunistic or ?tls=none loosen STARTTLS for a local relay
// or a test server.
type SMTP struct {
	host string
	opts []gomail.Option
}

// ParseSMTPURL reads SMTP_URL.
func ParseSMTPURL(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("want smtp://user:pass@host:587 or smtps://…")
	}
	port := 587
	opts := []gomail.Option{gomail.WithTimeout(10 * time.Second)}
	switch u.Scheme {
	case "smtp":
		policy := gomail.TLSMandatory
		switch u.Query().Get("tls") {
		case "", "mandatory":
		case "opportunistic":
			policy = gomail.TLSOpportunistic
		case "none":
			policy = gomail.NoTLS
		default:
			return nil, fmt.Errorf("tls=%q: want mandatory, opportunistic or none", u.Query().Get("tls"))
		}
		opts = append(opts, gomail.WithTLSPolicy(policy))
	case "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("scheme %q: want smtp or smtps", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("port %q: %w", p, err)
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	return &SMTP{host: u.Hostname(), opts: opts}, nil
}

// Send delivers m, its plain-text part first and its HTML alternative.
func (s *SMTP) Send(ctx context.Context, from string, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return fmt.Errorf("from %q: %w", from, err)
	}
	if err := msg.To(m.ToEmail); err != nil {
		return fmt.Errorf("to %q: %w", m.ToEmail, err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(strings.Trim(m.MessageID, "<>"))
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("send %s: %w", m.MessageID, err)
	}
	return nil
}
