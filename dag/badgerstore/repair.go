package badgerstore

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
)

// After a power loss, a table or write-ahead log that badger made durable
// may point into value-log pages that were not: badger syncs neither before
// a memtable flush when SyncWrites is off. Values of valueThreshold bytes
// and more live there: events, and waiter lists of more than 30 IDs. Open
// checks every such value written since the last checkpoint (the journal
// says which) before it replays the journal, and rewrites those that do not
// read back (docs/events.md 4.2).

// journalRecord is one key and its value: a journal record (an event
// value), or a write for writeAll, which deletes the key if del is set.
type journalRecord struct {
	k, v []byte
	del  bool
}

// repairValues rewrites the event values (keys 'e' and 'p') that exist but
// cannot be read back, from the journal. Each of these keys gets one value
// per event, so the journal's value is the one the key had. A value that
// reads back but is not the event of its key (a lost page may read as zeros)
// is repaired too; a valid value that differs from the journal's (a replay
// before a second crash may have stored the event afresh, with another
// arrival seq) is kept, as the indexes agree with it. It returns how many
// values it rewrote.
func repairValues(db *badger.DB, records []journalRecord) (int, error) {
	var repair []journalRecord
	err := db.View(func(txn *badger.Txn) error {
		for _, r := range records {
			item, err := txn.Get(r.k)
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if v, err := item.ValueCopy(nil); err != nil || !validEventValue(r.k, v) {
				repair = append(repair, r)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(repair), writeAll(db, repair)
}

// validEventValue reports whether v is a well-formed value of key k: for
// 'e' the metadata and the event, for 'p' the event, whose ID is the key's.
func validEventValue(k, v []byte) bool {
	if k[0] == tagEvent {
		if _, err := decodeMeta(v); err != nil {
			return false
		}
		v = v[metaLen:]
	}
	e, err := dag.Decode(v)
	return err == nil && e.ID() == dag.EventID(k[1:])
}

// repairLists checks the tip keys of the journaled events and their
// parents, and rebuilds the waiter list of every parent that the journaled
// events named, where the stored list does not read back as a valid list:
// non-empty (an empty list is deleted, never stored) and naming only
// events in the right state. A lost page cannot make a list look valid: it
// reads as an error or as zeros. It returns how many tip keys and lists it
// rewrote.
func repairLists(db *badger.DB, events []*dag.Event) (int, error) {
	parents := map[dag.EventID]dag.RoomID{}
	tips := map[dag.EventID]dag.RoomID{}
	for _, e := range events {
		tips[e.ID()] = e.RoomID()
		for _, p := range e.Prev {
			parents[p] = e.RoomID()
			tips[p] = e.RoomID()
		}
	}
	var fixes []journalRecord
	err := db.View(func(txn *badger.Txn) error {
		t := &btx{txn: txn}
		for _, id := range slices.SortedFunc(maps.Keys(tips), dag.EventID.Compare) {
			fix, err := checkTip(t, tips[id], id)
			if err != nil {
				return fmt.Errorf("check tip %v: %w", id, err)
			}
			if fix != nil {
				fixes = append(fixes, *fix)
			}
		}
		for _, parent := range slices.SortedFunc(maps.Keys(parents), dag.EventID.Compare) {
			k := key(tagWait, parent[:])
			v, ok, err := t.get(k)
			if err == nil && !ok {
				continue
			}
			if err == nil && validWaiters(t, parent, v) {
				continue
			}
			waiters, err := recomputeWaiters(t, parent, parents[parent])
			if err != nil {
				return fmt.Errorf("rebuild waiters of %v: %w", parent, err)
			}
			fixes = append(fixes, journalRecord{k: k, v: encodeIDs(waiters), del: len(waiters) == 0})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(fixes), writeAll(db, fixes)
}

// checkTip returns the write that makes id's tip key right, or nil if it
// is: the key exists exactly when id is a stored event of room without a
// stored child. Replay after a power loss can store a parent after its
// child (see journal.go), which sets the parent's tip key wrongly.
func checkTip(t *btx, room dag.RoomID, id dag.EventID) (*journalRecord, error) {
	k := key(tagTip, room[:], id[:])
	isTip, err := t.has(k)
	if err != nil {
		return nil, err
	}
	m, stored, err := t.Meta(id)
	if err != nil {
		return nil, err
	}
	want := stored && m.Room == room
	if want {
		hasChild, err := hasPrefix(t, key(tagChild, id[:]))
		if err != nil {
			return nil, err
		}
		want = !hasChild
	}
	switch {
	case isTip && !want:
		return &journalRecord{k: k, del: true}, nil
	case !isTip && want:
		return &journalRecord{k: k, v: []byte{}}, nil
	}
	return nil, nil
}

// validWaiters reports whether v lists, in ascending order, pending events
// that name parent, while parent is not stored.
func validWaiters(t *btx, parent dag.EventID, v []byte) bool {
	ids, err := decodeIDs(v)
	if err != nil || len(ids) == 0 || !slices.IsSortedFunc(ids, dag.EventID.Compare) {
		return false
	}
	if stored, err := t.has(key(tagEvent, parent[:])); err != nil || stored {
		return false
	}
	for _, id := range ids {
		e, ok, err := t.PendingEvent(id)
		if err != nil || !ok || !slices.Contains(e.Prev, parent) {
			return false
		}
	}
	return true
}

// recomputeWaiters lists the room's pending events that name parent, or
// none if parent is stored.
func recomputeWaiters(t *btx, parent dag.EventID, room dag.RoomID) ([]dag.EventID, error) {
	if stored, err := t.has(key(tagEvent, parent[:])); err != nil || stored {
		return nil, err
	}
	pending, err := t.ids(key(tagPendingRoom, room[:]))
	if err != nil {
		return nil, err
	}
	var waiters []dag.EventID
	for _, id := range pending {
		e, ok, err := t.PendingEvent(id)
		if err != nil {
			return nil, err
		}
		if ok && slices.Contains(e.Prev, parent) {
			waiters = append(waiters, id)
		}
	}
	return waiters, nil
}

// hasPrefix reports whether any key starts with prefix.
func hasPrefix(t *btx, prefix []byte) (bool, error) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := t.txn.NewIterator(opts)
	defer it.Close()
	it.Rewind()
	return it.Valid(), nil
}

// writeAll writes records, deleting the keys of those with del set.
func writeAll(db *badger.DB, records []journalRecord) error {
	if len(records) == 0 {
		return nil
	}
	wb := db.NewWriteBatch()
	for _, r := range records {
		var err error
		if r.del {
			err = wb.Delete(r.k)
		} else {
			err = wb.Set(r.k, r.v)
		}
		if err != nil {
			wb.Cancel()
			return fmt.Errorf("repair %x: %w", r.k, err)
		}
	}
	return wb.Flush()
}
