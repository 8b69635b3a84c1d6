// Package badgerstore is the durable [dag.Store], on badger v4. It is the
// only package that imports badger.
//
// # Durability
//
// One writer goroutine applies every Put. It takes all requests waiting at
// that moment (up to [Options.MaxBatch]), applies them in one badger
// transaction and commits it. A second goroutine, the syncer, takes every
// committed batch waiting for it, calls DB.Sync once (fsync of the
// write-ahead log and value log) and only then answers their callers. While
// one fsync runs, the writer goes on committing the next batches, so the
// cost of an fsync is shared by every Put that arrived during the previous
// one (group commit), and a Put that returned survives kill -9 and power
// loss. Readers see an event once its Put has returned; they may see it
// slightly earlier, between commit and fsync.
//
// The key layout and the reasoning are in docs/events.md.
package badgerstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/rhizome-chat/rhizome/dag"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Limits bound pending events (zero fields take dag.DefaultLimits).
	Limits dag.Limits
	// MaxBatch is the largest number of Puts committed with one fsync
	// (default 512).
	MaxBatch int
	// Logger receives badger's warnings and errors (default: discarded).
	Logger *slog.Logger
	// CacheMiB sizes badger's memtables and block cache (default 64).
	CacheMiB int

	tune func(badger.Options) badger.Options // tests only: adjusts badger's options
}

// Store is a [dag.Store] on a badger database in one directory.
type Store struct {
	db  *badger.DB
	lim dag.Limits

	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *request
	synced chan []*request // committed batches waiting for an fsync
	done   chan struct{}   // closed when the syncer exits
	max    int
	chunk  int // checkpoint size, see checkpointBytes

	nPuts, nBatches, nSyncs, syncNanos atomic.Uint64

	seqs   map[dag.RoomID]uint64        // owned by the writer; see btx.seqs
	tips   map[dag.RoomID][]dag.EventID // owned by the writer; see btx.tips
	counts *pendingCounts               // owned by the writer
	metas  *metaCache
	wal    *walTracker // owned by the syncer
	nWALs  atomic.Uint64
}

// Stats counts the store's work since Open, for metrics and benchmarks.
type Stats struct {
	Puts     uint64        // Put requests answered
	Batches  uint64        // badger transactions committed by the writer
	Syncs    uint64        // fsyncs (DB.Sync calls); Puts/Syncs is the group-commit factor
	WALSyncs uint64        // extra fsyncs of memtable WALs that badger had rotated (see walTracker)
	SyncTime time.Duration // total time spent in DB.Sync
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Puts:     s.nPuts.Load(),
		Batches:  s.nBatches.Load(),
		Syncs:    s.nSyncs.Load(),
		WALSyncs: s.nWALs.Load(),
		SyncTime: time.Duration(s.syncNanos.Load()),
	}
}

type request struct {
	ev  *dag.Event
	res dag.PutResult
	err error
	ok  chan struct{}
}

var _ dag.Store = (*Store)(nil)

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.CacheMiB <= 0 {
		opts.CacheMiB = 64
	}
	if err := removeEmptyMemtables(dir); err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	mib := int64(opts.CacheMiB) << 20
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{opts.Logger}).
		WithSyncWrites(false).      // we Sync once per batch instead
		WithDetectConflicts(false). // one writer goroutine
		WithMemTableSize(mib / 2).
		WithNumMemtables(3).
		WithBlockCacheSize(mib / 2).
		WithIndexCacheSize(mib / 4).
		WithNumCompactors(2).
		WithValueThreshold(1 << 20).  // events (<= 64 KiB) stay in the LSM tree
		WithCompression(options.None) // content is mostly ciphertext: not compressible
	if opts.tune != nil {
		bo = opts.tune(bo)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	if err := checkLayout(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	s := &Store{
		db:     db,
		lim:    opts.Limits.WithDefaults(),
		reqs:   make(chan *request, opts.MaxBatch),
		done:   make(chan struct{}),
		synced: make(chan []*request, 64),
		max:    opts.MaxBatch,
		chunk:  checkpointBytes(bo.MemTableSize),
		seqs:   map[dag.RoomID]uint64{},
		tips:   map[dag.RoomID][]dag.EventID{},
		metas:  newMetaCache(metaCacheSize),
	}
	if s.counts, err = loadPendingCounts(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	if err := s.resumeReleases(); err != nil {
		db.Close()
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	if s.wal, err = newWALTracker(dir); err != nil {
		db.Close()
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	go s.writer()
	go s.syncer()
	return s, nil
}

// Put implements [dag.Store]. It returns once the outcome is durable.
func (s *Store) Put(e *dag.Event) (dag.PutResult, error) {
	if e.Bytes() == nil {
		return dag.PutResult{}, dag.ErrNotEncoded
	}
	r := &request{ev: e, ok: make(chan struct{})}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return dag.PutResult{}, dag.ErrClosed
	}
	s.reqs <- r
	s.mu.RUnlock()
	<-r.ok
	return r.res, r.err
}

// PutAll implements [dag.Store]. The events join the writer's queue in
// order, so they are applied in order (other callers' Puts may come
// between them), and it returns once every outcome is durable.
func (s *Store) PutAll(evs []*dag.Event) ([]dag.PutResult, []error) {
	res, errs := make([]dag.PutResult, len(evs)), make([]error, len(evs))
	reqs := make([]request, len(evs))
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		for i := range errs {
			errs[i] = dag.ErrClosed
		}
		return res, errs
	}
	for i, e := range evs {
		reqs[i] = request{ev: e, ok: make(chan struct{})}
		if e.Bytes() == nil {
			reqs[i].err = dag.ErrNotEncoded
			close(reqs[i].ok)
			continue
		}
		s.reqs <- &reqs[i]
	}
	s.mu.RUnlock()
	for i := range reqs {
		<-reqs[i].ok
		res[i], errs[i] = reqs[i].res, reqs[i].err
	}
	return res, errs
}

// writer applies Put requests in batches until reqs is closed.
func (s *Store) writer() {
	defer close(s.synced)
	for r := range s.reqs {
		batch := make([]*request, 1, s.max)
		batch[0] = r
	drain:
		for len(batch) < s.max {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

// isEventError reports whether err concerns one event only and was decided
// before PutTx wrote anything, so the batch can go on.
func isEventError(err error) bool {
	_, reject := dag.ReasonOf(err)
	return reject || errors.Is(err, dag.ErrPendingFull) || errors.Is(err, dag.ErrNotEncoded)
}

// commit applies a batch in one transaction (split at checkpoints if it
// grows large) and hands it to the syncer.
func (s *Store) commit(batch []*request) {
	t := &btx{db: s.db, txn: s.db.NewTransaction(true), limit: s.chunk, seqs: s.seqs, tips: s.tips, metas: s.metas, counts: s.counts}
	var fatal error
	for _, r := range batch {
		r.res, r.err = dag.PutTx(t, r.ev, s.lim)
		if r.err != nil && !isEventError(r.err) {
			fatal = r.err
			break
		}
	}
	if fatal == nil {
		fatal = t.commit()
	} else {
		t.txn.Discard()
	}
	if fatal != nil {
		// The discarded writes may have advanced cached counters.
		clear(s.seqs)
		clear(s.tips)
		if counts, err := loadPendingCounts(s.db); err == nil {
			s.counts = counts
		} else {
			fatal = errors.Join(fatal, err)
		}
		for _, r := range batch {
			r.res, r.err = dag.PutResult{}, fmt.Errorf("badgerstore: put %v: %w", r.ev.ID(), fatal)
			close(r.ok)
		}
		return
	}
	s.nBatches.Add(1)
	s.synced <- batch
}

// syncer makes committed batches durable, one fsync for all batches waiting,
// and answers their requests.
func (s *Store) syncer() {
	defer close(s.done)
	var waiting [][]*request
	for b := range s.synced {
		waiting = append(waiting[:0], b)
	drain:
		for {
			select {
			case b, ok := <-s.synced:
				if !ok {
					break drain
				}
				waiting = append(waiting, b)
			default:
				break drain
			}
		}
		start := time.Now()
		err := s.db.Sync()
		if err == nil {
			var n int
			n, err = s.wal.syncRotated()
			s.nWALs.Add(uint64(n))
		}
		s.syncNanos.Add(uint64(time.Since(start)))
		s.nSyncs.Add(1)
		for _, batch := range waiting {
			s.nPuts.Add(uint64(len(batch)))
			for _, r := range batch {
				if err != nil {
					r.res, r.err = dag.PutResult{}, fmt.Errorf("badgerstore: sync after put %v: %w", r.ev.ID(), err)
				}
				close(r.ok)
			}
		}
	}
}

// Close stops the writer after the Puts already accepted and closes the
// database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("badgerstore: close: %w", err)
	}
	return nil
}

// view runs f in a read-only transaction.
func (s *Store) view(f func(t *btx) error) error {
	return s.db.View(func(txn *badger.Txn) error { return f(&btx{txn: txn, metas: s.metas}) })
}

// Room implements [dag.Store].
func (s *Store) Room(id dag.EventID) (room dag.RoomID, ok bool, err error) {
	err = s.view(func(t *btx) error {
		var m dag.Meta
		m, ok, err = t.Meta(id)
		room = m.Room
		return err
	})
	return room, ok, err
}

// Get implements [dag.Store].
func (s *Store) Get(id dag.EventID) (*dag.Event, error) {
	var e *dag.Event
	err := s.view(func(t *btx) error {
		var ok bool
		var err error
		e, _, ok, err = t.event(id)
		if err == nil && !ok {
			err = fmt.Errorf("get %v: %w", id, dag.ErrNotFound)
		}
		return err
	})
	return e, err
}

// Has implements [dag.Store].
func (s *Store) Has(id dag.EventID) (bool, error) {
	var ok bool
	err := s.view(func(t *btx) (err error) {
		ok, err = t.has(key(tagEvent, id[:]))
		return err
	})
	return ok, err
}

// Meta implements [dag.Store].
func (s *Store) Meta(id dag.EventID) (dag.Meta, error) {
	var m dag.Meta
	err := s.view(func(t *btx) error {
		var ok bool
		var err error
		m, ok, err = t.Meta(id)
		if err == nil && !ok {
			err = fmt.Errorf("meta %v: %w", id, dag.ErrNotFound)
		}
		return err
	})
	return m, err
}

// Tips implements [dag.Store].
func (s *Store) Tips(room dag.RoomID) ([]dag.EventID, error) {
	var ids []dag.EventID
	err := s.view(func(t *btx) (err error) {
		v, _, err := t.get(key(tagTips, room[:]))
		if err == nil {
			ids, err = decodeIDs(v)
		}
		return err
	})
	return ids, err
}

// Parents implements [dag.Store].
func (s *Store) Parents(id dag.EventID) ([]dag.EventID, error) {
	e, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	return append([]dag.EventID(nil), e.Prev...), nil
}

// Children implements [dag.Store].
func (s *Store) Children(id dag.EventID) ([]dag.EventID, error) {
	var ids []dag.EventID
	err := s.view(func(t *btx) error {
		if ok, err := t.has(key(tagEvent, id[:])); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("children of %v: %w", id, dag.ErrNotFound)
		}
		var err error
		ids, err = t.ids(key(tagChild, id[:]))
		return err
	})
	return ids, err
}

// Topo implements [dag.Store].
func (s *Store) Topo(room dag.RoomID, after dag.Position, limit int) ([]*dag.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []*dag.Event
	err := s.view(func(t *btx) error {
		prefix := key(tagTopo, room[:])
		start := key(tagTopo, room[:], u64(after.Depth), after.ID[:])
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefix
		it := t.txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
			k := it.Item().Key()
			if string(k) == string(start) {
				continue
			}
			id, err := idAt(k, len(prefix)+8)
			if err != nil {
				return err
			}
			e, _, ok, err := t.event(id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("badgerstore: topo entry for absent event %v: %w", id, errCorrupt)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Log implements [dag.Store].
func (s *Store) Log(room dag.RoomID, after uint64, limit int) ([]dag.LogEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []dag.LogEntry
	err := s.view(func(t *btx) error {
		prefix := key(tagLog, room[:])
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := t.txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(key(tagLog, room[:], u64(after+1))); it.Valid() && len(out) < limit; it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) != len(prefix)+8 {
				return fmt.Errorf("badgerstore: log key %x: %w", k, errCorrupt)
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			id, err := idAt(v, 0)
			if err != nil {
				return err
			}
			out = append(out, dag.LogEntry{Seq: beUint64(k[len(prefix):]), ID: id})
		}
		return nil
	})
	return out, err
}

// Missing implements [dag.Store].
func (s *Store) Missing(heads []dag.EventID, limit int) ([]dag.EventID, error) {
	var out []dag.EventID
	err := s.view(func(t *btx) (err error) {
		out, err = dag.MissingTx(t, heads, limit)
		return err
	})
	return out, err
}

// Pending implements [dag.Store].
func (s *Store) Pending(room dag.RoomID) ([]dag.EventID, error) {
	var ids []dag.EventID
	err := s.view(func(t *btx) (err error) {
		ids, err = t.ids(key(tagPendingRoom, room[:]))
		return err
	})
	return ids, err
}

// resumeReleases finishes releases a crash interrupted. A long release is
// committed in several transactions (dag.Tx.Checkpoint), so a crash between
// two of them leaves pending events whose parents are all stored; no later
// parent will arrive to release them. Open releases them from one of their
// stored parents and syncs before the store is used.
func (s *Store) resumeReleases() error {
	var from []dag.EventID
	err := s.db.View(func(txn *badger.Txn) error {
		has := func(id dag.EventID) (bool, error) {
			_, err := txn.Get(key(tagEvent, id[:]))
			if errors.Is(err, badger.ErrKeyNotFound) {
				return false, nil
			}
			return err == nil, err
		}
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{tagPending}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var e *dag.Event
			if err := it.Item().Value(func(v []byte) (err error) { e, err = dag.Decode(v); return err }); err != nil {
				return fmt.Errorf("pending event: %w: %w", errCorrupt, err)
			}
			complete := len(e.Prev) > 0
			for _, p := range e.Prev {
				ok, err := has(p)
				if err != nil {
					return err
				}
				complete = complete && ok
			}
			if complete {
				from = append(from, e.Prev[0])
			}
		}
		return nil
	})
	if err != nil || len(from) == 0 {
		return err
	}
	t := &btx{db: s.db, txn: s.db.NewTransaction(true), limit: s.chunk, seqs: s.seqs, tips: s.tips, metas: s.metas, counts: s.counts}
	for _, p := range from {
		if _, err := dag.ReleaseTx(t, p); err != nil {
			t.txn.Discard()
			return fmt.Errorf("resume release: %w", err)
		}
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("resume release: %w", err)
	}
	return s.db.Sync()
}

// removeEmptyMemtables deletes zero-length memtable files. Badger creates a
// memtable file and then sizes it; a process killed between the two leaves
// an empty file, which holds no entries but makes badger's next Open fail
// ("Create a new file"). The kill -9 test hits this window.
func removeEmptyMemtables(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	if err != nil {
		return err
	}
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			return err
		}
		if fi.Size() == 0 {
			if err := os.Remove(name); err != nil {
				return err
			}
		}
	}
	return nil
}
