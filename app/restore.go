package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"ticketing/db"
	"ticketing/events"
)

// A restore brings the module files back to one consistent cut: a point
// for each file such that no consumer has applied more of a source's log
// than the source's file holds. Any such set of files is a state the
// running process could have been in (consumers merely behind), so every
// cross-module rule holds once the consumers catch up; and no log reuses a
// seq a consumer has already applied.
//
// Each file replicates on its own, so the latest point of each is not a
// cut in general: one file's latest may be older than what its consumers
// applied. The search starts every file at its latest point and, while a
// consumer is past its source's head, takes that consumer back to the
// latest earlier point where it is not (a binary search: positions only
// grow along a file's history). Taking a file back shortens its own log,
// which can put its consumers past it in turn; the search goes on until
// no gap is left. Points only move back, so it ends, at the latest cut the
// replicas allow.

// RestoreOptions choose what a restore starts from.
type RestoreOptions struct {
	// Timestamp, when set, starts every file from its latest point synced
	// before it, instead of its latest point (the files in the data
	// directory are then not used).
	Timestamp time.Time
	// UseLocal counts a module file already in the data directory as that
	// module's latest point, unless the replica has a newer one (the
	// start's repair after losing some files). Without it the files there
	// are moved aside and replaced (`ticketing restore`).
	UseLocal bool
}

// Cut is what a restore did.
type Cut struct {
	Modules []ModuleCut
	// Probes is how many file versions the search restored and looked at.
	Probes int
	Took   time.Duration
}

// Changed reports whether any module file was replaced or created.
func (c *Cut) Changed() bool {
	for _, m := range c.Modules {
		if m.Source != SourceLocal && m.Source != SourceNone {
			return true
		}
	}
	return false
}

// ModuleCut is where one module file was brought back to.
type ModuleCut struct {
	Name   string
	Source string // SourceLocal, SourceReplica, SourceEmpty or SourceNone
	TXID   uint64 // the replica's transaction, with SourceReplica
	Head   int64  // the last seq of the module's log
	// Lost counts by type the events of the newest copy there was (the
	// local file or the replica's latest point) that the cut does not have.
	Lost map[string]int
	// MovedAside is where the file that was in the data directory went.
	MovedAside string
}

// Where a module file came from in a restore.
const (
	SourceLocal   = "local"   // the file already in the data directory, kept
	SourceReplica = "replica" // restored from the replica
	SourceEmpty   = "empty"   // taken back past the replica's first point: the module starts empty
	SourceNone    = "none"    // no file and no backup: a new module
)

func (m ModuleCut) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s.db: ", m.Name)
	switch m.Source {
	case SourceLocal:
		fmt.Fprintf(&b, "kept the file in the data directory (log ends at %d)", m.Head)
	case SourceReplica:
		fmt.Fprintf(&b, "restored to transaction %d (log ends at %d)", m.TXID, m.Head)
	case SourceEmpty:
		b.WriteString("no point of its backup is consistent with the others; it starts empty")
	case SourceNone:
		b.WriteString("no file and no backup; it starts as a new module")
	}
	if n := sum(m.Lost); n > 0 {
		types := slices.Sorted(maps.Keys(m.Lost))
		parts := make([]string, len(types))
		for i, t := range types {
			parts[i] = fmt.Sprintf("%d %s", m.Lost[t], t)
		}
		noun := "events"
		if n == 1 {
			noun = "event"
		}
		fmt.Fprintf(&b, "; lost %d %s: %s", n, noun, strings.Join(parts, ", "))
	} else if m.Source != SourceNone {
		b.WriteString("; lost nothing of its newest copy")
	}
	if m.MovedAside != "" {
		fmt.Fprintf(&b, "; the file that was there is kept as %s", filepath.Base(m.MovedAside))
	}
	return b.String()
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// version is one restorable version of a module file.
type version struct {
	txid  uint64 // the replica's transaction; 0 for the local file
	path  string // where it is once materialized
	pos   events.Positions
	ready bool
}

// candidates are one module's versions, oldest first; at is the one the
// search stands on (-1: before the first, an empty file).
type candidates struct {
	name     string
	versions []*version
	at       int
	local    bool   // a file is in the data directory
	newest   uint64 // the replica's latest transaction
}

type search struct {
	dir, stage string
	r          *db.Replication

	mu     sync.Mutex // the files behind are searched at once
	probes int
	seen   map[string][]*version // every version materialized, by module
}

// Restore brings every module file in dir back to the latest consistent
// cut the replica (and, with UseLocal, the files in dir) allow.
func Restore(ctx context.Context, dir string, r *db.Replication, opt RestoreOptions, logger *slog.Logger) (*Cut, error) {
	if logger == nil {
		logger = slog.Default()
	}
	started := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	// A restore that died halfway left its staging behind; none is in use
	// (the data directory is locked, or not yet served).
	left, _ := filepath.Glob(filepath.Join(dir, ".restore-*"))
	for _, l := range left {
		os.RemoveAll(l)
	}
	stage, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(stage)
	s := &search{dir: dir, stage: stage, r: r, seen: map[string][]*version{}}

	mods := make([]*candidates, len(Modules))
	errs := make([]error, len(Modules))
	var wg sync.WaitGroup
	for i, name := range Modules {
		wg.Go(func() { mods[i], errs[i] = s.candidates(ctx, name, opt) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for {
		files := map[string]events.Positions{}
		for _, m := range mods {
			if err := s.stand(ctx, m); err != nil {
				return nil, err
			}
			if m.at >= 0 {
				files[m.name] = m.versions[m.at].pos
			}
		}
		gaps := events.Gaps(files)
		if len(gaps) == 0 {
			break
		}
		// Each file behind is searched at the same time (its first gap;
		// the next round finds any other).
		var wg sync.WaitGroup
		errs := make([]error, len(gaps))
		taken := map[string]bool{}
		for i, g := range gaps {
			if taken[g.Consumer] {
				continue
			}
			taken[g.Consumer] = true
			m := mods[slices.Index(Modules, g.Consumer)]
			logger.Info("restore: taking a file back", "gap", g.String())
			wg.Go(func() { errs[i] = s.back(ctx, m, g.Source, g.Head) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	cut := &Cut{Probes: s.probes}
	for _, m := range mods {
		mc, err := s.place(ctx, m)
		if err != nil {
			return nil, err
		}
		cut.Modules = append(cut.Modules, mc)
	}
	if cut.Changed() {
		// The next start reconciles payments with Stripe: the cut may
		// have lost a payment Stripe took.
		if err := os.WriteFile(filepath.Join(dir, restoredMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	cut.Took = time.Since(started)
	return cut, nil
}

// restoredMarker is left in the data directory by a restore, until the
// start after it has reconciled payments with Stripe.
const restoredMarker = "restored"

// candidates lists a module's versions: the replica's points, and the file
// in the data directory when it may stay and is not older than the
// replica's latest.
func (s *search) candidates(ctx context.Context, name string, opt RestoreOptions) (*candidates, error) {
	points, err := s.r.Points(ctx, name, !opt.Timestamp.IsZero())
	if err != nil {
		return nil, fmt.Errorf("restore %s.db from %s (refusing to start empty over a backup): %w", name, s.r, err)
	}
	m := &candidates{name: name}
	for _, p := range points {
		m.versions = append(m.versions, &version{txid: p.TXID})
	}
	path := filepath.Join(s.dir, name+".db")
	if _, err := os.Stat(path); err == nil {
		m.local = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var local *version
	if m.local && opt.UseLocal && opt.Timestamp.IsZero() {
		local = &version{path: path}
		if err := s.materialize(ctx, name, local); err != nil {
			return nil, err
		}
	}
	m.at = len(m.versions) - 1
	if err := s.stand(ctx, m); err != nil {
		return nil, err
	}
	if m.at >= 0 {
		m.newest = m.versions[m.at].txid
	}
	// Points a restore abandoned (the history after the point it took the
	// file back to) are not versions of the file any more, as the markers
	// in its newest copies say.
	for _, v := range []*version{local, m.last()} {
		if v == nil {
			continue
		}
		resumes, err := readResumes(ctx, v.path)
		if err != nil {
			return nil, fmt.Errorf("restore: read %s's restore markers: %w", v.path, err)
		}
		for _, r := range resumes {
			m.versions = slices.DeleteFunc(m.versions, func(v *version) bool { return v.txid > r.TXID && v.txid <= r.Abandoned })
		}
	}
	m.at = len(m.versions) - 1
	if local != nil {
		if err := s.stand(ctx, m); err != nil {
			return nil, err
		}
		if m.at < 0 || !newer(m.versions[m.at].pos, local.pos) {
			m.versions = append(m.versions, local)
			m.at++
		}
	}
	// The newest version counts what the cut loses; the search starts
	// from the latest synced before the timestamp.
	if !opt.Timestamp.IsZero() {
		synced := map[uint64]time.Time{}
		for _, p := range points {
			synced[p.TXID] = p.Synced
		}
		m.at = -1
		for i, v := range m.versions {
			if synced[v.txid].Before(opt.Timestamp) {
				m.at = i
			}
		}
	}
	return m, nil
}

// last is m's newest version, nil if it has none.
func (m *candidates) last() *version {
	if len(m.versions) == 0 {
		return nil
	}
	return m.versions[len(m.versions)-1]
}

func readResumes(ctx context.Context, path string) ([]events.Resumed, error) {
	q, err := db.OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return events.Resumes(ctx, q)
}

// newer reports whether a is past b: a longer log, or more applied of any
// source.
func newer(a, b events.Positions) bool {
	if a.Head > b.Head {
		return true
	}
	for source, seq := range a.Applied {
		if seq > b.Applied[source] {
			return true
		}
	}
	return false
}

// stand materializes the version m stands on; a point the replica turns
// out not to restore exactly is dropped, and it stands on the one before.
func (s *search) stand(ctx context.Context, m *candidates) error {
	for m.at >= 0 {
		err := s.materialize(ctx, m.name, m.versions[m.at])
		if !errors.Is(err, db.ErrNoPoint) {
			return err
		}
		m.versions = slices.Delete(m.versions, m.at, m.at+1)
		m.at--
	}
	return nil
}

// back takes m to its latest version, before the current one, that has
// applied no more of source's log than head.
func (s *search) back(ctx context.Context, m *candidates, source string, head int64) error {
	for {
		at, err := s.latestFitting(ctx, m, source, head)
		if errors.Is(err, db.ErrNoPoint) {
			continue // that version was dropped; search again
		}
		if err != nil {
			return err
		}
		m.at = at
		return nil
	}
}

// latestFitting finds the version back takes m to. The answer is usually a
// point or two back (files sync a second apart), so it gallops back from
// the current version by 1, 2, 4... versions, then bisects the last step.
// A version the replica cannot restore exactly is dropped (ErrNoPoint).
func (s *search) latestFitting(ctx context.Context, m *candidates, source string, head int64) (int, error) {
	fits := func(i int) (bool, error) {
		v := m.versions[i]
		err := s.materialize(ctx, m.name, v)
		if errors.Is(err, db.ErrNoPoint) {
			m.versions = slices.Delete(m.versions, i, i+1)
			m.at--
		}
		if err != nil {
			return false, err
		}
		return v.pos.Applied[source] <= head, nil
	}
	lo, hi := -1, m.at // lo fits (an empty file has applied nothing); hi does not
	for step := 1; hi-step > lo; step *= 2 {
		ok, err := fits(hi - step)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = hi - step
			break
		}
		hi -= step
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		ok, err := fits(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// materialize restores v into the staging directory (the local file is
// already there) and reads its positions.
func (s *search) materialize(ctx context.Context, name string, v *version) error {
	if v.ready {
		return nil
	}
	if v.path == "" {
		v.path = filepath.Join(s.stage, fmt.Sprintf("%s-%d.db", name, v.txid))
		s.mu.Lock()
		s.probes++
		s.mu.Unlock()
		if err := s.r.RestoreTo(ctx, name, v.txid, v.path); err != nil {
			return err
		}
	}
	pos, err := readPositions(ctx, v.path)
	if err != nil {
		return fmt.Errorf("restore: read %s's positions: %w", v.path, err)
	}
	v.pos, v.ready = pos, true
	s.mu.Lock()
	s.seen[name] = append(s.seen[name], v)
	s.mu.Unlock()
	return nil
}

// reach is the highest seq of name's log that any copy of any file has
// seen: its own head, or a consumer's position in it. A log taken back
// below it carries on above it, so no seq is used twice.
func (s *search) reach(name string) int64 {
	var n int64
	for module, vs := range s.seen {
		for _, v := range vs {
			if module == name {
				n = max(n, v.pos.Head)
			}
			n = max(n, v.pos.Applied[name])
		}
	}
	return n
}

func readPositions(ctx context.Context, path string) (events.Positions, error) {
	q, err := db.OpenReadOnly(path)
	if err != nil {
		return events.Positions{}, err
	}
	defer q.Close()
	return events.ReadPositions(ctx, q)
}

// place puts the chosen version of m into the data directory, moving the
// file that was there aside, and says what the cut lost against m's newest
// version.
func (s *search) place(ctx context.Context, m *candidates) (ModuleCut, error) {
	mc := ModuleCut{Name: m.name}
	path := filepath.Join(s.dir, m.name+".db")
	var chosen *version
	if m.at >= 0 {
		chosen = m.versions[m.at]
		mc.Head = chosen.pos.Head
	}
	switch {
	case len(m.versions) == 0:
		mc.Source = SourceNone
		if m.local {
			mc.Source = SourceEmpty
		}
	case chosen == nil:
		mc.Source = SourceEmpty
	case chosen.txid == 0:
		mc.Source = SourceLocal
	default:
		mc.Source, mc.TXID = SourceReplica, chosen.txid
	}
	if len(m.versions) > 0 && m.versions[len(m.versions)-1] != chosen {
		newest := m.versions[len(m.versions)-1]
		if err := s.materialize(ctx, m.name, newest); err != nil {
			return mc, err
		}
		q, err := db.OpenReadOnly(newest.path)
		if err != nil {
			return mc, err
		}
		mc.Lost, err = events.LostEvents(ctx, q, mc.Head)
		q.Close()
		if err != nil {
			return mc, fmt.Errorf("restore: count %s's lost events: %w", m.name, err)
		}
	}
	if mc.Source == SourceLocal || mc.Source == SourceNone {
		return mc, nil
	}
	if reach := s.reach(m.name); mc.Head < reach {
		if chosen == nil {
			// Taken back to nothing: a new file, whose log still starts
			// above every seq used before.
			d, err := db.Open(ctx, filepath.Join(s.stage, "empty"), m.name, events.Migrations())
			if err != nil {
				return mc, err
			}
			if err := d.Close(); err != nil {
				return mc, err
			}
			chosen = &version{path: d.Path}
		}
		if err := events.Resume(ctx, chosen.path, reach+1, events.Resumed{Kept: mc.Head, TXID: mc.TXID, Abandoned: m.newest}); err != nil {
			return mc, err
		}
	}
	// The -wal of a deleted file may still be there, and SQLite would
	// apply it to whatever file takes the name: it goes aside too.
	to, err := db.MoveAside(path, "replaced")
	if err != nil {
		return mc, err
	}
	if m.local {
		mc.MovedAside = to
	}
	if err := db.ForgetLocalState(path); err != nil {
		return mc, err
	}
	if chosen != nil {
		if err := os.Rename(chosen.path, path); err != nil {
			return mc, fmt.Errorf("restore: put %s in place: %w", path, err)
		}
	}
	return mc, nil
}
