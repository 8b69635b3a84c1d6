// Package feed is the node's delivery feed and joined-room records in the
// node-local database: per room, the accepted events and order records in
// processing order, numbered by the room's own sequence, and the room's
// arrival-log position processed so far; across rooms, the index a
// device's stream reads: one arrival sequence whose numbers are the
// cursors devices resume from; and each device's acknowledged cursor.
//
// A room's feed is its own keyspace, each entry carrying its arrival
// number too, so opening one room's stream (a binary search from a cursor
// to the room's next entry), reloading one room, a join and startup read
// that room's entries only, and forgetting a room finds its entries
// without a scan.
package feed

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/internal/localdb"
	engine "github.com/rhizome-chat/rhizome/room"
)

// Key layout (docs/operations.md, "What is stored where"):
//
//	r/<room:34>                  joined room (JSON: how joined, via servers, since, awaiting a local participant)
//	p/<room:34>                  room's DAG arrival-log position processed so far (uint64)
//	n/<room:34>                  number of the room's newest entry in its own sequence (uint64)
//	rf/<room:34>/<n:8>           the room's entry n (JSON: room, event, kind or order record; "g" its arrival number)
//	f/<seq:8>                    the entry of arrival number seq, any room: the device stream's index (JSON)
//	c/<user>/<device>            device's acknowledged feed cursor (uint64)
//	s/feedseq                    the newest arrival number
//	s/feedlayout                 the layout's version (layoutVersion)
//
// Databases of earlier layouts (f/ only; or f/ and per-room copies under
// fr/<room>/<seq> with the marker s/roomfeeds) are rebuilt once at Open.
const (
	pfxRoom      = "r/"
	pfxProcessed = "p/"
	pfxRoomSeq   = "n/"
	pfxRoomFeed  = "rf/"
	pfxFeed      = "f/"
	pfxCursor    = "c/"
	seqCounter   = "feedseq"

	pfxOldRoomFeed = "fr/"
)

// layoutVersion is the feed layout this package writes: 3, per-room
// sequences (1 was the arrival sequence alone, 2 added per-room copies
// numbered by it).
const layoutVersion = 3

var (
	layoutKey     = []byte("s/feedlayout")
	oldMarkerKey  = []byte("s/roomfeeds")
	errRoomNumber = errors.New("node: local database: room feed numbering")
)

// How a room was joined (RoomRecord.How).
const (
	JoinedCreated = "created" // a local user created it
	JoinedInvite  = "invite"  // an invite notice from a server of the room (Via)
	JoinedAPI     = "api"     // POST /v1/rooms/{room}/join through Via
)

// RoomRecord is what the node remembers about a room it takes part in
// besides the DAG: how and when it joined, the servers it joined through,
// and whether the room still awaits a local participant (a room joined by
// invite or API join that gains none within the grace period is left and
// purged). Records written before these fields have only Via.
type RoomRecord struct {
	Via     []string `json:"via,omitempty"` // server IDs in hex
	How     string   `json:"how,omitempty"`
	Since   int64    `json:"since,omitempty"` // unix ms
	Pending bool     `json:"pending,omitempty"`
}

// Entry is one accepted event, or one order record, in the delivery feed,
// in processing order. Accepted votes are in the feed too (restarts read it
// as the record of what was accepted) but are not streamed.
type Entry struct {
	Room  dag.RoomID          `json:"r"`
	Event dag.EventID         `json:"e"`
	Kind  dag.Kind            `json:"k"`
	Order *engine.OrderRecord `json:"o,omitempty"`
}

// roomEntry is an entry in its room's feed: the entry and its arrival
// number.
type roomEntry struct {
	Entry
	Seq uint64 `json:"g"`
}

// Feed is the delivery feed and room records of one node-local database.
type Feed struct {
	db *localdb.DB

	wakeMu sync.Mutex
	wake   chan struct{} // closed and replaced whenever the feed grows
}

// Open returns the feed of db, first rebuilding the per-room feeds of a
// database written in an earlier layout (log, if not nil, reports it).
func Open(db *localdb.DB, log *slog.Logger) (*Feed, error) {
	f := &Feed{db: db, wake: make(chan struct{})}
	if err := f.upgrade(log); err != nil {
		return nil, err
	}
	return f, nil
}

// upgrade rebuilds the per-room feeds from the arrival sequence, which
// every layout has, unless the layout is current: it clears what an
// interrupted upgrade left, numbers each room's entries in arrival order
// (in batches), deletes the earlier layout's copies, and records the
// layout last, so a crash in between redoes it.
func (f *Feed) upgrade(log *slog.Logger) error {
	var version uint64
	if err := f.db.View(func(txn *badger.Txn) (err error) {
		version, err = localdb.GetU64(txn, layoutKey)
		return err
	}); err != nil || version == layoutVersion {
		return err
	}
	if version > layoutVersion {
		return fmt.Errorf("%w: feed layout %d is newer than this node's (%d)", localdb.ErrLocalDB, version, layoutVersion)
	}
	for _, pfx := range []string{pfxRoomFeed, pfxRoomSeq} {
		if err := f.deletePrefix([]byte(pfx)); err != nil {
			return err
		}
	}
	var after uint64
	counts := map[dag.RoomID]uint64{}
	n := 0
	for {
		seqs, entries, err := f.All(after, 1024)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			break
		}
		if err := f.db.Update(func(txn *badger.Txn) error {
			touched := map[dag.RoomID]bool{}
			for i, e := range entries {
				counts[e.Room]++
				touched[e.Room] = true
				if err := localdb.SetJSON(txn, roomFeedKey(e.Room, counts[e.Room]), roomEntry{Entry: e, Seq: seqs[i]}); err != nil {
					return err
				}
			}
			for r := range touched {
				if err := txn.Set(roomKey(pfxRoomSeq, r), localdb.U64(counts[r])); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		after, n = seqs[len(seqs)-1], n+len(entries)
	}
	if err := f.deletePrefix([]byte(pfxOldRoomFeed)); err != nil {
		return err
	}
	if n > 0 && log != nil {
		log.Info("feed numbered per room (layout upgrade)", "from", version, "to", layoutVersion, "entries", n, "rooms", len(counts))
	}
	return f.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(oldMarkerKey); err != nil {
			return err
		}
		return txn.Set(layoutKey, localdb.U64(layoutVersion))
	})
}

// deletePrefix deletes every key with the prefix, in batches.
func (f *Feed) deletePrefix(pfx []byte) error {
	for {
		var keys [][]byte
		if err := f.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
			defer it.Close()
			for it.Rewind(); it.Valid() && len(keys) < 1000; it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			return nil
		}); err != nil || len(keys) == 0 {
			return err
		}
		if err := f.db.Update(func(txn *badger.Txn) error {
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
}

func roomKey(pfx string, r dag.RoomID) []byte { return append([]byte(pfx), r[:]...) }

func feedKey(seq uint64) []byte { return append([]byte(pfxFeed), localdb.U64(seq)...) }

// roomFeedPrefix is the prefix of room r's feed entries; roomFeedKey names
// its entry n.
func roomFeedPrefix(r dag.RoomID) []byte { return append(roomKey(pfxRoomFeed, r), '/') }

func roomFeedKey(r dag.RoomID, n uint64) []byte {
	return append(roomFeedPrefix(r), localdb.U64(n)...)
}

// Rooms returns every joined room and its record.
func (f *Feed) Rooms() (map[dag.RoomID]RoomRecord, error) {
	out := map[dag.RoomID]RoomRecord{}
	err := f.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxRoom), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()[len(pfxRoom):]
			id, err := dag.EventIDFromBytes(k)
			if err != nil {
				return fmt.Errorf("room key %x: %w", k, err)
			}
			var rec RoomRecord
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &rec) }); err != nil {
				return err
			}
			out[dag.RoomID(id)] = rec
		}
		return nil
	})
	return out, err
}

// AddRoom records a joined room. A room already recorded keeps its record.
// It reports whether the room was new.
func (f *Feed) AddRoom(r dag.RoomID, rec RoomRecord) (bool, error) {
	var isNew bool
	err := f.db.Update(func(txn *badger.Txn) error {
		var have RoomRecord
		ok, err := localdb.GetJSON(txn, roomKey(pfxRoom, r), &have)
		if err != nil || ok {
			return err
		}
		isNew = true
		return localdb.SetJSON(txn, roomKey(pfxRoom, r), rec)
	})
	return isNew, err
}

// SetRoom replaces the record of a recorded room; it reports whether the
// room is recorded.
func (f *Feed) SetRoom(r dag.RoomID, rec RoomRecord) (bool, error) {
	found := false
	err := f.db.Update(func(txn *badger.Txn) error {
		var have RoomRecord
		ok, err := localdb.GetJSON(txn, roomKey(pfxRoom, r), &have)
		if err != nil || !ok {
			return err
		}
		found = true
		return localdb.SetJSON(txn, roomKey(pfxRoom, r), rec)
	})
	return found, err
}

// RemoveRoom forgets a room: its record, its processed position and its
// entries in the feed (its own keyspace names their arrival numbers). The
// DAG store is not touched.
func (f *Feed) RemoveRoom(r dag.RoomID) error {
	var feedKeys [][]byte
	err := f.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: roomFeedPrefix(r), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var e roomEntry
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
				return err
			}
			feedKeys = append(feedKeys, it.Item().KeyCopy(nil), feedKey(e.Seq))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The record first: once it is gone the room is forgotten (a restart
	// does not restore it), and the feed entries left by a crash before
	// the batches below are done are skipped like those of any unknown room.
	if err := f.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(roomKey(pfxProcessed, r)); err != nil {
			return err
		}
		if err := txn.Delete(roomKey(pfxRoomSeq, r)); err != nil {
			return err
		}
		return txn.Delete(roomKey(pfxRoom, r))
	}); err != nil {
		return err
	}
	for len(feedKeys) > 0 {
		batch := feedKeys[:min(len(feedKeys), 1000)]
		feedKeys = feedKeys[len(batch):]
		if err := f.db.Update(func(txn *badger.Txn) error {
			for _, k := range batch {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// Processed returns the room's arrival-log position processed so far.
func (f *Feed) Processed(r dag.RoomID) (uint64, error) {
	var v uint64
	err := f.db.View(func(txn *badger.Txn) (err error) {
		v, err = localdb.GetU64(txn, roomKey(pfxProcessed, r))
		return err
	})
	return v, err
}

// Append records that room r's arrival log was processed up to processed
// and appends the entries to the feed, atomically: each gets the next
// arrival number and the next number of its room's sequence. It returns
// the arrival number of the last entry (or the current one if none), and
// wakes the Waiter channels when the feed grew.
func (f *Feed) Append(r dag.RoomID, processed uint64, entries []Entry) (uint64, error) {
	var last uint64
	err := f.db.Update(func(txn *badger.Txn) error {
		for _, e := range entries {
			n, err := localdb.Next(txn, seqCounter)
			if err != nil {
				return err
			}
			k, err := localdb.GetU64(txn, roomKey(pfxRoomSeq, e.Room))
			if err != nil {
				return err
			}
			k++
			if err := txn.Set(roomKey(pfxRoomSeq, e.Room), localdb.U64(k)); err != nil {
				return err
			}
			if err := localdb.SetJSON(txn, feedKey(n), e); err != nil {
				return err
			}
			if err := localdb.SetJSON(txn, roomFeedKey(e.Room, k), roomEntry{Entry: e, Seq: n}); err != nil {
				return err
			}
			last = n
		}
		if len(entries) == 0 {
			var err error
			if last, err = localdb.GetU64(txn, []byte("s/"+seqCounter)); err != nil {
				return err
			}
		}
		return txn.Set(roomKey(pfxProcessed, r), localdb.U64(processed))
	})
	if err == nil && len(entries) > 0 {
		f.wakeAll()
	}
	return last, err
}

// wakeAll wakes every reader waiting for new entries.
func (f *Feed) wakeAll() {
	f.wakeMu.Lock()
	close(f.wake)
	f.wake = make(chan struct{})
	f.wakeMu.Unlock()
}

// Waiter returns a channel closed at the next growth of the feed. Take it
// before reading, so that no growth is missed.
func (f *Feed) Waiter() <-chan struct{} {
	f.wakeMu.Lock()
	defer f.wakeMu.Unlock()
	return f.wake
}

// Seq returns the number of the newest feed entry.
func (f *Feed) Seq() (uint64, error) {
	var v uint64
	err := f.db.View(func(txn *badger.Txn) (err error) {
		v, err = localdb.GetU64(txn, []byte("s/"+seqCounter))
		return err
	})
	return v, err
}

// Room returns up to limit of room r's feed entries after arrival number
// after, with their arrival numbers: it reads that room's entries only,
// finding the first by a binary search of the room's sequence.
func (f *Feed) Room(r dag.RoomID, after uint64, limit int) ([]uint64, []Entry, error) {
	var seqs []uint64
	var out []Entry
	err := f.db.View(func(txn *badger.Txn) error {
		count, err := localdb.GetU64(txn, roomKey(pfxRoomSeq, r))
		if err != nil {
			return err
		}
		// The first k in [1, count] whose arrival number is past after
		// (arrival numbers grow with k).
		lo, hi := uint64(1), count+1
		for lo < hi {
			mid := lo + (hi-lo)/2
			var e roomEntry
			ok, err := localdb.GetJSON(txn, roomFeedKey(r, mid), &e)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: room %v has no entry %d of %d", errRoomNumber, r, mid, count)
			}
			if e.Seq > after {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: roomFeedPrefix(r), PrefetchValues: true, PrefetchSize: limit})
		defer it.Close()
		for it.Seek(roomFeedKey(r, lo)); it.Valid() && len(out) < limit; it.Next() {
			var e roomEntry
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
				return err
			}
			seqs = append(seqs, e.Seq)
			out = append(out, e.Entry)
		}
		return nil
	})
	return seqs, out, err
}

// All returns up to limit feed entries of every room after arrival number
// after, with their numbers: the device stream's index.
func (f *Feed) All(after uint64, limit int) ([]uint64, []Entry, error) {
	var seqs []uint64
	var out []Entry
	pfx := []byte(pfxFeed)
	err := f.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true, PrefetchSize: limit})
		defer it.Close()
		for it.Seek(feedKey(after + 1)); it.Valid() && len(out) < limit; it.Next() {
			var e Entry
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
				return err
			}
			seqs = append(seqs, binary.BigEndian.Uint64(it.Item().Key()[len(pfx):]))
			out = append(out, e)
		}
		return nil
	})
	return seqs, out, err
}

// SetCursor stores a device's acknowledged feed cursor.
func (f *Feed) SetCursor(user, device string, cursor uint64) error {
	return f.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(pfxCursor+user+"/"+device), localdb.U64(cursor))
	})
}

// Cursor returns a device's acknowledged feed cursor (0 if none).
func (f *Feed) Cursor(user, device string) (uint64, error) {
	var v uint64
	err := f.db.View(func(txn *badger.Txn) (err error) {
		v, err = localdb.GetU64(txn, []byte(pfxCursor+user+"/"+device))
		return err
	})
	return v, err
}
