package payments

import (
	"context"
	"fmt"
	"time"
)

// workerPoll is the worker's safety-net period; a commit that leaves work
// wakes it at once.
const workerPoll = 5 * time.Second

// Run carries out the pending work the transactions recorded, until ctx
// ends: refunds, and Checkout Sessions to expire. A failure is logged and
// retried on the next round; nothing is dropped.
func (s *Store) Run(ctx context.Context) {
	tick := time.NewTicker(workerPoll)
	defer tick.Stop()
	for {
		if err := s.WorkOnce(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("payments worker: will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
	}
}

// WorkOnce does all pending work now and returns the first error. Tests
// call it instead of waiting for the worker.
func (s *Store) WorkOnce(ctx context.Context) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	pending, err := s.pendingRefunds(ctx)
	keep(err)
	for _, p := range pending {
		keep(s.refundPayment(ctx, p))
	}
	sessions, err := s.pendingExpiries(ctx)
	keep(err)
	for _, id := range sessions {
		keep(s.expireSession(ctx, id))
	}
	return first
}

// expireSession expires a Checkout Session whose order ended. If Stripe
// says it was paid meanwhile, that payment is recorded like a webhook's
// (it is then refunded, the order being over), so it is not lost if the
// webhook never comes.
func (s *Store) expireSession(ctx context.Context, id string) error {
	sess, err := s.gateway.ExpireCheckoutSession(ctx, id)
	if err != nil {
		return err
	}
	if sess.Status == sessionComplete && sess.PaymentIntent != "" {
		info, err := s.SessionByID(ctx, id)
		if err != nil {
			return err
		}
		p, _, err := s.record(ctx, received{OrderID: info.Order.ID, PaymentIntent: sess.PaymentIntent, SessionID: id, AmountCents: sess.AmountCents, Currency: sess.Currency})
		if err != nil {
			return err
		}
		return s.refundPayment(ctx, p)
	}
	return s.markSessionExpired(ctx, id)
}

// Reconcile asks the processor for money received since the given time
// and records any payment we have no record of, through the same path as
// the webhook (so it is idempotent, and a payment for an order that is no
// longer payable is refunded). It is for after a restore from backup,
// which can lose the last second of writes, a webhook we answered among
// them. It returns how many payments it recorded.
func (s *Store) Reconcile(ctx context.Context, since time.Time) (int, error) {
	if s.gateway.Test() {
		s.logger.Info("reconcile: test mode, no processor to ask; nothing to do")
		return 0, nil
	}
	paid, err := s.gateway.RecentPaid(ctx, since)
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	n := 0
	for _, r := range paid {
		p, out, err := s.record(ctx, r)
		if err != nil {
			return n, fmt.Errorf("reconcile payment %s: %w", r.PaymentIntent, err)
		}
		if out != duplicate {
			n++
			s.logger.Warn("reconcile: recorded a payment we had no record of", "order", r.OrderID, "payment_intent", r.PaymentIntent)
		}
		if err := s.refundPayment(ctx, p); err != nil {
			return n, err
		}
	}
	s.logger.Info("reconcile: done", "checked", len(paid), "recorded", n)
	return n, nil
}
