package node

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
)

// LocalDir is the folder inside the data folder that holds the node-local
// database; the DAG store is in EventsDir.
const (
	LocalDir  = "local"
	EventsDir = "events"
)

// Key layout of the node-local badger database (docs/operations.md,
// "What is stored where"). Each prefix is one record type; names are
// percent-free ASCII, so "/" separates parts unambiguously.
//
//	u/<user>                     user record (JSON)
//	d/<user>/<device>            device record (JSON)
//	t/<sha256(token) hex>        token -> {user, device} (JSON); the token itself is never stored
//	k/<user>/<device>/<seq:8>    one-time KeyPackage (suite:2 || MLSMessage bytes)
//	l/<user>/<device>            last-resort KeyPackage (suite:2 || MLSMessage bytes)
//	r/<room:34>                  joined room (JSON: how joined, via servers, since, awaiting a local participant)
//	p/<room:34>                  room's DAG arrival-log position processed so far (uint64)
//	f/<seq:8>                    delivery feed entry (JSON: room, event, kind; or room, order record)
//	c/<user>/<device>            device's acknowledged feed cursor (uint64)
//	s/<name>                     counters (kpseq, feedseq)
//	a/<user>/<user URI>          consent: the user allows that user to claim its one-time KeyPackages (JSON)
const (
	pfxUser       = "u/"
	pfxDevice     = "d/"
	pfxToken      = "t/"
	pfxKeyPackage = "k/"
	pfxLastResort = "l/"
	pfxRoom       = "r/"
	pfxProcessed  = "p/"
	pfxFeed       = "f/"
	pfxRoomFeed   = "fr/" // fr/<room>/<seq>: the room's feed entries (copies)
	pfxCursor     = "c/"
)

// ErrLocalDB is wrapped by failures of the node-local database.
var ErrLocalDB = errors.New("node: local database")

// localDB is the node's own durable state next to the DAG store: accounts,
// devices, token hashes, KeyPackages, joined rooms, the delivery feed and
// cursors. Every write is synced before it returns.
type localDB struct {
	db *badger.DB
}

func openLocalDB(dir string, log *slog.Logger) (*localDB, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(nil).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithNumCompactors(2).
		WithValueThreshold(1 << 20)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrLocalDB, dir, err)
	}
	l := &localDB{db: db}
	if err := l.indexRoomFeeds(log); err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// roomFeedsMarker says the per-room feed index is complete.
var roomFeedsMarker = []byte("s/roomfeeds")

// indexRoomFeeds builds the per-room copies of the feed once, for a
// database written before they existed (layout upgrade, in batches; the
// marker is set last, so a crash in between redoes it).
func (l *localDB) indexRoomFeeds(log *slog.Logger) error {
	done := false
	if err := l.view(func(txn *badger.Txn) error {
		_, err := txn.Get(roomFeedsMarker)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		done = err == nil
		return err
	}); err != nil || done {
		return err
	}
	var after uint64
	n := 0
	for {
		seqs, entries, err := l.feed(after, 1024)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			break
		}
		if err := l.update(func(txn *badger.Txn) error {
			for i, e := range entries {
				if err := setJSON(txn, roomFeedKey(e.Room, seqs[i]), e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		after, n = seqs[len(seqs)-1], n+len(entries)
	}
	if n > 0 && log != nil {
		log.Info("feed indexed per room (layout upgrade)", "entries", n)
	}
	return l.update(func(txn *badger.Txn) error { return txn.Set(roomFeedsMarker, []byte{1}) })
}

func (l *localDB) Close() error { return l.db.Close() }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func roomKey(pfx string, r dag.RoomID) []byte { return append([]byte(pfx), r[:]...) }

func feedKey(seq uint64) []byte { return append([]byte(pfxFeed), u64(seq)...) }

// roomFeedPrefix is the prefix of room r's feed entries.
func roomFeedPrefix(r dag.RoomID) []byte { return append(roomKey(pfxRoomFeed, r), '/') }

func roomFeedKey(r dag.RoomID, seq uint64) []byte { return append(roomFeedPrefix(r), u64(seq)...) }

// getJSON reads key into v inside txn; ok is false when the key is absent.
func getJSON(txn *badger.Txn, key []byte, v any) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func setJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

// getU64 reads a big-endian uint64, 0 when absent.
func getU64(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("%w: value of %q has %d bytes, want 8", ErrLocalDB, key, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

// next increments the counter s/<name> inside txn and returns its new value.
func next(txn *badger.Txn, name string) (uint64, error) {
	key := []byte("s/" + name)
	v, err := getU64(txn, key)
	if err != nil {
		return 0, err
	}
	v++
	return v, txn.Set(key, u64(v))
}

// update runs f in a read-write transaction and commits it (synced).
func (l *localDB) update(f func(txn *badger.Txn) error) error {
	err := l.db.Update(f)
	if err != nil && !isAPIError(err) {
		return fmt.Errorf("%w: %w", ErrLocalDB, err)
	}
	return err
}

func (l *localDB) view(f func(txn *badger.Txn) error) error {
	err := l.db.View(f)
	if err != nil && !isAPIError(err) {
		return fmt.Errorf("%w: %w", ErrLocalDB, err)
	}
	return err
}

// How a room was joined (roomRecord.How).
const (
	joinedCreated = "created" // a local user created it
	joinedInvite  = "invite"  // an invite notice from a server of the room (Via)
	joinedAPI     = "api"     // POST /v1/rooms/{room}/join through Via
)

// roomRecord is what the node remembers about a room it takes part in
// besides the DAG: how and when it joined, the servers it joined through,
// and whether the room still awaits a local participant (a room joined by
// invite or API join that gains none within the grace period is left and
// purged, see joins.sweep). Records written before these fields have only
// Via.
type roomRecord struct {
	Via     []string `json:"via,omitempty"` // server IDs in hex
	How     string   `json:"how,omitempty"`
	Since   int64    `json:"since,omitempty"` // unix ms
	Pending bool     `json:"pending,omitempty"`
}

// feedEntry is one accepted event, or one order record, in the node's
// delivery feed, in processing order. The feed sequence number is the
// cursor clients resume from. Accepted votes are in the feed too (restarts
// read it as the record of what was accepted) but are not streamed.
type feedEntry struct {
	Room  dag.RoomID   `json:"r"`
	Event dag.EventID  `json:"e"`
	Kind  dag.Kind     `json:"k"`
	Order *orderRecord `json:"o,omitempty"`
}

// rooms returns every joined room and its record.
func (l *localDB) rooms() (map[dag.RoomID]roomRecord, error) {
	out := map[dag.RoomID]roomRecord{}
	err := l.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxRoom), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()[len(pfxRoom):]
			id, err := dag.EventIDFromBytes(k)
			if err != nil {
				return fmt.Errorf("room key %x: %w", k, err)
			}
			var rec roomRecord
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &rec) }); err != nil {
				return err
			}
			out[dag.RoomID(id)] = rec
		}
		return nil
	})
	return out, err
}

// addRoom records a joined room. A room already recorded keeps its record.
// It reports whether the room was new.
func (l *localDB) addRoom(r dag.RoomID, rec roomRecord) (bool, error) {
	var isNew bool
	err := l.update(func(txn *badger.Txn) error {
		var have roomRecord
		ok, err := getJSON(txn, roomKey(pfxRoom, r), &have)
		if err != nil || ok {
			return err
		}
		isNew = true
		return setJSON(txn, roomKey(pfxRoom, r), rec)
	})
	return isNew, err
}

// setRoom replaces the record of a recorded room; it reports whether the
// room is recorded.
func (l *localDB) setRoom(r dag.RoomID, rec roomRecord) (bool, error) {
	found := false
	err := l.update(func(txn *badger.Txn) error {
		var have roomRecord
		ok, err := getJSON(txn, roomKey(pfxRoom, r), &have)
		if err != nil || !ok {
			return err
		}
		found = true
		return setJSON(txn, roomKey(pfxRoom, r), rec)
	})
	return found, err
}

// removeRoom forgets a room: its record, its processed position and its
// entries in the delivery feed (found through the per-room index).
// The DAG store is not touched.
func (l *localDB) removeRoom(r dag.RoomID) error {
	var feedKeys [][]byte
	err := l.view(func(txn *badger.Txn) error {
		pfx := roomFeedPrefix(r)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			feedKeys = append(feedKeys, k, feedKey(binary.BigEndian.Uint64(k[len(pfx):])))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The record first: once it is gone the room is forgotten (a restart
	// does not restore it), and the feed entries left by a crash before
	// the batches below are done are skipped like those of any unknown room.
	if err := l.update(func(txn *badger.Txn) error {
		if err := txn.Delete(roomKey(pfxProcessed, r)); err != nil {
			return err
		}
		return txn.Delete(roomKey(pfxRoom, r))
	}); err != nil {
		return err
	}
	for len(feedKeys) > 0 {
		batch := feedKeys[:min(len(feedKeys), 1000)]
		feedKeys = feedKeys[len(batch):]
		if err := l.update(func(txn *badger.Txn) error {
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

func (l *localDB) processed(r dag.RoomID) (uint64, error) {
	var v uint64
	err := l.view(func(txn *badger.Txn) (err error) {
		v, err = getU64(txn, roomKey(pfxProcessed, r))
		return err
	})
	return v, err
}

// appendFeed records that the room's arrival log was processed up to seq
// and appends the accepted events to the feed, atomically. It returns the
// feed sequence number of the last entry (or the current one if none).
func (l *localDB) appendFeed(r dag.RoomID, seq uint64, entries []feedEntry) (uint64, error) {
	var last uint64
	err := l.update(func(txn *badger.Txn) error {
		for _, e := range entries {
			n, err := next(txn, "feedseq")
			if err != nil {
				return err
			}
			if err := setJSON(txn, feedKey(n), e); err != nil {
				return err
			}
			if err := setJSON(txn, roomFeedKey(e.Room, n), e); err != nil {
				return err
			}
			last = n
		}
		if len(entries) == 0 {
			var err error
			if last, err = getU64(txn, []byte("s/feedseq")); err != nil {
				return err
			}
		}
		return txn.Set(roomKey(pfxProcessed, r), u64(seq))
	})
	return last, err
}

// feedSeq returns the sequence number of the newest feed entry.
func (l *localDB) feedSeq() (uint64, error) {
	var v uint64
	err := l.view(func(txn *badger.Txn) (err error) {
		v, err = getU64(txn, []byte("s/feedseq"))
		return err
	})
	return v, err
}

// roomFeed returns up to limit of room r's feed entries after seq, with
// their (global) numbers: it reads that room's entries only.
func (l *localDB) roomFeed(r dag.RoomID, after uint64, limit int) ([]uint64, []feedEntry, error) {
	var seqs []uint64
	var out []feedEntry
	pfx := roomFeedPrefix(r)
	err := l.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true, PrefetchSize: limit})
		defer it.Close()
		for it.Seek(roomFeedKey(r, after+1)); it.Valid() && len(out) < limit; it.Next() {
			k := it.Item().Key()
			var e feedEntry
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
				return err
			}
			seqs = append(seqs, binary.BigEndian.Uint64(k[len(pfx):]))
			out = append(out, e)
		}
		return nil
	})
	return seqs, out, err
}

// feed returns up to limit feed entries after seq, with their numbers.
func (l *localDB) feed(after uint64, limit int) ([]uint64, []feedEntry, error) {
	var seqs []uint64
	var out []feedEntry
	err := l.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxFeed), PrefetchValues: true, PrefetchSize: limit})
		defer it.Close()
		for it.Seek(feedKey(after + 1)); it.Valid() && len(out) < limit; it.Next() {
			k := it.Item().Key()
			var e feedEntry
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
				return err
			}
			seqs = append(seqs, binary.BigEndian.Uint64(k[len(pfxFeed):]))
			out = append(out, e)
		}
		return nil
	})
	return seqs, out, err
}
