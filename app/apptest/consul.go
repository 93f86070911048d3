package apptest

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// ConsulStandIn is a stand-in for Consul, for the LiteFS failover tests:
// no Consul agent can be built or run here. It serves exactly the part of
// Consul's HTTP API that LiteFS's lease uses (github.com/superfly/litefs
// consul/consul.go at v0.5.14): sessions with a TTL (create, renew,
// destroy) and key/value entries locked by a session (get, put, acquire,
// release). A session not renewed within its TTL expires and, as with
// Behavior "delete", the keys it held go with it, which is how a dead
// primary's lease ends. Unlike Consul, it has no lock delay and expires a
// session at its TTL, not within twice it; it keeps everything in memory.
type ConsulStandIn struct {
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	sessions map[string]time.Time // id → when it expires
	ttls     map[string]time.Duration
	kv       map[string]consulEntry
	index    uint64
	refused  []string // acquires whose value names one of these fail
}

// Partition makes the node whose lease hostname is host unable to take a
// lock from now on, and ends the session holding key if that node holds
// it: the primary cut off from Consul, as far as its lease can tell. It
// keeps running, and must step down.
func (c *ConsulStandIn) Partition(key, host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refused = append(c.refused, host)
	if e, ok := c.kv[key]; ok && e.session != "" && strings.Contains(string(e.value), host) {
		c.destroy(e.session)
	}
}

type consulEntry struct {
	value   []byte
	session string
}

// NewConsulStandIn starts the stand-in on 127.0.0.1.
func NewConsulStandIn() *ConsulStandIn {
	c := &ConsulStandIn{sessions: map[string]time.Time{}, ttls: map[string]time.Duration{}, kv: map[string]consulEntry{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	c.URL = c.srv.URL
	return c
}

// Close stops it.
func (c *ConsulStandIn) Close() { c.srv.Close() }

// Holder returns the value of key, and whether a live session holds it.
func (c *ConsulStandIn) Holder(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(time.Now())
	e, ok := c.kv[key]
	return string(e.value), ok && e.session != ""
}

// expire ends the sessions past their TTL and deletes their keys.
func (c *ConsulStandIn) expire(now time.Time) {
	for id, at := range c.sessions {
		if now.After(at) {
			c.destroy(id)
		}
	}
}

func (c *ConsulStandIn) destroy(id string) {
	delete(c.sessions, id)
	delete(c.ttls, id)
	for k, e := range c.kv {
		if e.session == id {
			delete(c.kv, k)
		}
	}
}

func (c *ConsulStandIn) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.expire(now)
	c.index++
	// The Consul client parses these on every answer.
	w.Header().Set("X-Consul-Index", "1")
	w.Header().Set("X-Consul-LastContact", "0")
	w.Header().Set("X-Consul-KnownLeader", "true")
	w.Header().Set("Content-Type", "application/json")
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPut && path == "/v1/session/create":
		var body struct{ TTL string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ttl, err := time.ParseDuration(body.TTL)
		if err != nil || ttl <= 0 {
			http.Error(w, "bad TTL", http.StatusBadRequest)
			return
		}
		id := rand.Text()
		c.sessions[id], c.ttls[id] = now.Add(ttl), ttl
		json.NewEncoder(w).Encode(map[string]string{"ID": id})
	case r.Method == http.MethodPut && strings.HasPrefix(path, "/v1/session/renew/"):
		id := strings.TrimPrefix(path, "/v1/session/renew/")
		if _, ok := c.sessions[id]; !ok {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		c.sessions[id] = now.Add(c.ttls[id])
		json.NewEncoder(w).Encode([]map[string]string{{"ID": id, "TTL": c.ttls[id].String()}})
	case r.Method == http.MethodPut && strings.HasPrefix(path, "/v1/session/destroy/"):
		c.destroy(strings.TrimPrefix(path, "/v1/session/destroy/"))
		io.WriteString(w, "true")
	case strings.HasPrefix(path, "/v1/kv/"):
		c.serveKV(w, r, strings.TrimPrefix(path, "/v1/kv/"))
	default:
		http.Error(w, "not part of the stand-in: "+r.Method+" "+path, http.StatusNotImplemented)
	}
}

func (c *ConsulStandIn) serveKV(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		e, ok := c.kv[key]
		if !ok {
			http.Error(w, "", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode([]map[string]any{{
			"Key": key, "Value": e.value, "Session": e.session, "Flags": 0,
			"CreateIndex": 1, "ModifyIndex": c.index, "LockIndex": 1,
		}})
	case http.MethodPut:
		value, _ := io.ReadAll(r.Body)
		e, exists := c.kv[key]
		switch {
		case q.Has("acquire"):
			id := q.Get("acquire")
			refused := false
			for _, h := range c.refused {
				refused = refused || strings.Contains(string(value), h)
			}
			if _, live := c.sessions[id]; !live || refused || exists && e.session != "" && e.session != id {
				io.WriteString(w, "false")
				return
			}
			c.kv[key] = consulEntry{value: value, session: id}
		case q.Has("release"):
			if !exists || e.session != q.Get("release") {
				io.WriteString(w, "false")
				return
			}
			e.session = ""
			c.kv[key] = e
		default:
			c.kv[key] = consulEntry{value: value, session: e.session}
		}
		io.WriteString(w, "true")
	default:
		http.Error(w, "not part of the stand-in", http.StatusNotImplemented)
	}
}
