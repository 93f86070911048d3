package mail

import (
	"context"
	"time"
)

// senderPoll is how often the sender looks for due messages.
const senderPoll = 500 * time.Millisecond

// Run writes the reminders that fall due and sends due messages until
// ctx ends (without SMTP, messages are kept in the table, for /mailbox).
// A message that fails waits its backoff and is tried again; none is
// dropped.
func (s *Store) Run(ctx context.Context) {
	tick := time.NewTicker(senderPoll)
	defer tick.Stop()
	for {
		if _, err := s.RemindOnce(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("mail: reminders failed, will retry", "err", err)
		}
		if s.transport != nil {
			if _, err := s.SendOnce(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("mail: sending failed, will retry", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// SendOnce sends every message due now, marking each sent as it goes; it
// returns how many went and the last failure. A crash between a send and
// its mark sends that one message again, with the same Message-ID.
func (s *Store) SendOnce(ctx context.Context) (int, error) {
	if s.transport == nil {
		return 0, errNoTransport
	}
	sent := 0
	var last error
	for {
		batch, err := s.due(ctx, 50)
		if err != nil || len(batch) == 0 {
			return sent, err
		}
		progress := false
		for _, m := range batch {
			if err := s.transport.Send(ctx, s.from, m); err != nil {
				last = err
				if err := s.markFailed(ctx, m, err); err != nil {
					return sent, err
				}
				continue
			}
			if err := s.markSent(ctx, m.ID); err != nil {
				return sent, err
			}
			sent++
			progress = true
		}
		if !progress {
			return sent, last
		}
	}
}
