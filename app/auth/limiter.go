package auth

import (
	"fmt"
	"math"
	"sync"
	"time"

	"ticketing/app/problem"
)

// Limiter counts failed sign-in attempts per email and client IP in a
// fixed window, so guessing one account's password from one address is
// slow while other people sign in as usual. It lives in memory: a restart
// forgets it, which is acceptable for a single process.
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*attempts
}

type attempts struct {
	n     int
	start time.Time
}

// maxEntries bounds memory: past it, expired windows are dropped, and if
// none has expired the oldest entry goes.
const maxEntries = 100_000

// NewLimiter allows max failed attempts per key within window.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, now: time.Now, entries: map[string]*attempts{}}
}

func limiterKey(email, ip string) string { return normaliseEmail(email) + "|" + ip }

// Allow returns a TooManyRequests problem when the key has used up its
// failed attempts in the current window.
func (l *Limiter) Allow(email, ip string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.entries[limiterKey(email, ip)]
	if !ok || l.now().Sub(a.start) >= l.window || a.n < l.max {
		return nil
	}
	wait := a.start.Add(l.window).Sub(l.now())
	minutes := int(math.Ceil(wait.Minutes()))
	unit := "minutes"
	if minutes == 1 {
		unit = "minute"
	}
	return problem.New(problem.TooManyRequests, fmt.Sprintf("Too many sign-in attempts; try again in %d %s", minutes, unit))
}

// Fail records a failed attempt.
func (l *Limiter) Fail(email, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k := limiterKey(email, ip)
	a, ok := l.entries[k]
	if !ok || now.Sub(a.start) >= l.window {
		if len(l.entries) >= maxEntries {
			l.evict(now)
		}
		a = &attempts{start: now}
		l.entries[k] = a
	}
	a.n++
}

// Reset forgets the key's failures after a successful sign-in.
func (l *Limiter) Reset(email, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, limiterKey(email, ip))
}

func (l *Limiter) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, a := range l.entries {
		if now.Sub(a.start) >= l.window {
			delete(l.entries, k)
			continue
		}
		if oldestKey == "" || a.start.Before(oldest) {
			oldestKey, oldest = k, a.start
		}
	}
	if len(l.entries) >= maxEntries {
		delete(l.entries, oldestKey)
	}
}
