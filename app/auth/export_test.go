package auth

import "time"

// SetLimiterClock lets tests move time.
func SetLimiterClock(l *Limiter, now func() time.Time) { l.now = now }

// SignUpBuckets is how many sign-up buckets the limiter holds.
func SignUpBuckets(l *Limiter) int {
	l.signUpIP.mu.Lock()
	defer l.signUpIP.mu.Unlock()
	return len(l.signUpIP.m)
}

// SafeNext is safeNext, for its table test.
var SafeNext = safeNext
