package payments

import (
	"context"
	"fmt"
	"strings"

	"ticketing/db"
	"ticketing/events"
)

// CheckInvariants checks the money rules across the orders and payments
// files, read-only, for tests and fault drills (never for requests), once
// consumers and the worker are idle:
//
//   - every complete order has exactly one kept (succeeded) payment;
//   - every payment for a cancelled order is refunded;
//   - no payment is still waiting for its refund;
//   - neither file has applied more of the other's log than it holds.
func CheckInvariants(ctx context.Context, ordersDB, paymentsDB *db.DB) error {
	bad, err := events.CheckPositions(ctx, ordersDB, paymentsDB)
	if err != nil {
		return err
	}
	status := map[string]string{}
	rows, err := ordersDB.Read().QueryContext(ctx, "SELECT id, status FROM orders")
	if err != nil {
		return fmt.Errorf("read orders: %w", err)
	}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			rows.Close()
			return err
		}
		status[id] = st
	}
	rows.Close()

	kept := map[string]int{}
	rows, err = paymentsDB.Read().QueryContext(ctx, "SELECT id, order_id, status FROM payments")
	if err != nil {
		return fmt.Errorf("read payments: %w", err)
	}
	for rows.Next() {
		var id, order, st string
		if err := rows.Scan(&id, &order, &st); err != nil {
			rows.Close()
			return err
		}
		switch {
		case st == refundPending:
			bad = append(bad, fmt.Sprintf("payment %s of order %s is still waiting for its refund", id, order))
		case st == succeeded && status[order] == "cancelled":
			bad = append(bad, fmt.Sprintf("payment %s kept for cancelled order %s", id, order))
		case st == succeeded:
			kept[order]++
		}
	}
	rows.Close()
	for id, st := range status {
		if st == "complete" && kept[id] != 1 {
			bad = append(bad, fmt.Sprintf("complete order %s has %d kept payments", id, kept[id]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d payment invariant violations:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	return nil
}
