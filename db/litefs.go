package db

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// LiteFS is a LiteFS mount (github.com/superfly/litefs) holding the module
// files: a FUSE file system that replicates each SQLite file from the one
// primary, which holds the cluster's lease, to every replica. The mount
// says who the primary is and how far each file has come, in files of its
// own; this is the code that reads them.
//
// A file's position is its LiteFS transaction id (TXID): one more for
// every commit on the primary, the same number on every node once the
// commit has reached it.
type LiteFS struct {
	Dir string
}

// Role says whether this node is the primary (it holds the lease) and,
// when it is not, the primary's hostname (as the primary's litefs.yml names
// it under lease.hostname), "" while no node holds the lease (an election:
// the old primary's lease has not run out yet). The mount shows a .primary
// file, naming the primary, only on a replica that knows one; its .lag
// file reads 0 on the primary (LiteFS's own marker, primary timestamp 0)
// and the time since the primary was last heard from elsewhere.
func (m LiteFS) Role() (leading bool, primary string, err error) {
	b, err := os.ReadFile(filepath.Join(m.Dir, ".primary"))
	switch {
	case err == nil:
		if host := strings.TrimSpace(string(b)); host != "" {
			return false, host, nil
		}
		return false, "", fmt.Errorf("litefs: .primary is empty")
	case !errors.Is(err, os.ErrNotExist):
		return false, "", fmt.Errorf("litefs: read .primary: %w", err)
	}
	lag, err := os.ReadFile(filepath.Join(m.Dir, ".lag"))
	if err != nil {
		return false, "", fmt.Errorf("litefs: read .lag: %w", err)
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(lag)), 10, 64)
	if err != nil {
		return false, "", fmt.Errorf("litefs: .lag: %q is not a number", lag)
	}
	return ms == 0, "", nil
}

// Mounted reports whether dir is a LiteFS mount: it has the .lag file
// every LiteFS mount shows, primary or not.
func (m LiteFS) Mounted() bool {
	_, err := os.Stat(filepath.Join(m.Dir, ".lag"))
	return err == nil
}

// Position returns the TXID the module file name.db has reached on this
// node (its -pos file reads "<txid>/<checksum>", both hexadecimal); 0 when
// the file does not exist yet.
func (m LiteFS) Position(name string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(m.Dir, name+".db-pos"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("litefs: read %s.db-pos: %w", name, err)
	}
	return parsePosition(name, b)
}

func parsePosition(name string, b []byte) (uint64, error) {
	txid, _, ok := strings.Cut(strings.TrimSpace(string(b)), "/")
	if !ok {
		return 0, fmt.Errorf("litefs: %s.db-pos: %q is not <txid>/<checksum>", name, b)
	}
	n, err := strconv.ParseUint(txid, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("litefs: %s.db-pos: %w", name, err)
	}
	return n, nil
}

// Positions reads positions like Position, through -pos files it keeps
// open: a read is then one pread, served from the kernel's cache until
// LiteFS invalidates it on the next commit, where Position costs an open,
// a stat, a read and a close, each a round trip to LiteFS. The request
// path reads them on every write. Safe for concurrent use.
type Positions struct {
	m     LiteFS
	mu    sync.Mutex
	files map[string]*os.File
}

// Positions returns a reader of the mount's positions.
func (m LiteFS) Positions() *Positions {
	return &Positions{m: m, files: map[string]*os.File{}}
}

// Position returns the TXID of name.db, 0 when it does not exist yet.
func (p *Positions) Position(name string) (uint64, error) {
	p.mu.Lock()
	f := p.files[name]
	if f == nil {
		var err error
		f, err = os.Open(filepath.Join(p.m.Dir, name+".db-pos"))
		if errors.Is(err, os.ErrNotExist) {
			p.mu.Unlock()
			return 0, nil
		}
		if err != nil {
			p.mu.Unlock()
			return 0, fmt.Errorf("litefs: open %s.db-pos: %w", name, err)
		}
		p.files[name] = f
	}
	p.mu.Unlock()
	var buf [64]byte
	n, err := f.ReadAt(buf[:], 0)
	if n == 0 && err != nil {
		p.mu.Lock()
		if p.files[name] == f {
			delete(p.files, name) // opened again next time
			f.Close()
		}
		p.mu.Unlock()
		return 0, fmt.Errorf("litefs: read %s.db-pos: %w", name, err)
	}
	return parsePosition(name, buf[:n])
}

// Close closes the files.
func (p *Positions) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, f := range p.files {
		f.Close()
		delete(p.files, name)
	}
}
