package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

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
	v, ok, err := t.get(key(tagMeta, id[:]))
	if err != nil || !ok {
		return dag.Meta{}, false, err
	}
	m, err := decodeMeta(v)
	return m, err == nil, err
}

func (t *btx) PendingEvent(id dag.EventID) (*dag.Event, bool, error) {
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

func (t *btx) counter(k []byte) (uint64, error) {
	v, ok, err := t.get(k)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != uint64Len {
		return 0, fmt.Errorf("badgerstore: counter %x: %w", k, errCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

func (t *btx) addCounter(k []byte, delta int) error {
	n, err := t.counter(k)
	if err != nil {
		return err
	}
	n = uint64(int64(n) + int64(delta))
	if n == 0 {
		return t.del(k)
	}
	return t.set(k, u64(n))
}

func (t *btx) PendingCounts(room dag.RoomID, origin dag.ServerID) (int, int, error) {
	r, err := t.counter(key(tagCountRoom, room[:]))
	if err != nil {
		return 0, 0, err
	}
	o, err := t.counter(key(tagCountOrigin, origin[:]))
	return int(r), int(o), err
}

func (t *btx) AddPending(e *dag.Event, missing []dag.EventID) error {
	id := e.ID()
	if err := t.set(key(tagPending, id[:]), e.Bytes()); err != nil {
		return err
	}
	if err := t.set(key(tagPendingRoom, e.Room[:], id[:]), nil); err != nil {
		return err
	}
	for _, p := range missing {
		if err := t.editWaiters(p, id, true); err != nil {
			return err
		}
	}
	if err := t.addCounter(key(tagCountRoom, e.Room[:]), 1); err != nil {
		return err
	}
	return t.addCounter(key(tagCountOrigin, e.Origin[:]), 1)
}

func (t *btx) RemovePending(e *dag.Event) error {
	id := e.ID()
	if ok, err := t.has(key(tagPending, id[:])); err != nil || !ok {
		return err
	}
	if err := t.del(key(tagPending, id[:])); err != nil {
		return err
	}
	if err := t.del(key(tagPendingRoom, e.Room[:], id[:])); err != nil {
		return err
	}
	for _, p := range e.Prev {
		if err := t.editWaiters(p, id, false); err != nil {
			return err
		}
	}
	if err := t.addCounter(key(tagCountRoom, e.Room[:]), -1); err != nil {
		return err
	}
	return t.addCounter(key(tagCountOrigin, e.Origin[:]), -1)
}

// Waiters reads the list of pending children waiting for parent. The list
// is one value (not one key per child) so that a write transaction reads it
// with a point lookup rather than an iterator, which in badger would sort
// all of the transaction's pending writes.
func (t *btx) Waiters(parent dag.EventID) ([]dag.EventID, error) {
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
	seqKey := key(tagSeq, room[:])
	seq, err := t.counter(seqKey)
	if err != nil {
		return err
	}
	seq++
	sets := []struct{ k, v []byte }{
		{key(tagEvent, id[:]), e.Bytes()},
		{key(tagMeta, id[:]), encodeMeta(dag.Meta{Room: room, Depth: depth, Seq: seq})},
		{key(tagLog, room[:], u64(seq)), id[:]},
		{key(tagTopo, room[:], u64(depth), id[:]), nil},
		{key(tagTip, room[:], id[:]), nil},
		{seqKey, u64(seq)},
	}
	for _, s := range sets {
		if err := t.set(s.k, s.v); err != nil {
			return err
		}
	}
	for _, p := range e.Prev {
		if err := t.set(key(tagChild, p[:], id[:]), nil); err != nil {
			return err
		}
		if err := t.del(key(tagTip, room[:], p[:])); err != nil {
			return err
		}
	}
	return nil
}

func (t *btx) Checkpoint() error {
	if t.db == nil || t.written < t.limit {
		return nil
	}
	if err := t.txn.Commit(); err != nil {
		return fmt.Errorf("badgerstore: checkpoint commit: %w", err)
	}
	t.txn = t.db.NewTransaction(true)
	t.written = 0
	return nil
}

var _ dag.Tx = (*btx)(nil)
