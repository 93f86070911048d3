// Package cluster runs the process as one node of a LiteFS cluster: the
// module files live on a LiteFS mount, one node (the primary, which holds
// the lease) writes them, and the others (replicas) receive every commit a
// few milliseconds later and serve reads from their own copies.
//
// A Node knows its role from the mount and follows it without a restart:
// the work that writes (consumers, sweeper, workers, backups) runs while
// it is the primary and stops when it is not (Hooks). On a replica it
// watches each file's position, so live pages wake when a commit arrives
// (Hooks.Changed), and its HTTP middleware (Forward) hands every request
// that writes to the primary and makes a read wait until this node has
// what the reader last wrote (Positions, the positions cookie).
//
// Running on one machine with plain files, the default, uses none of this.
package cluster

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"ticketing/db"
)

// Config is a node's place in the cluster.
type Config struct {
	Mount db.LiteFS
	// Files are the module names whose files (name.db) the node follows.
	Files []string
	// FlyReplay answers a write on a replica with a fly-replay header
	// naming the primary's machine (on Fly, where the lease's hostname is
	// the machine id), instead of proxying it.
	FlyReplay bool
	// PrimaryURL is where a replica proxies a write, from the primary's
	// lease hostname (http://<hostname> by default).
	PrimaryURL func(host string) string
	// ClientIPHeader is the header the primary reads the client's address
	// from (TRUSTED_PROXY_HEADER); a proxied write carries it, set to the
	// address this node saw.
	ClientIPHeader string
	// MaxLag bounds how long a read waits for this replica to reach the
	// reader's last write before the primary serves it (default 2 s).
	MaxLag time.Duration
	// Interval is how often the node reads the files' positions (default
	// 10 ms); the role is read every tenth time.
	Interval time.Duration
	Logger   *slog.Logger
}

// Hooks are what the app does when the node's role or files change. They
// are called from Run's goroutine, one at a time.
type Hooks struct {
	// Lead starts the work only the primary does, when the node becomes
	// the primary (and at start, if it is).
	Lead func() error
	// Follow stops that work, when the node stops being the primary (and
	// at start, if it is not).
	Follow func()
	// Changed is called on a replica when file name has advanced: a commit
	// on the primary has arrived.
	Changed func(name string)
}

// Node is this process's view of the cluster.
type Node struct {
	cfg Config

	mu      sync.Mutex
	known   bool   // the role has been read once
	leading bool   // this node is the primary
	primary string // else the primary's hostname, "" during an election
	seen    map[string]uint64
	files   map[string]bool
	pos     *db.Positions
	last    atomic.Pointer[map[string]uint64] // the latest write's reading of every position (primary)
	moved   chan struct{}                     // closed and replaced when seen advances
	poke    chan struct{}
}

// New returns a node; nothing runs until Run.
func New(cfg Config) *Node {
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = 2 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	if cfg.PrimaryURL == nil {
		cfg.PrimaryURL = func(host string) string { return "http://" + host }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	files := map[string]bool{}
	for _, name := range cfg.Files {
		files[name] = true
	}
	return &Node{cfg: cfg, seen: map[string]uint64{}, files: files, pos: cfg.Mount.Positions(), moved: make(chan struct{}), poke: make(chan struct{}, 1)}
}

// Role returns whether this node is the primary, else the primary's
// hostname ("" during an election), and whether the role is known yet.
func (n *Node) Role() (leading bool, primary string, known bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leading, n.primary, n.known
}

// IsPrimary reports whether this node is the primary now.
func (n *Node) IsPrimary() bool {
	leading, _, known := n.Role()
	return known && leading
}

// Run reads the role at once (calling Lead or Follow), then follows the
// mount until ctx ends: a change of primary calls Lead or Follow, a
// replicated commit calls Changed.
func (n *Node) Run(ctx context.Context, h Hooks) {
	leading := false
	first := true
	tick := time.NewTicker(n.cfg.Interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		if first || i%10 == 0 {
			lead, host, err := n.cfg.Mount.Role()
			switch {
			case err != nil:
				n.cfg.Logger.Warn("cluster: cannot read the role from the mount", "err", err)
			case lead && (!leading || first):
				n.cfg.Logger.Info("cluster: this node is the primary; starting the work that writes")
				if err := h.Lead(); err != nil {
					n.cfg.Logger.Error("cluster: starting as primary failed; trying again", "err", err)
					h.Follow()
					break
				}
				leading, first = true, false
				n.last.Store(nil) // another term's readings may be ahead of these files
				n.setRole(true, "")
			case !lead && (leading || first):
				if leading {
					n.cfg.Logger.Warn("cluster: this node is no longer the primary; stopping the work that writes", "primary", host)
				} else {
					n.cfg.Logger.Info("cluster: this node is a replica", "primary", host)
				}
				h.Follow()
				leading, first = false, false
				n.setRole(false, host)
			case !lead:
				n.setRole(false, host)
			}
		}
		if !leading && !first {
			n.follow(h.Changed)
		}
		select {
		case <-ctx.Done():
			if leading {
				h.Follow()
			}
			n.pos.Close()
			return
		case <-tick.C:
		case <-n.poke:
		}
	}
}

func (n *Node) setRole(leading bool, primary string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.known && (n.leading != leading || n.primary != primary) {
		n.cfg.Logger.Info("cluster: the primary changed", "this_node", leading, "primary", primary)
	}
	n.leading, n.primary, n.known = leading, primary, true
}

// follow reads every file's position and reports the ones that moved.
func (n *Node) follow(changed func(string)) {
	var moved []string
	now := n.Current()
	n.mu.Lock()
	for name, pos := range now {
		if pos != n.seen[name] {
			moved = append(moved, name)
		}
	}
	n.mu.Unlock()
	// Changed runs before the new positions count as reached: a read
	// waiting for them then finds what Changed refreshed (a session
	// ended, a log's head) already done.
	for _, name := range moved {
		if changed != nil {
			changed(name)
		}
	}
	if len(moved) == 0 {
		return
	}
	n.mu.Lock()
	maps.Copy(n.seen, now)
	close(n.moved)
	n.moved = make(chan struct{})
	n.mu.Unlock()
}

// Current returns the position of every file on this node, read now; a
// file it cannot read is logged and left out.
func (n *Node) Current() map[string]uint64 {
	out := make(map[string]uint64, len(n.cfg.Files))
	for _, name := range n.cfg.Files {
		pos, err := n.pos.Position(name)
		if err != nil {
			n.cfg.Logger.Warn("cluster: cannot read a file's position", "file", name, "err", err)
			continue
		}
		out[name] = pos
	}
	return out
}

// WaitFor waits until this replica has reached every position in want (as
// Run has seen them), or ctx ends or MaxLag passes; it reports whether it
// did.
func (n *Node) WaitFor(ctx context.Context, want map[string]uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.MaxLag)
	defer cancel()
	for {
		n.mu.Lock()
		ok := true
		for name, pos := range want {
			if _, ours := n.files[name]; ours && n.seen[name] < pos {
				ok = false
				break
			}
		}
		moved := n.moved
		n.mu.Unlock()
		if ok {
			return true
		}
		select {
		case n.poke <- struct{}{}: // read the positions now, not at the next tick
		default:
		}
		select {
		case <-moved:
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return false
		}
	}
}
