package badgerstore

import (
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
)

// Operations other than Put (ExpirePending, PurgeRoom) run on the writer
// goroutine, alone, between two batches: they change what the writer
// caches (log seqs, pending counters, metadata), and they make their
// deletions durable by a checkpoint (a barrier) rather than by the journal,
// which records only event values.
//
// A purge (docs/events.md 4.3) first writes a marker 'P' room and
// checkpoints, so that the marker is durable before any key of the room is
// deleted; then it deletes the room's keys, in as many transactions as
// they need, and checkpoints; then it deletes the marker and checkpoints
// again. Open finds the marker of a purge a crash interrupted, leaves the
// room's events out of the journal replay (replaying them on top of a half
// deleted room would fail or bring part of it back), deletes the room
// again, and syncs before removing the marker. So after a crash a purge
// that did not return is either not begun (no marker) or complete.

// writeTx starts a write transaction of the writer, with its caches.
func (s *Store) writeTx(journal bool) *btx {
	return &btx{db: s.db, txn: s.db.NewTransaction(true), limit: s.chunk, seqs: s.seqs, metas: s.metas, counts: s.counts, journal: journal}
}

// do runs op on the writer goroutine and returns its error.
func (s *Store) do(op func() error) error {
	if err := s.brokenErr(); err != nil {
		return err
	}
	r := &request{op: op, ok: make(chan struct{})}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return dag.ErrClosed
	}
	s.reqs <- r
	s.mu.RUnlock()
	<-r.ok
	return r.err
}

// runOp runs an operation on the writer. An operation fails only on a
// storage error, after which part of it may be committed and the writer's
// counters may disagree with badger: as for a failed batch, the store stops
// until it is reopened (and Open finishes an interrupted purge).
func (s *Store) runOp(r *request) {
	defer close(r.ok)
	if err := s.brokenErr(); err != nil {
		r.err = err
		return
	}
	if err := r.op(); err != nil {
		err = fmt.Errorf("badgerstore: store failed, reopen it: %w", err)
		s.broken.CompareAndSwap(nil, &err)
		r.err = err
	}
}

// barrier waits for a checkpoint taken after every batch committed so far
// is journaled: then badger holds all of them and the writer's own commits
// durably, and the journal is empty. Only the writer calls it.
func (s *Store) barrier() error {
	ch := make(chan error, 1)
	s.synced <- committed{barrier: ch}
	return <-ch
}

// ExpirePending implements [dag.Store]: it drops, oldest first, the pending
// events that arrived at or before now minus Limits.PendingTTL (found
// through the 'a' index: the cost is the number dropped), then
// checkpoints, so that no journal replay brings them back.
func (s *Store) ExpirePending(now time.Time) (int, error) {
	var n int
	err := s.do(func() (err error) {
		n, err = s.expire(now)
		return err
	})
	return n, err
}

func (s *Store) expire(now time.Time) (int, error) {
	cutoff := arrival(now.Add(-s.lim.PendingTTL))
	var ids []dag.EventID
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{tagArrival}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != 1+uint64Len+dag.IDLen {
				return fmt.Errorf("badgerstore: arrival key %x: %w", k, errCorrupt)
			}
			if string(k[1:1+uint64Len]) > string(cutoff) {
				break
			}
			id, _ := idAt(k, 1+uint64Len)
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	t := s.writeTx(false)
	n := 0
	for _, id := range ids {
		if err := t.Checkpoint(); err != nil {
			t.txn.Discard()
			return n, err
		}
		e, ok, err := t.PendingEvent(id)
		if err == nil && ok {
			err = t.RemovePending(e)
			n++
		}
		if err != nil {
			t.txn.Discard()
			return n, fmt.Errorf("expire pending %v: %w", id, err)
		}
	}
	if err := t.commit(); err != nil {
		return n, err
	}
	return n, s.barrier()
}

// PurgeRoom implements [dag.Store]. A room the store knows nothing of costs
// two prefix lookups; otherwise three checkpoints (see above).
func (s *Store) PurgeRoom(room dag.RoomID) error {
	return s.do(func() error { return s.purge(room) })
}

func (s *Store) purge(room dag.RoomID) error {
	var known bool
	err := s.db.View(func(txn *badger.Txn) error {
		t := &btx{txn: txn}
		for _, prefix := range [][]byte{key(tagTopo, room[:]), key(tagPendingRoom, room[:])} {
			has, err := hasPrefix(t, prefix)
			if err != nil || has {
				known = has
				return err
			}
		}
		return nil
	})
	if err != nil || !known {
		return err
	}
	marker := key(tagPurge, room[:])
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(marker, nil) }); err != nil {
		return fmt.Errorf("purge %v: %w", room, err)
	}
	if err := s.barrier(); err != nil {
		return fmt.Errorf("purge %v: %w", room, err)
	}
	if err := s.deleteRoom(room); err != nil {
		return fmt.Errorf("purge %v: %w", room, err)
	}
	if err := s.barrier(); err != nil {
		return fmt.Errorf("purge %v: %w", room, err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(marker) }); err != nil {
		return fmt.Errorf("purge %v: %w", room, err)
	}
	return s.barrier()
}

// deleteRoom deletes every key of room: its pending events through
// RemovePending (which edits the waiter lists and the counters), then its
// stored events with their log, topological, tip and child-edge keys. It
// reads no event value, so it works on a room whose values a power loss
// damaged. It commits as it goes; the caller makes it durable.
func (s *Store) deleteRoom(room dag.RoomID) error {
	var pending []dag.EventID
	var dels []journalRecord
	err := s.db.View(func(txn *badger.Txn) error {
		t := &btx{txn: txn}
		var err error
		if pending, err = t.ids(key(tagPendingRoom, room[:])); err != nil {
			return err
		}
		for _, tag := range []byte{tagLog, tagTip} {
			keys, err := prefixKeysTxn(txn, key(tag, room[:]))
			if err != nil {
				return err
			}
			for _, k := range keys {
				dels = append(dels, journalRecord{k: k, del: true})
			}
		}
		topo, err := prefixKeysTxn(txn, key(tagTopo, room[:]))
		if err != nil {
			return err
		}
		for _, k := range topo {
			id, err := idAt(k, 1+dag.IDLen+uint64Len)
			if err != nil {
				return err
			}
			children, err := prefixKeysTxn(txn, key(tagChild, id[:]))
			if err != nil {
				return err
			}
			dels = append(dels, journalRecord{k: k, del: true}, journalRecord{k: key(tagEvent, id[:]), del: true})
			for _, c := range children {
				dels = append(dels, journalRecord{k: c, del: true})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	t := s.writeTx(false)
	for _, id := range pending {
		if err := t.Checkpoint(); err != nil {
			t.txn.Discard()
			return err
		}
		e, ok, err := t.PendingEvent(id)
		if err == nil && ok {
			err = t.RemovePending(e)
		}
		if err != nil {
			t.txn.Discard()
			return fmt.Errorf("pending %v: %w", id, err)
		}
	}
	if err := t.commit(); err != nil {
		return err
	}
	if err := writeAll(s.db, dels); err != nil {
		return err
	}
	delete(s.seqs, room)
	s.metas.clear()
	return nil
}

// finishPurges completes at Open the purges of rooms a crash interrupted
// (their events were left out of the replay): it deletes each room, makes
// that durable, and only then removes the markers (recover syncs again).
func (s *Store) finishPurges(dir string, rooms []dag.RoomID) error {
	if len(rooms) == 0 {
		return nil
	}
	markers := make([]journalRecord, len(rooms))
	for i, room := range rooms {
		if err := s.deleteRoom(room); err != nil {
			return fmt.Errorf("finish purge of %v: %w", room, err)
		}
		markers[i] = journalRecord{k: key(tagPurge, room[:]), del: true}
	}
	if err := s.db.Sync(); err != nil {
		return err
	}
	if err := syncBadgerFiles(dir); err != nil {
		return err
	}
	return writeAll(s.db, markers)
}

// withoutRooms returns the events that are not in any of rooms.
func withoutRooms(events []*dag.Event, rooms []dag.RoomID) []*dag.Event {
	if len(rooms) == 0 {
		return events
	}
	var out []*dag.Event
	for _, e := range events {
		if !slices.Contains(rooms, e.RoomID()) {
			out = append(out, e)
		}
	}
	return out
}

// purgeMarkers returns the rooms whose purge a crash interrupted.
func purgeMarkers(db *badger.DB) ([]dag.RoomID, error) {
	keys, err := prefixKeys(db, []byte{tagPurge})
	if err != nil {
		return nil, err
	}
	rooms := make([]dag.RoomID, len(keys))
	for i, k := range keys {
		id, err := idAt(k, 1)
		if err != nil || len(k) != 1+dag.IDLen {
			return nil, fmt.Errorf("badgerstore: purge marker %x: %w", k, errCorrupt)
		}
		rooms[i] = dag.RoomID(id)
	}
	return rooms, nil
}
