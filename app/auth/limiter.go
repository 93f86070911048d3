package auth

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"ticketing/app/problem"
)

// Rate is N events per Per, refilled evenly (a token bucket of N).
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate reads "N/duration", such as "20/1h".
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(s, "/")
	r := Rate{}
	var err error
	if ok {
		if r.N, err = strconv.Atoi(n); err == nil {
			r.Per, err = time.ParseDuration(per)
		}
	}
	if !ok || err != nil || r.N <= 0 || r.Per <= 0 {
		return Rate{}, fmt.Errorf("%q: want N/duration such as 20/1h", s)
	}
	return r, nil
}

// Limits are the sign-in and sign-up limits. A zero Rate means the default.
type Limits struct {
	// SignInFailuresPerAccount counts failed sign-ins of one account,
	// from any address: guessing one password is slow however many
	// addresses the guesser has.
	SignInFailuresPerAccount Rate
	// SignInPerIP counts sign-in attempts from one client address, so
	// one address cannot try many accounts.
	SignInPerIP Rate
	// SignUpPerIP counts sign-ups from one client address.
	SignUpPerIP Rate
	// ResetPerAccount and ResetPerIP count password reset requests for
	// one address and from one client.
	ResetPerAccount, ResetPerIP Rate
}

// DefaultLimits are the limits when none are configured.
var DefaultLimits = Limits{
	SignInFailuresPerAccount: Rate{10, 15 * time.Minute},
	SignInPerIP:              Rate{50, 15 * time.Minute},
	SignUpPerIP:              Rate{20, time.Hour},
	ResetPerAccount:          Rate{3, time.Hour},
	ResetPerIP:               Rate{10, time.Hour},
}

// Limiter applies the Limits with golang.org/x/time/rate buckets, one per
// account or client address, in memory (a restart forgets them, which is
// acceptable for one process), with at most maxKeys buckets per limit.
type Limiter struct {
	account, signInIP, signUpIP *buckets
	resetAccount, resetIP       *buckets
	now                         func() time.Time
}

// NewLimiter returns a limiter for l (zero rates take the defaults).
func NewLimiter(l Limits) *Limiter {
	or := func(r, def Rate) Rate {
		if r.N == 0 {
			return def
		}
		return r
	}
	d := DefaultLimits
	return &Limiter{
		account:      newBuckets("sign-in attempts", or(l.SignInFailuresPerAccount, d.SignInFailuresPerAccount)),
		signInIP:     newBuckets("sign-in attempts", or(l.SignInPerIP, d.SignInPerIP)),
		signUpIP:     newBuckets("sign-ups", or(l.SignUpPerIP, d.SignUpPerIP)),
		resetAccount: newBuckets("password reset requests", or(l.ResetPerAccount, d.ResetPerAccount)),
		resetIP:      newBuckets("password reset requests", or(l.ResetPerIP, d.ResetPerIP)),
		now:          time.Now,
	}
}

// SignIn takes a sign-in attempt of email from ip, or refuses it with a
// TooManyRequests problem. The caller reports the outcome with done: a
// successful sign-in gives the account's token back, so only failures
// count against an account.
func (l *Limiter) SignIn(email, ip string) (done func(ok bool), err error) {
	now := l.now()
	// An attempt from an address counts whatever its outcome.
	if _, err := l.signInIP.take(clientKey(ip), now); err != nil {
		return nil, err
	}
	byAccount, err := l.account.take(normaliseEmail(email), now)
	if err != nil {
		return nil, err
	}
	return func(ok bool) {
		if ok {
			byAccount.CancelAt(l.now())
		}
	}, nil
}

// SignUp takes a sign-up from ip, or refuses it.
func (l *Limiter) SignUp(ip string) error {
	_, err := l.signUpIP.take(clientKey(ip), l.now())
	return err
}

// Reset takes a password reset request for email from ip, or refuses it.
func (l *Limiter) Reset(email, ip string) error {
	now := l.now()
	if _, err := l.resetIP.take(clientKey(ip), now); err != nil {
		return err
	}
	_, err := l.resetAccount.take(normaliseEmail(email), now)
	return err
}

// clientKey is the bucket of an address: an IPv6 client gets a /64 (one
// subscriber's share, which it can fill with addresses at will), an IPv4
// client its address.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a.Is4() || a.Is4In6() {
		return a.Unmap().String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// maxKeys bounds each limit's memory; past it, arbitrary buckets are
// dropped (a dropped key starts again with a full bucket).
const maxKeys = 100_000

type buckets struct {
	what  string // "sign-in attempts", for the message
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newBuckets(what string, r Rate) *buckets {
	return &buckets{what: what, limit: rate.Every(r.Per / time.Duration(r.N)), burst: r.N, m: map[string]*rate.Limiter{}}
}

// take reserves one event for key now, or answers how long to wait.
func (b *buckets) take(key string, now time.Time) (*rate.Reservation, error) {
	b.mu.Lock()
	l, ok := b.m[key]
	if !ok {
		if len(b.m) >= maxKeys {
			n := 0
			for k := range b.m {
				delete(b.m, k)
				if n++; n == 64 {
					break
				}
			}
		}
		l = rate.NewLimiter(b.limit, b.burst)
		b.m[key] = l
	}
	b.mu.Unlock()
	r := l.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return nil, tooMany(b.what, wait)
	}
	return r, nil
}

func tooMany(what string, wait time.Duration) error {
	minutes := int(math.Ceil(wait.Minutes()))
	unit := "minutes"
	if minutes == 1 {
		unit = "minute"
	}
	return problem.New(problem.TooManyRequests, fmt.Sprintf("Too many %s; try again in %d %s", what, minutes, unit))
}
