package orders

import (
	"context"
	"fmt"
	"strings"
	"time"

	"ticketing/db"
	"ticketing/events"
)

// CheckInvariants checks the rules no run may break, across the orders and
// tickets files. It is the one piece of code that reads two modules' files,
// read-only, and exists for tests and fault drills, never for requests.
//
//   - no ticket has two live orders;
//   - once consumers are idle, every ticket the tickets module holds is
//     held by a live order for that ticket, and every live order's ticket
//     is held by it;
//   - every order whose deadline passed at now is complete or cancelled
//     (callers leave a sweep interval of slack in now);
//   - neither file has applied more of the other's log than it holds.
//
// It returns an error listing every violation.
func CheckInvariants(ctx context.Context, ordersDB, ticketsDB *db.DB, now time.Time) error {
	bad, err := events.CheckPositions(ctx, ordersDB, ticketsDB)
	if err != nil {
		return err
	}
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	rows, err := ordersDB.Read().QueryContext(ctx,
		"SELECT ticket_id, count(*) FROM orders WHERE status != 'cancelled' GROUP BY ticket_id HAVING count(*) > 1")
	if err != nil {
		return fmt.Errorf("check double sells: %w", err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return err
		}
		add("ticket %s has %d live orders", id, n)
	}
	rows.Close()

	live := map[string]string{} // ticket → live order
	rows, err = ordersDB.Read().QueryContext(ctx, "SELECT id, ticket_id, status, expires_at FROM orders WHERE status != 'cancelled'")
	if err != nil {
		return fmt.Errorf("read live orders: %w", err)
	}
	for rows.Next() {
		var id, ticket, expires string
		var status Status
		if err := rows.Scan(&id, &ticket, &status, &expires); err != nil {
			rows.Close()
			return err
		}
		live[ticket] = id
		if t, _ := db.ParseTime(expires); status != Complete && now.After(t) {
			add("order %s (%s) is past its deadline %s", id, status, expires)
		}
	}
	rows.Close()

	held := map[string]string{} // ticket → order, per the tickets module
	rows, err = ticketsDB.Read().QueryContext(ctx, "SELECT id, order_id FROM tickets WHERE order_id IS NOT NULL")
	if err != nil {
		return fmt.Errorf("read held tickets: %w", err)
	}
	for rows.Next() {
		var id, order string
		if err := rows.Scan(&id, &order); err != nil {
			rows.Close()
			return err
		}
		held[id] = order
	}
	rows.Close()

	for ticket, order := range held {
		if live[ticket] != order {
			add("ticket %s is held by order %s, which is not its live order (%q)", ticket, order, live[ticket])
		}
	}
	for ticket, order := range live {
		if held[ticket] != order {
			add("live order %s's ticket %s is held by %q", order, ticket, held[ticket])
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d invariant violations:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	return nil
}

// CheckDeadlines checks, across the orders and expiration files, once
// consumers are idle, that every open order (created or awaiting payment)
// has its deadline, so that it expires; read-only, for tests and drills.
func CheckDeadlines(ctx context.Context, ordersDB, expirationDB *db.DB) error {
	bad, err := events.CheckPositions(ctx, ordersDB, expirationDB)
	if err != nil {
		return err
	}
	deadlines := map[string]bool{}
	rows, err := expirationDB.Read().QueryContext(ctx, "SELECT order_id FROM deadlines")
	if err != nil {
		return fmt.Errorf("read deadlines: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		deadlines[id] = true
	}
	rows.Close()
	rows, err = ordersDB.Read().QueryContext(ctx, "SELECT id FROM orders WHERE status IN (?, ?)", Created, AwaitingPayment)
	if err != nil {
		return fmt.Errorf("read open orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		if !deadlines[id] {
			bad = append(bad, fmt.Sprintf("open order %s has no deadline: it would never expire", id))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d invariant violations:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	return nil
}
