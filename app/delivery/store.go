package delivery

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"ticketing/app/problem"
	"ticketing/db"
	"ticketing/events"
)

// Store is all SQL on delivery.db.
type Store struct {
	db  *db.DB
	log *events.Log
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewStore returns the store.
func NewStore(d *db.DB, log *events.Log) *Store {
	events.Publishes[ticketDelivered](log, EventTicketDelivered)
	return &Store{db: d, log: log, Now: time.Now}
}

// errNotFound is every refusal to hand a ticket over: whoever may not
// have it learns nothing, not even that there is one.
var errNotFound = problem.New(problem.NotFound, "Not found")

var errSold = problem.New(problem.Conflict, "This ticket has sold: its file can no longer be replaced or removed")

func (s *Store) addTicket(ctx context.Context, tx *db.Tx, id, seller string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO tickets (id, seller_id) VALUES (?, ?) ON CONFLICT (id) DO NOTHING", id, seller)
	return err
}

// addSale records a complete order: its buyer may have the ticket.
func (s *Store) addSale(ctx context.Context, tx *db.Tx, id, ticket, buyer string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO sales (order_id, ticket_id, buyer_id) VALUES (?, ?, ?) ON CONFLICT (order_id) DO NOTHING", id, ticket, buyer)
	return err
}

// sold reports whether an order for the ticket completed.
func sold(ctx context.Context, q db.Querier, ticketID string) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM sales WHERE ticket_id = ?)", ticketID).Scan(&ok)
	return ok, err
}

// Attach stores a's file or barcode as the ticket's, replacing one the
// seller gave before, and appends ticket:delivered. Only the ticket's
// seller may; once it sold, a ticket attached cannot be replaced (a
// dispute would need what the buyer got), and one still owed can be
// attached.
func (s *Store) Attach(ctx context.Context, userID string, a Attachment) (Attachment, error) {
	switch a.Kind {
	case "file":
		ct, err := sniff(a.FileName, a.Data)
		if err != nil {
			return Attachment{}, err
		}
		a.ContentType, a.Size = ct, int64(len(a.Data))
		sum := sha256.Sum256(a.Data)
		a.SHA256 = hex.EncodeToString(sum[:])
	case "barcode":
		if err := checkBarcode(a.Barcode, a.BarcodeFormat); err != nil {
			return Attachment{}, err
		}
		a.Data, a.ContentType, a.FileName, a.Size = nil, "", "", int64(len(a.Barcode))
		sum := sha256.Sum256([]byte(a.BarcodeFormat + ":" + a.Barcode))
		a.SHA256 = hex.EncodeToString(sum[:])
	default:
		return Attachment{}, problem.Fields(map[string]string{"file": "Attach a file or give a barcode"})
	}
	a.CreatedAt = s.Now().UTC()
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		var seller string
		err := tx.QueryRowContext(ctx, "SELECT seller_id FROM tickets WHERE id = ?", a.TicketID).Scan(&seller)
		if errors.Is(err, sql.ErrNoRows) {
			return problem.New(problem.NotFound, "Ticket not found")
		}
		if err != nil {
			return fmt.Errorf("find ticket %s: %w", a.TicketID, err)
		}
		if seller != userID {
			return problem.New(problem.Forbidden, "Only the seller can attach the ticket")
		}
		// After the sale, a ticket still owed may be attached; one given
		// may not be replaced.
		var had bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM attachments WHERE ticket_id = ?)", a.TicketID).Scan(&had); err != nil {
			return fmt.Errorf("find attachment of %s: %w", a.TicketID, err)
		}
		if done, err := sold(ctx, tx, a.TicketID); err != nil {
			return err
		} else if done && had {
			return errSold
		}
		now := db.Timestamp(a.CreatedAt)
		_, err = tx.ExecContext(ctx, `INSERT INTO attachments (ticket_id, kind, content_type, file_name, data, barcode, barcode_format, size, sha256, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (ticket_id) DO UPDATE SET kind = excluded.kind, content_type = excluded.content_type, file_name = excluded.file_name,
			data = excluded.data, barcode = excluded.barcode, barcode_format = excluded.barcode_format, size = excluded.size,
			sha256 = excluded.sha256, updated_at = excluded.updated_at`,
			a.TicketID, a.Kind, a.ContentType, a.FileName, a.Data, a.Barcode, a.BarcodeFormat, a.Size, a.SHA256, now, now)
		if err != nil {
			return fmt.Errorf("store ticket %s: %w", a.TicketID, err)
		}
		_, err = s.log.Append(ctx, tx, EventTicketDelivered, a.TicketID, 0, ticketDelivered{TicketID: a.TicketID, Kind: a.Kind})
		return err
	})
	if err != nil {
		return Attachment{}, err
	}
	return a, nil
}

// mayHave reports whether userID may have the ticket: its seller, or the
// buyer of a complete order for it.
func mayHave(ctx context.Context, q db.Querier, userID, ticketID string) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tickets WHERE id = ?1 AND seller_id = ?2)
		OR EXISTS (SELECT 1 FROM sales WHERE ticket_id = ?1 AND buyer_id = ?2)`, ticketID, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("who may have ticket %s: %w", ticketID, err)
	}
	return ok, nil
}

// Download returns the ticket for userID and records the download; to
// anyone who may not have it, and for a ticket with nothing attached, it
// is "Not found".
func (s *Store) Download(ctx context.Context, userID, ticketID string) (Attachment, error) {
	if !db.ValidID(ticketID) {
		return Attachment{}, errNotFound
	}
	var a Attachment
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		ok, err := mayHave(ctx, tx, userID, ticketID)
		if err != nil {
			return err
		}
		if !ok {
			return errNotFound
		}
		var created string
		err = tx.QueryRowContext(ctx, `SELECT ticket_id, kind, content_type, file_name, coalesce(data, x''), barcode, barcode_format, size, sha256, created_at
			FROM attachments WHERE ticket_id = ?`, ticketID).
			Scan(&a.TicketID, &a.Kind, &a.ContentType, &a.FileName, &a.Data, &a.Barcode, &a.BarcodeFormat, &a.Size, &a.SHA256, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("read ticket %s: %w", ticketID, err)
		}
		a.CreatedAt, _ = db.ParseTime(created)
		_, err = tx.ExecContext(ctx, "INSERT INTO downloads (ticket_id, user_id, at) VALUES (?, ?, ?)", ticketID, userID, db.Timestamp(s.Now()))
		return err
	})
	if err != nil {
		return Attachment{}, err
	}
	return a, nil
}

// Downloads counts the recorded downloads of a ticket by a user.
func (s *Store) Downloads(ctx context.Context, ticketID, userID string) (int, error) {
	var n int
	err := s.db.Read().QueryRowContext(ctx, "SELECT count(*) FROM downloads WHERE ticket_id = ? AND user_id = ?", ticketID, userID).Scan(&n)
	return n, err
}
