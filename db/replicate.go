package db

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file" // file:// replicas
	"github.com/benbjohnson/litestream/s3"   // s3:// replicas
	"github.com/superfly/ltx"
)

// Replication streams every module file to object storage with an
// embedded Litestream (v0.5.18: its library API is not declared stable,
// so it is pinned), and restores files from there to a chosen transaction
// (Points, RestoreTo; which transactions make a consistent set of files is
// the app's business). Each file replicates under <url>/<module>.
//
// Order matters, as Litestream's library documentation says: restore
// missing files, open the store, then open the app's connections; at the
// end, sync, close the app's connections, close the store last.
type Replication struct {
	// SyncInterval is how often each file's new writes are read from its
	// WAL and shipped to the replica: the bound on what a lost machine
	// loses, about twice it at worst (the two steps tick on their own).
	// Zero is Litestream's default, 1s for each.
	SyncInterval time.Duration
	// MetaDir, when set, is where Litestream keeps its state of each file
	// (by default a directory beside the file, which a LiteFS mount
	// cannot hold).
	MetaDir string

	url    *url.URL
	getenv func(string) string
	logger *slog.Logger
	mu     sync.Mutex
	dbs    map[string]*litestream.DB
	store  *litestream.Store
}

// NewReplication parses LITESTREAM_REPLICA_URL: s3://bucket/prefix (with
// ?endpoint=...&force-path-style=true for S3-compatible stores) or
// file:///absolute/path. getenv supplies what Fly's object storage sets:
// BUCKET_NAME (used when the URL has no bucket), AWS_ENDPOINT_URL_S3 (used
// when it has no endpoint), AWS_REGION (when it has no region), and the
// credentials AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
func NewReplication(raw string, getenv func(string) string, logger *slog.Logger) (*Replication, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("LITESTREAM_REPLICA_URL: %w", err)
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			u.Host = getenv("BUCKET_NAME")
		}
		if u.Host == "" {
			return nil, errors.New("LITESTREAM_REPLICA_URL: no bucket (s3://bucket/path, or set BUCKET_NAME)")
		}
		q := u.Query()
		if q.Get("endpoint") == "" && getenv("AWS_ENDPOINT_URL_S3") != "" {
			q.Set("endpoint", getenv("AWS_ENDPOINT_URL_S3"))
			u.RawQuery = q.Encode()
		}
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !filepath.IsAbs(u.Path) {
			return nil, errors.New("LITESTREAM_REPLICA_URL: a file:// replica needs an absolute path (file:///var/backups/ticketing)")
		}
	default:
		return nil, fmt.Errorf("LITESTREAM_REPLICA_URL: scheme %q: want s3:// or file://", u.Scheme)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Replication{url: u, getenv: getenv, logger: logger, dbs: map[string]*litestream.DB{}}, nil
}

// String is the replica URL without credentials.
func (r *Replication) String() string { return r.url.Redacted() }

// client returns the replica client for one module file.
func (r *Replication) client(ctx context.Context, name string) (litestream.ReplicaClient, error) {
	var c litestream.ReplicaClient
	if r.url.Scheme == "file" {
		// Litestream's URL parsing escapes a file path (/data(1) becomes
		// /data%281%29, somewhere else), so the client is made directly.
		c = file.NewReplicaClient(filepath.Join(r.url.Path, name))
	} else {
		u := *r.url
		u.Path = strings.TrimSuffix(u.Path, "/") + "/" + name
		var err error
		if c, err = litestream.NewReplicaClientFromURL(u.String()); err != nil {
			return nil, fmt.Errorf("replica client for %s: %w", name, err)
		}
	}
	if sc, ok := c.(*s3.ReplicaClient); ok {
		// Litestream reads these from the process environment; the
		// configuration is what getenv says.
		if v := r.getenv("AWS_ACCESS_KEY_ID"); v != "" {
			sc.AccessKeyID = v
		}
		if v := r.getenv("AWS_SECRET_ACCESS_KEY"); v != "" {
			sc.SecretAccessKey = v
		}
		if v := r.getenv("AWS_REGION"); v != "" && sc.Region == "" {
			sc.Region = v
		}
	}
	if err := c.Init(ctx); err != nil {
		return nil, fmt.Errorf("replica client for %s: %w", name, err)
	}
	return c, nil
}

// Point is a transaction the replica of a file can restore to exactly.
type Point struct {
	TXID uint64
	// Synced is when the replica first had it: a sync time, not a commit
	// time, so it bounds a point in time but does not order the points of
	// different files against each other.
	Synced time.Time
}

// Points returns the points of one module file's replica, oldest first:
// the last transaction of every LTX file it holds, at every level. With
// exact, the sync times are read from the files themselves (slower on
// S3), not from the store's listing. No points means the replica holds
// nothing of the file.
func (r *Replication) Points(ctx context.Context, name string, exact bool) ([]Point, error) {
	c, err := r.client(ctx, name)
	if err != nil {
		return nil, err
	}
	synced := map[uint64]time.Time{}
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		itr, err := c.LTXFiles(ctx, level, 0, exact)
		if err != nil {
			return nil, fmt.Errorf("list %s's backups at level %d: %w", name, level, err)
		}
		for itr.Next() {
			f := itr.Item()
			if at, ok := synced[uint64(f.MaxTXID)]; !ok || f.CreatedAt.Before(at) {
				synced[uint64(f.MaxTXID)] = f.CreatedAt
			}
		}
		if err := itr.Close(); err != nil {
			return nil, fmt.Errorf("list %s's backups at level %d: %w", name, level, err)
		}
	}
	points := make([]Point, 0, len(synced))
	for txid, at := range synced {
		points = append(points, Point{TXID: txid, Synced: at})
	}
	slices.SortFunc(points, func(a, b Point) int { return cmp.Compare(a.TXID, b.TXID) })
	return points, nil
}

// ErrNoPoint is a transaction the replica cannot restore to exactly.
var ErrNoPoint = errors.New("the replica cannot restore to this transaction")

// RestoreTo writes the module file as it was at transaction txid (one of
// Points) to path, which must not exist, and checks it with quick_check.
func (r *Replication) RestoreTo(ctx context.Context, name string, txid uint64, path string) error {
	c, err := r.client(ctx, name)
	if err != nil {
		return err
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = path
	opt.TXID = ltx.TXID(txid)
	opt.IntegrityCheck = litestream.IntegrityCheckQuick
	err = litestream.NewReplicaWithClient(nil, c).Restore(ctx, opt)
	switch {
	case errors.Is(err, litestream.ErrTxNotAvailable), errors.Is(err, litestream.ErrNoSnapshots):
		return fmt.Errorf("%w: %s.db at %d", ErrNoPoint, name, txid)
	case err != nil:
		return fmt.Errorf("restore %s.db at transaction %d from %s: %w", name, txid, r.String(), err)
	}
	return nil
}

// ForgetLocalState removes what Litestream keeps beside a file about its
// replication (the .<name>.db-litestream directory). A file replaced by
// one restored from an earlier point must not carry the replaced file's
// position: Litestream then sees a file behind its replica, and starts it
// again from a snapshot of what is there.
func ForgetLocalState(path string) error {
	dir, file := filepath.Split(path)
	return os.RemoveAll(filepath.Join(dir, "."+file+litestream.MetaDirSuffix))
}

// Start opens the Litestream store over the named files (name → path),
// before the app opens its own connections to them.
func (r *Replication) Start(ctx context.Context, files map[string]string) error {
	var dbs []*litestream.DB
	opened := map[string]*litestream.DB{}
	for name, path := range files {
		c, err := r.client(ctx, name)
		if err != nil {
			return err
		}
		d := litestream.NewDB(path)
		if r.MetaDir != "" {
			// A LiteFS mount holds only databases: Litestream's own
			// state goes beside it.
			d.SetMetaPath(filepath.Join(r.MetaDir, "."+name+".db"+litestream.MetaDirSuffix))
		}
		d.Replica = litestream.NewReplicaWithClient(d, c)
		if r.SyncInterval > 0 {
			d.MonitorInterval = r.SyncInterval
			d.Replica.SyncInterval = r.SyncInterval
		}
		opened[name] = d
		dbs = append(dbs, d)
	}
	store := litestream.NewStore(dbs, litestream.CompactionLevels{
		{Level: 0},
		{Level: 1, Interval: 30 * time.Second},
		{Level: 2, Interval: 5 * time.Minute},
	})
	if err := store.Open(ctx); err != nil {
		return fmt.Errorf("open replication store: %w", err)
	}
	r.mu.Lock()
	r.dbs, r.store = opened, store
	r.mu.Unlock()
	r.logger.Info("replicating", "replica", r.String(), "files", len(dbs))
	return nil
}

// Sync pushes every file's latest writes to the replica and waits.
func (r *Replication) Sync(ctx context.Context) error {
	var errs []error
	for name, d := range r.files() {
		if err := d.SyncAndWait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sync %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Close closes the store; call it after the app's connections are closed.
func (r *Replication) Close(ctx context.Context) error {
	r.mu.Lock()
	store := r.store
	r.store = nil // Start may open it again (a cluster node regaining the lease)
	r.mu.Unlock()
	if store == nil {
		return nil
	}
	return store.Close(ctx)
}

// files returns the Litestream databases while the store is open, nil
// otherwise (before Start, after Close).
func (r *Replication) files() map[string]*litestream.DB {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil {
		return nil
	}
	return r.dbs
}

// ReplicaStatus is one file's replication state, for /healthz.
type ReplicaStatus struct {
	LocalTXID  uint64 `json:"localTxid"`
	RemoteTXID uint64 `json:"remoteTxid"`
	InSync     bool   `json:"inSync"`
	Error      string `json:"error,omitempty"`
}

// Status reports every file's local and remote positions.
func (r *Replication) Status(ctx context.Context) map[string]ReplicaStatus {
	dbs := r.files()
	if dbs == nil {
		return nil // not streaming (a cluster node that is not the primary)
	}
	out := make(map[string]ReplicaStatus, len(dbs))
	for name, d := range dbs {
		st, err := d.SyncStatus(ctx)
		s := ReplicaStatus{LocalTXID: uint64(st.LocalTXID), RemoteTXID: uint64(st.RemoteTXID), InSync: st.InSync}
		if err != nil {
			s.Error = err.Error()
		}
		out[name] = s
	}
	return out
}
