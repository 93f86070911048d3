package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"ticketing/db"
)

// Sessions are the server's record of who is signed in where (auth.db's
// sessions table), so that signing out ends a session for every copy of
// its cookie. The cookie (app/web) carries the session's id; every request
// asks SessionUser, which answers from memory after the first time, so
// the hot path reads no file.
//
// No event announces a session: no other module needs to know, and the
// log would fill with sign-ins.

// maxCachedSessions bounds the cache; past it an arbitrary entry goes (it
// is read from auth.db again when next used).
const maxCachedSessions = 100_000

type cachedSession struct {
	userID  string
	expires time.Time
}

// sessionCache holds the live sessions seen lately. ended counts the
// sessions ended; a lookup that read the file while one ended does not
// cache what it read, which may already be gone.
type sessionCache struct {
	mu    sync.RWMutex
	m     map[string]cachedSession
	ended uint64
}

func (c *sessionCache) get(id string) (cachedSession, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.m[id]
	return s, c.ended, ok
}

func (c *sessionCache) put(id string, s cachedSession, ended uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended != ended {
		return
	}
	if len(c.m) >= maxCachedSessions {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[id] = s
}

// endUser forgets every cached session of a user.
func (c *sessionCache) endUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended++
	for id, s := range c.m {
		if s.userID == userID {
			delete(c.m, id)
		}
	}
}

func (c *sessionCache) end(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended++
	delete(c.m, id)
}

// ForgetSessions empties the cache: on a replica of a cluster, where
// sessions are ended by the primary, every commit that reaches auth.db
// calls it, so a session signed out there is not served here from memory.
func (s *Store) ForgetSessions() {
	c := &s.sessions
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended++
	clear(c.m)
}

// BeginSession records a new session of userID, valid for ttl, and
// returns its id. Sessions that have run out are cleared on the way.
func (s *Store) BeginSession(ctx context.Context, userID string, ttl time.Duration) (string, error) {
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	now := time.Now().UTC()
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires_at < ?", db.Timestamp(now)); err != nil {
			return fmt.Errorf("clear expired sessions: %w", err)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
			id, userID, db.Timestamp(now), db.Timestamp(now.Add(ttl)))
		if err != nil {
			return fmt.Errorf("record session of user %s: %w", userID, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// SessionUser returns the user a live session belongs to, "" when the
// session has ended, run out or never existed.
func (s *Store) SessionUser(ctx context.Context, id string) (string, error) {
	now := time.Now()
	cs, ended, ok := s.sessions.get(id)
	if !ok {
		var expires string
		err := s.db.Read().QueryRowContext(ctx, "SELECT user_id, expires_at FROM sessions WHERE id = ?", id).Scan(&cs.userID, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("find session: %w", err)
		}
		if cs.expires, err = db.ParseTime(expires); err != nil {
			return "", fmt.Errorf("session expiry %q: %w", expires, err)
		}
		s.sessions.put(id, cs, ended)
	}
	if !now.Before(cs.expires) {
		return "", nil
	}
	return cs.userID, nil
}

// EndSession ends one session (signing out): every copy of its cookie is
// refused from now on.
func (s *Store) EndSession(ctx context.Context, id string) error {
	err := s.db.Tx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE id = ?", id)
		return err
	})
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	// Only once the row is gone: a lookup that reads it after this cannot
	// find it, and one that read it before is not cached (ended moved).
	s.sessions.end(id)
	return nil
}
