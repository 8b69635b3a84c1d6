package badgerstore

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
)

// errCorrupt is wrapped when stored bytes do not have the expected shape.
var errCorrupt = errors.New("badgerstore: corrupt record")

// checkpointBytes bounds the writes of one badger transaction for a given
// memtable size. Badger refuses transactions above 15% of the memtable size;
// a checkpoint commits well before that (a quarter of it, leaving room for
// one more event of up to 64 KiB plus indexes), always between two complete
// updates (see dag.Tx.Checkpoint).
func checkpointBytes(memTableSize int64) int { return int(memTableSize * 15 / 100 / 4) }

// btx implements dag.Tx (and dag.ReadTx) on a badger transaction. For writes
// it is used only by the store's writer goroutine; when db is non-nil,
// Checkpoint may commit the transaction and continue in a new one.
type btx struct {
	db      *badger.DB
	txn     *badger.Txn
	written int // bytes set or deleted in txn, estimated
	limit   int // checkpoint when written exceeds this
	// seqs caches the last arrival-log seq of each room for the writer; a
	// room missing from it is looked up in the committed log.
	seqs map[dag.RoomID]uint64
	// metas, if set, caches recent events' metadata (see metaCache).
	metas *metaCache
	// fresh holds the metadata of events inserted in txn, published to metas
	// once txn is committed.
	fresh []cachedMeta
	// counts holds the writer's pending-event counters.
	counts *pendingCounts
	// journal, if set, makes set record every event value it writes (keys
	// 'e' and 'p') in records, for the store's journal.
	journal bool
	records []byte
}

// pendingCounts counts pending events per room and per origin, and knows
// which events are pending and which parents they wait for, so that the
// writer skips badger lookups that would miss. None of it is stored: it is
// derived from the pending events at Open (and after a failed batch), so it
// cannot disagree with them after a crash.
type pendingCounts struct {
	room   map[dag.RoomID]int
	origin map[dag.ServerID]int
	ids    map[dag.EventID]bool // pending events
	waited map[dag.EventID]int  // parent -> pending events listing it (stored or not)
}

func (c *pendingCounts) add(e *dag.Event) {
	c.room[e.Room]++
	c.origin[e.Origin]++
	c.ids[e.ID()] = true
	for _, p := range e.Prev {
		c.waited[p]++
	}
}

func (c *pendingCounts) remove(e *dag.Event) {
	decr(c.room, e.Room)
	decr(c.origin, e.Origin)
	delete(c.ids, e.ID())
	for _, p := range e.Prev {
		decr(c.waited, p)
	}
}

// loadPendingCounts counts the stored pending events.
func loadPendingCounts(db *badger.DB) (*pendingCounts, error) {
	c := &pendingCounts{room: map[dag.RoomID]int{}, origin: map[dag.ServerID]int{},
		ids: map[dag.EventID]bool{}, waited: map[dag.EventID]int{}}
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{tagPending}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				e, err := dag.Decode(v)
				if err != nil {
					return fmt.Errorf("badgerstore: pending event: %w: %w", errCorrupt, err)
				}
				c.add(e)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return c, err
}

func (t *btx) get(k []byte) ([]byte, bool, error) {
	item, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

func (t *btx) has(k []byte) (bool, error) {
	_, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *btx) set(k, v []byte) error {
	t.written += len(k) + len(v) + 16
	if t.journal && (k[0] == tagEvent || k[0] == tagPending) {
		t.records = appendRecord(t.records, k, v)
	}
	return t.txn.Set(k, v)
}

func (t *btx) del(k []byte) error {
	t.written += len(k) + 16
	return t.txn.Delete(k)
}

// ids returns the IDs that follow prefix in every key with that prefix, in
// key order.
func (t *btx) ids(prefix []byte) ([]dag.EventID, error) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := t.txn.NewIterator(opts)
	defer it.Close()
	var out []dag.EventID
	for it.Rewind(); it.Valid(); it.Next() {
		id, err := idAt(it.Item().Key(), len(prefix))
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func (t *btx) Meta(id dag.EventID) (dag.Meta, bool, error) {
	if t.metas != nil {
		if m, ok := t.metas.get(id); ok {
			return m, true, nil
		}
	}
	item, err := t.txn.Get(key(tagEvent, id[:]))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return dag.Meta{}, false, nil
	}
	if err != nil {
		return dag.Meta{}, false, err
	}
	var m dag.Meta
	err = item.Value(func(v []byte) error {
		m, err = decodeMeta(v)
		return err
	})
	return m, err == nil, err
}

func (t *btx) PendingEvent(id dag.EventID) (*dag.Event, bool, error) {
	if t.counts != nil && !t.counts.ids[id] {
		return nil, false, nil
	}
	v, ok, err := t.get(key(tagPending, id[:]))
	if err != nil || !ok {
		return nil, false, err
	}
	e, err := dag.Decode(v)
	if err != nil {
		return nil, false, fmt.Errorf("badgerstore: pending %v: %w: %w", id, errCorrupt, err)
	}
	return e, true, nil
}

func (t *btx) PendingCounts(room dag.RoomID, origin dag.ServerID) (int, int, error) {
	return t.counts.room[room], t.counts.origin[origin], nil
}

func (t *btx) AddPending(e *dag.Event, missing []dag.EventID, at time.Time) error {
	id := e.ID()
	ns := arrival(at)
	if err := t.set(key(tagPending, id[:]), e.Bytes()); err != nil {
		return err
	}
	if err := t.set(key(tagPendingRoom, e.Room[:], id[:]), ns); err != nil {
		return err
	}
	if err := t.set(key(tagArrival, ns, id[:]), nil); err != nil {
		return err
	}
	for _, p := range missing {
		if err := t.editWaiters(p, id, true); err != nil {
			return err
		}
	}
	t.counts.add(e)
	return nil
}

func (t *btx) RemovePending(e *dag.Event) error {
	id := e.ID()
	if ok, err := t.has(key(tagPending, id[:])); err != nil || !ok {
		return err
	}
	qk := key(tagPendingRoom, e.Room[:], id[:])
	ns, _, err := t.get(qk)
	if err != nil {
		return err
	}
	if len(ns) != uint64Len {
		return fmt.Errorf("badgerstore: arrival of pending %v: %w", id, errCorrupt)
	}
	if err := t.del(key(tagPending, id[:])); err != nil {
		return err
	}
	if err := t.del(qk); err != nil {
		return err
	}
	if err := t.del(key(tagArrival, ns, id[:])); err != nil {
		return err
	}
	for _, p := range e.Prev {
		if err := t.editWaiters(p, id, false); err != nil {
			return err
		}
	}
	t.counts.remove(e)
	return nil
}

func decr[K comparable](m map[K]int, k K) {
	if m[k] <= 1 {
		delete(m, k)
	} else {
		m[k]--
	}
}

// Waiters reads the list of pending children waiting for parent. The list
// is one value (not one key per child) so that a write transaction reads it
// with a point lookup rather than an iterator, which in badger would sort
// all of the transaction's pending writes.
func (t *btx) Waiters(parent dag.EventID) ([]dag.EventID, error) {
	if t.counts != nil && t.counts.waited[parent] == 0 {
		return nil, nil
	}
	v, _, err := t.get(key(tagWait, parent[:]))
	if err != nil {
		return nil, err
	}
	return decodeIDs(v)
}

// editWaiters adds child to, or removes it from, parent's waiter list.
func (t *btx) editWaiters(parent, child dag.EventID, add bool) error {
	ids, err := t.Waiters(parent)
	if err != nil {
		return err
	}
	i, found := slices.BinarySearchFunc(ids, child, dag.EventID.Compare)
	switch {
	case add && !found:
		ids = slices.Insert(ids, i, child)
	case !add && found:
		ids = slices.Delete(ids, i, i+1)
	default:
		return nil
	}
	k := key(tagWait, parent[:])
	if len(ids) == 0 {
		return t.del(k)
	}
	return t.set(k, encodeIDs(ids))
}

func (t *btx) Insert(e *dag.Event, depth uint64) error {
	id := e.ID()
	room := e.RoomID()
	seq, err := t.lastSeq(room)
	if err != nil {
		return err
	}
	seq++
	m := dag.Meta{Room: room, Depth: depth, Seq: seq}
	// Every key and value of the insert are cut from one buffer: badger
	// keeps the slices until the commit, and nothing here writes to them
	// afterwards.
	raw := e.Bytes()
	const idKey, tipKey = 1 + dag.IDLen, 1 + 2*dag.IDLen
	b := newArena(metaLen + len(raw) + idKey + dag.IDLen + (idKey + uint64Len) + (idKey + uint64Len + dag.IDLen) +
		tipKey*(1+2*len(e.Prev)))
	sets := [...]struct{ k, v []byte }{
		{b.key(tagEvent, id[:]), b.bytes(encodeMeta(b.next(), m), raw)},
		{b.key(tagLog, room[:], u64(seq)), b.bytes(b.next(), id[:])},
		{b.key(tagTopo, room[:], u64(depth), id[:]), nil},
		{b.key(tagTip, room[:], id[:]), nil},
	}
	for _, s := range sets {
		if err := t.set(s.k, s.v); err != nil {
			return err
		}
	}
	// The parents stop being tips: one delete each, whatever the number of
	// tips (a parent that was no tip any more costs a tombstone).
	for _, p := range e.Prev {
		if err := t.del(b.key(tagTip, room[:], p[:])); err != nil {
			return err
		}
		if err := t.set(b.key(tagChild, p[:], id[:]), nil); err != nil {
			return err
		}
	}
	t.seqs[room] = seq
	if t.metas != nil {
		t.fresh = append(t.fresh, cachedMeta{id, m})
	}
	return nil
}

// lastSeq returns the last arrival-log seq of room. The writer caches it;
// on a miss it reads the committed log, which then holds every entry of the
// room: entries of the open transaction exist only for rooms already cached.
func (t *btx) lastSeq(room dag.RoomID) (uint64, error) {
	if seq, ok := t.seqs[room]; ok {
		return seq, nil
	}
	var seq uint64
	err := t.db.View(func(txn *badger.Txn) error {
		prefix := key(tagLog, room[:])
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Reverse = true
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Seek(key(tagLog, room[:], u64(^uint64(0))))
		if !it.Valid() {
			return nil
		}
		k := it.Item().Key()
		if len(k) != len(prefix)+uint64Len {
			return fmt.Errorf("badgerstore: log key %x: %w", k, errCorrupt)
		}
		seq = beUint64(k[len(prefix):])
		return nil
	})
	return seq, err
}

func (t *btx) Checkpoint() error {
	if t.db == nil || t.written < t.limit {
		return nil
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("badgerstore: checkpoint commit: %w", err)
	}
	t.txn = t.db.NewTransaction(true)
	t.written = 0
	return nil
}

// commit commits txn and publishes the metadata of the events it inserted
// to the cache: the cache never holds an event that is not committed.
func (t *btx) commit() error {
	if err := t.txn.Commit(); err != nil {
		t.fresh = t.fresh[:0]
		return err
	}
	if t.metas != nil {
		t.metas.addAll(t.fresh)
	}
	t.fresh = t.fresh[:0]
	return nil
}

var _ dag.Tx = (*btx)(nil)

// event reads a stored event and its metadata.
func (t *btx) event(id dag.EventID) (*dag.Event, dag.Meta, bool, error) {
	v, ok, err := t.get(key(tagEvent, id[:]))
	if err != nil || !ok {
		return nil, dag.Meta{}, false, err
	}
	m, err := decodeMeta(v)
	if err != nil {
		return nil, m, false, err
	}
	e, err := dag.Decode(v[metaLen:])
	if err != nil {
		return nil, m, false, fmt.Errorf("badgerstore: event %v: %w: %w", id, errCorrupt, err)
	}
	return e, m, true, nil
}
