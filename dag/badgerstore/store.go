// Package badgerstore is the durable [dag.Store], on badger v4. It is the
// only package that imports badger.
//
// # Durability
//
// One writer goroutine applies every Put. It takes all requests waiting at
// that moment (up to [Options.MaxBatch]), applies them in one badger
// transaction, commits it without a sync, and hands the batch with the
// events it changed to a second goroutine, the syncer. The syncer takes
// every batch waiting for it, appends their events to the store's journal
// with one write and one fdatasync, and only then answers their callers.
// While one fsync runs, the writer goes on committing the next batches, so
// the cost of an fsync is shared by every Put that arrived during the
// previous one (group commit), and a Put that returned survives kill -9 and
// power loss. Every [Options.JournalMiB] of journal, the syncer makes badger
// durable and deletes the journal behind it; Open replays whatever journal
// is left. Readers see an event once its Put has returned; they may see it
// slightly earlier, between commit and fsync.
//
// The key layout, the journal and the reasoning are in docs/events.md.
package badgerstore

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
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
	// JournalMiB is the journal size after which badger is synced and the
	// journal truncated (default 32). Open replays at most about this much.
	JournalMiB int

	tune         func(badger.Options) badger.Options // tests only: adjusts badger's options
	journalBytes int64                               // tests only: overrides JournalMiB
}

// Store is a [dag.Store] on a badger database in one directory.
type Store struct {
	db  *badger.DB
	lim dag.Limits

	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *request
	synced chan committed        // committed batches waiting for an fsync
	done   chan struct{}         // closed when the syncer exits
	broken atomic.Pointer[error] // set when the journal failed; every later Put fails
	max    int
	chunk  int // checkpoint size, see checkpointBytes

	nPuts, nBatches, nSyncs, syncNanos, nCheckpoints, nRepaired atomic.Uint64

	seqs    map[dag.RoomID]uint64 // owned by the writer; see btx.seqs
	counts  *pendingCounts        // owned by the writer
	metas   *metaCache
	wal     *walTracker // owned by the syncer
	journal *journal    // owned by the syncer
	nWALs   atomic.Uint64
}

// valueThreshold is the size from which badger keeps a value in its value
// log rather than in the LSM tree. Events of 1 KiB and more go there and are
// written once; compactions then move small value pointers instead of the
// events, which on the reference machine halves the CPU time of ingest
// (docs/performance.md). Index values stay in the tree: tip keys hold no
// value, and waiter lists up to 30 IDs (docs/events.md 4.1).
const valueThreshold = 1 << 10

// committed is a batch the writer committed to badger, with the journal
// records of the events it changed.
type committed struct {
	reqs    []*request
	records []byte
	// barrier, if set, asks the syncer for a checkpoint once the batches
	// before it are journaled, and receives its outcome (see Store.barrier).
	barrier chan error
}

// Stats counts the store's work since Open, for metrics and benchmarks.
type Stats struct {
	Puts        uint64        // Put requests answered
	Batches     uint64        // batches committed by the writer
	Syncs       uint64        // journal writes with fdatasync; Puts/Syncs is the group-commit factor
	SyncTime    time.Duration // total time spent writing and syncing the journal
	Checkpoints uint64        // badger syncs that let the journal be truncated
	WALSyncs    uint64        // fsyncs of memtable logs and value-log files badger had rotated (see walTracker)
	Repaired    uint64        // event values and lists Open rewrote after a power loss (repair.go)
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Puts:        s.nPuts.Load(),
		Batches:     s.nBatches.Load(),
		Syncs:       s.nSyncs.Load(),
		SyncTime:    time.Duration(s.syncNanos.Load()),
		Checkpoints: s.nCheckpoints.Load(),
		WALSyncs:    s.nWALs.Load(),
		Repaired:    s.nRepaired.Load(),
	}
}

type request struct {
	ev  *dag.Event
	op  func() error // instead of ev: run by the writer alone (ops.go)
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
	if opts.JournalMiB <= 0 {
		opts.JournalMiB = 32
	}
	if err := removeEmptyMemtables(dir); err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	mib := int64(opts.CacheMiB) << 20
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{opts.Logger}).
		WithSyncWrites(false).      // the journal makes Puts durable
		WithDetectConflicts(false). // one writer goroutine
		WithMemTableSize(mib / 2).
		WithNumMemtables(3).
		WithBlockCacheSize(mib / 2).
		WithIndexCacheSize(mib / 4).
		WithNumCompactors(2).
		WithValueThreshold(valueThreshold).
		WithVerifyValueChecksum(true). // a value lost to a crash reads as an error (see replay)
		WithCompression(options.None)  // content is mostly ciphertext: not compressible
	if opts.tune != nil {
		bo = opts.tune(bo)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	lim := opts.Limits.WithDefaults()
	if lim.Now == nil {
		lim.Now = time.Now
	}
	s := &Store{
		db:     db,
		lim:    lim,
		reqs:   make(chan *request, opts.MaxBatch),
		done:   make(chan struct{}),
		synced: make(chan committed, 64),
		max:    opts.MaxBatch,
		chunk:  checkpointBytes(bo.MemTableSize),
		seqs:   map[dag.RoomID]uint64{},
		metas:  newMetaCache(metaCacheSize),
	}
	journalBytes := int64(opts.JournalMiB) << 20
	if opts.journalBytes > 0 {
		journalBytes = opts.journalBytes
	}
	if err := s.recover(dir, journalBytes); err != nil {
		db.Close()
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	go s.writer()
	go s.syncer()
	return s, nil
}

// recover brings the store to the state of the last acknowledged Put:
// layout check, pending counters, replay of the journal, purges and
// releases a crash cut short, then a checkpoint and a fresh journal
// segment.
func (s *Store) recover(dir string, journalBytes int64) error {
	if err := checkLayout(s.db, s.lim.Now()); err != nil {
		return err
	}
	// Badger's newest memtable log right after Open; replay may rotate it.
	var err error
	if s.wal, err = newWALTracker(dir); err != nil {
		return err
	}
	jdir := filepath.Join(dir, journalDir)
	if err := os.MkdirAll(jdir, 0o700); err != nil {
		return err
	}
	payloads, seqs, err := readJournal(jdir)
	if err != nil {
		return err
	}
	events, err := s.repair(payloads)
	if err != nil {
		return err
	}
	if s.counts, err = loadPendingCounts(s.db); err != nil {
		return err
	}
	purging, err := purgeMarkers(s.db)
	if err != nil {
		return err
	}
	if err := s.replay(withoutRooms(events, purging)); err != nil {
		return err
	}
	// After a power loss badger may hold a rotated memtable log's head but
	// not its tail while a newer log survived whole: an event can be back
	// before its parent, which replay then stores after it. Its tips are
	// checked again (the parent must not be a tip), and rebuilt if wrong.
	if n, err := repairLists(s.db, events); err != nil {
		return fmt.Errorf("repair after replay: %w", err)
	} else if n > 0 {
		s.nRepaired.Add(uint64(n))
	}
	if err := s.finishPurges(dir, purging); err != nil {
		return err
	}
	if err := s.resumeReleases(); err != nil {
		return err
	}
	if err := s.db.Sync(); err != nil {
		return err
	}
	if err := syncBadgerFiles(dir); err != nil {
		return err
	}
	if s.wal, err = newWALTracker(dir); err != nil {
		return err
	}
	// Badger now holds every journaled event durably.
	if s.journal, err = openJournal(jdir, seqs, journalBytes); err != nil {
		return err
	}
	return removeSegmentsBefore(jdir, s.journal.seq)
}

// repair decodes the journal's records (payloads: the key and value of
// every event value written since the last checkpoint) and repairs what a
// power loss may have cut from badger's value log (repair.go). It returns
// the journaled events in order.
func (s *Store) repair(payloads [][]byte) ([]*dag.Event, error) {
	records := make([]journalRecord, len(payloads))
	events := make([]*dag.Event, len(payloads))
	for i, p := range payloads {
		const keyLen = 1 + dag.IDLen
		if len(p) <= keyLen || (p[0] != tagEvent && p[0] != tagPending) {
			return nil, fmt.Errorf("%w: record %d: key %x", errJournalCorrupt, i, p[:min(len(p), keyLen)])
		}
		r := journalRecord{k: p[:keyLen], v: p[keyLen:]}
		raw := r.v
		if r.k[0] == tagEvent {
			if len(raw) < metaLen {
				return nil, fmt.Errorf("%w: stored event %x without metadata", errJournalCorrupt, r.k)
			}
			raw = raw[metaLen:]
		}
		e, err := dag.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: event: %w", errJournalCorrupt, err)
		}
		if e.ID() != dag.EventID(r.k[1:]) {
			return nil, fmt.Errorf("%w: record for %x holds event %v", errJournalCorrupt, r.k, e.ID())
		}
		records[i], events[i] = r, e
	}
	n, err := repairValues(s.db, records)
	if err != nil {
		return nil, fmt.Errorf("repair from journal: %w", err)
	}
	m, err := repairLists(s.db, events)
	if err != nil {
		return nil, fmt.Errorf("repair from journal: %w", err)
	}
	s.nRepaired.Add(uint64(n + m))
	return events, nil
}

// replay applies the journaled events in their original order, through the
// same code as Put: events badger already has are duplicates. They were all
// accepted once, so pending limits do not apply (they may have been lowered
// since); any other failure means the journal or the database is damaged.
func (s *Store) replay(events []*dag.Event) error {
	lim := s.lim
	s.lim = dag.Limits{PendingPerRoom: math.MaxInt, PendingPerOrigin: math.MaxInt, PendingTTL: lim.PendingTTL, Now: lim.Now}
	defer func() { s.lim = lim }()
	for start := 0; start < len(events); start += s.max {
		var batch []*request
		for _, e := range events[start:min(start+s.max, len(events))] {
			batch = append(batch, &request{ev: e})
		}
		if _, err := s.apply(batch, false); err != nil {
			return fmt.Errorf("replay journal: %w", err)
		}
		for _, r := range batch {
			if r.err != nil {
				return fmt.Errorf("replay journal: event %v: %w", r.ev.ID(), r.err)
			}
		}
	}
	return nil
}

// Put implements [dag.Store]. It returns once the outcome is durable.
func (s *Store) Put(e *dag.Event) (dag.PutResult, error) {
	if e.Bytes() == nil {
		return dag.PutResult{}, dag.ErrNotEncoded
	}
	if err := s.brokenErr(); err != nil {
		return dag.PutResult{}, err
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
	if err := s.brokenErr(); err != nil || s.closed {
		s.mu.RUnlock()
		if err == nil {
			err = dag.ErrClosed
		}
		for i := range errs {
			errs[i] = err
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

// writer applies Put requests in batches, and operations (ops.go) one at a
// time between them, until reqs is closed.
func (s *Store) writer() {
	defer close(s.synced)
	var held *request // an operation that ended the previous batch
	for {
		r := held
		held = nil
		if r == nil {
			var ok bool
			if r, ok = <-s.reqs; !ok {
				return
			}
		}
		if r.op != nil {
			s.runOp(r)
			continue
		}
		batch := make([]*request, 1, s.max)
		batch[0] = r
	drain:
		for len(batch) < s.max {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				if r.op != nil {
					held = r
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		records, err := s.apply(batch, true)
		if err != nil {
			// A large batch may have committed part of itself before the
			// failure (dag.Tx.Checkpoint) without journal records: no later
			// Put may be acknowledged on top of it. Reopening recovers.
			err = fmt.Errorf("badgerstore: store failed, reopen it: %w", err)
			s.broken.CompareAndSwap(nil, &err)
			for _, r := range batch {
				close(r.ok)
			}
			continue
		}
		s.nBatches.Add(1)
		s.synced <- committed{reqs: batch, records: records}
	}
}

// isEventError reports whether err concerns one event only and was decided
// before PutTx wrote anything, so the batch can go on.
func isEventError(err error) bool {
	_, reject := dag.ReasonOf(err)
	return reject || errors.Is(err, dag.ErrPendingFull) || errors.Is(err, dag.ErrNotEncoded)
}

// apply applies a batch in one transaction (split at checkpoints if it
// grows large) and commits it, without a sync. With journal set it returns
// the journal records of the batch: every event value it wrote (a new
// event, stored or pending, and an event released from pending), key and
// value. On a failure that is not one event's fault, every request carries
// the error, which apply also returns; the part of a large batch committed
// at a checkpoint before the failure stays in badger (the writer then stops
// the store).
func (s *Store) apply(batch []*request, journal bool) ([]byte, error) {
	t := s.writeTx(journal)
	if journal {
		// Room for a record per event (events released from pending add
		// more), so that the records rarely grow by copying.
		size := 0
		for _, r := range batch {
			size += recordHeader + 1 + dag.IDLen + metaLen + r.ev.Size()
		}
		t.records = make([]byte, 0, size)
	}
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
		if counts, err := loadPendingCounts(s.db); err == nil {
			s.counts = counts
		} else {
			fatal = errors.Join(fatal, err)
		}
		for _, r := range batch {
			r.res, r.err = dag.PutResult{}, fmt.Errorf("badgerstore: put %v: %w", r.ev.ID(), fatal)
		}
		return nil, fatal
	}
	return t.records, nil
}

// syncer makes committed batches durable, one journal write and fdatasync
// for all batches waiting, and answers their requests; every JournalMiB it
// checkpoints.
func (s *Store) syncer() {
	defer close(s.done)
	var waiting []committed
	var buf []byte
	for c := range s.synced {
		waiting = append(waiting[:0], c)
	drain:
		for {
			select {
			case c, ok := <-s.synced:
				if !ok {
					break drain
				}
				waiting = append(waiting, c)
			default:
				break drain
			}
		}
		err := s.brokenErr()
		if err == nil {
			records := waiting[0].records
			if len(waiting) > 1 {
				buf = buf[:0]
				for _, c := range waiting {
					buf = append(buf, c.records...)
				}
				records = buf
			}
			if len(records) > 0 {
				start := time.Now()
				err = s.journal.append(records)
				s.syncNanos.Add(uint64(time.Since(start)))
				s.nSyncs.Add(1)
			}
			if err != nil {
				// A failed write or fsync leaves the journal's state
				// unknown (an fsync error may have dropped dirty pages):
				// no later Put can be acknowledged. Reopening recovers.
				err = fmt.Errorf("badgerstore: store failed, reopen it: %w", err)
				s.broken.CompareAndSwap(nil, &err)
			}
		}
		for _, c := range waiting {
			s.nPuts.Add(uint64(len(c.reqs)))
			for _, r := range c.reqs {
				if err != nil {
					r.res, r.err = dag.PutResult{}, fmt.Errorf("put %v: %w", r.ev.ID(), err)
				}
				close(r.ok)
			}
		}
		// The answered Puts are durable in the journal; a checkpoint that
		// fails only stops later ones.
		barrier := slices.ContainsFunc(waiting, func(c committed) bool { return c.barrier != nil })
		if err == nil && (barrier || s.journal.full()) {
			if err = s.checkpoint(); err != nil {
				err = fmt.Errorf("badgerstore: store failed at a checkpoint, reopen it: %w", err)
				s.broken.CompareAndSwap(nil, &err)
			}
		}
		for _, c := range waiting {
			if c.barrier != nil {
				c.barrier <- err
			}
		}
	}
}

// checkpoint makes badger durable (its current write-ahead log and any it
// rotated past) and truncates the journal, whose events badger now holds:
// the writer commits a batch before handing it to the syncer.
func (s *Store) checkpoint() error {
	if err := s.db.Sync(); err != nil {
		return err
	}
	n, err := s.wal.syncRotated()
	s.nWALs.Add(uint64(n))
	if err != nil {
		return err
	}
	s.nCheckpoints.Add(1)
	return s.journal.rotate()
}

// brokenErr returns the error that broke the store, if any.
func (s *Store) brokenErr() error {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return nil
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
	// A checkpoint leaves Open nothing to replay; without one (a broken
	// store), Open replays the journal.
	var err error
	if s.brokenErr() == nil {
		err = s.checkpoint()
	}
	err = errors.Join(err, s.journal.close(), s.db.Close())
	if err != nil {
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

// Tips implements [dag.Store]: a scan of the room's tip keys, which are in
// ID order.
func (s *Store) Tips(room dag.RoomID) ([]dag.EventID, error) {
	var ids []dag.EventID
	err := s.view(func(t *btx) (err error) {
		ids, err = t.ids(key(tagTip, room[:]))
		return err
	})
	return ids, err
}

// TipsAfter implements [dag.Store]: a scan of the room's tip keys from
// after, reading limit+1 keys whatever the number of tips.
func (s *Store) TipsAfter(room dag.RoomID, after dag.EventID, limit int) ([]dag.EventID, bool, error) {
	if limit <= 0 {
		return nil, false, nil
	}
	var ids []dag.EventID
	more := false
	err := s.view(func(t *btx) error {
		prefix := key(tagTip, room[:])
		start := key(tagTip, room[:], after[:])
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefix
		it := t.txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			k := it.Item().Key()
			if string(k) == string(start) {
				continue
			}
			if len(ids) == limit {
				more = true
				return nil
			}
			id, err := idAt(k, len(prefix))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids, more, err
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
// stored parents (and syncs before the store is used).
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
	t := s.writeTx(false)
	for _, p := range from {
		if _, err := dag.ReleaseTx(t, p); err != nil {
			t.txn.Discard()
			return fmt.Errorf("resume release: %w", err)
		}
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("resume release: %w", err)
	}
	return nil // recover syncs
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
