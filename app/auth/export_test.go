package auth

import "time"

// SetLimiterClock lets tests move time.
func SetLimiterClock(l *Limiter, now func() time.Time) { l.now = now }
