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
	status, err := orderStatuses(ctx, ordersDB)
	if err != nil {
		return err
	}
	all, err := allPayments(ctx, paymentsDB)
	if err != nil {
		return err
	}
	kept := map[string]int{}
	for _, p := range all {
		switch {
		case p.Status == refundPending:
			bad = append(bad, fmt.Sprintf("payment %s of order %s is still waiting for its refund", p.ID, p.OrderID))
		case p.Status == succeeded && status[p.OrderID] == "cancelled":
			bad = append(bad, fmt.Sprintf("payment %s kept for cancelled order %s", p.ID, p.OrderID))
		case p.Status == succeeded:
			kept[p.OrderID]++
		}
	}
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
