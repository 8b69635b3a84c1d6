package feed

import (
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/internal/localdb"
)

// TestRoomFeed: the feed is kept per room, in the room's own sequence, and
// indexed by one arrival sequence for the device stream. A room's feed
// holds its entries only, with their arrival numbers, in order, from any
// cursor; removing a room deletes its entries from both; and databases
// written in the earlier layouts (the arrival sequence alone; per-room
// copies numbered by it) are renumbered once at open.
func TestRoomFeed(t *testing.T) {
	dir := t.TempDir()
	open := func() (*localdb.DB, *Feed) {
		t.Helper()
		db, err := localdb.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Open(db, nil)
		if err != nil {
			t.Fatal(err)
		}
		return db, f
	}
	db, l := open()
	var a, b dag.RoomID
	a[0], b[0] = 0xa, 0xb
	ev := func(i byte) dag.EventID {
		id, err := dag.EventIDFromBytes(append([]byte{0x12, 0x20}, slices.Repeat([]byte{i}, 32)...))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// a: 1, 2; b: 3; a: 4, 5, 6; b: 7 (arrival numbers).
	rooms := []dag.RoomID{a, a, b, a, a, a, b}
	for i, r := range rooms {
		if _, err := l.Append(r, uint64(i+1), []Entry{{Room: r, Event: ev(byte(i + 1)), Kind: dag.KindMessage}}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(l *Feed, r dag.RoomID, after uint64, want []uint64) {
		t.Helper()
		seqs, entries, err := l.Room(r, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs, want) {
			t.Fatalf("room %x after %d: seqs %v, want %v", r[0], after, seqs, want)
		}
		for i, e := range entries {
			if e.Room != r || e.Event != ev(byte(seqs[i])) {
				t.Fatalf("room %x: entry %d = %+v", r[0], i, e)
			}
		}
	}
	checkAll := func(l *Feed) {
		t.Helper()
		for after := range uint64(8) {
			for _, r := range []dag.RoomID{a, b} {
				var want []uint64
				for i, rr := range rooms {
					if rr == r && uint64(i+1) > after {
						want = append(want, uint64(i+1))
					}
				}
				check(l, r, after, want)
			}
		}
	}
	roomLen := func(r dag.RoomID) uint64 {
		t.Helper()
		var n uint64
		if err := db.View(func(txn *badger.Txn) (err error) {
			n, err = localdb.GetU64(txn, roomKey(pfxRoomSeq, r))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	checkAll(l)
	if roomLen(a) != 5 || roomLen(b) != 2 {
		t.Fatalf("room sequences: a %d, b %d; want 5 and 2", roomLen(a), roomLen(b))
	}
	if seqs, _, err := l.Room(a, 1, 2); err != nil || !slices.Equal(seqs, []uint64{2, 4}) {
		t.Fatalf("room a after 1, limit 2: %v %v", seqs, err)
	}

	// The earlier layouts: replace the per-room feeds with layout 2's
	// copies (fr/<room>/<arrival number>, marker s/roomfeeds), or drop
	// them (layout 1); reopening renumbers them from the arrival sequence.
	for _, copies := range []bool{true, false} {
		if err := db.Update(func(txn *badger.Txn) error {
			for i, r := range rooms {
				k, n := uint64(0), uint64(i+1)
				for _, rr := range rooms[:i+1] {
					if rr == r {
						k++
					}
				}
				if err := txn.Delete(roomFeedKey(r, k)); err != nil {
					return err
				}
				if copies {
					if err := localdb.SetJSON(txn, append(append(append([]byte(pfxOldRoomFeed), r[:]...), '/'), localdb.U64(n)...), Entry{Room: r, Event: ev(byte(n)), Kind: dag.KindMessage}); err != nil {
						return err
					}
				}
			}
			for _, r := range []dag.RoomID{a, b} {
				if err := txn.Delete(roomKey(pfxRoomSeq, r)); err != nil {
					return err
				}
			}
			if copies {
				if err := txn.Set(oldMarkerKey, []byte{1}); err != nil {
					return err
				}
			}
			return txn.Delete(layoutKey)
		}); err != nil {
			t.Fatal(err)
		}
		check(l, a, 0, nil)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, l = open()
		checkAll(l)
		if roomLen(a) != 5 || roomLen(b) != 2 {
			t.Fatalf("after the upgrade: room sequences a %d, b %d; want 5 and 2", roomLen(a), roomLen(b))
		}
		if err := db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxOldRoomFeed)})
			defer it.Close()
			if it.Rewind(); it.Valid() {
				t.Errorf("layout 2 copy %q left after the upgrade", it.Item().Key())
			}
			if _, err := txn.Get(oldMarkerKey); err == nil {
				t.Error("layout 2 marker left after the upgrade")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// New entries continue both sequences.
	if n, err := l.Append(a, 8, []Entry{{Room: a, Event: ev(8), Kind: dag.KindMessage}}); err != nil || n != 8 || roomLen(a) != 6 {
		t.Fatalf("append after the upgrade: %d %v, room a has %d", n, err, roomLen(a))
	}
	defer db.Close()

	// Removing a room deletes its entries from both feeds.
	if err := l.RemoveRoom(a); err != nil {
		t.Fatal(err)
	}
	check(l, a, 0, nil)
	seqs, _, err := l.All(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs, []uint64{3, 7}) || roomLen(a) != 0 {
		t.Fatalf("arrival sequence after removing a: %v (room a has %d), want [3 7]", seqs, roomLen(a))
	}
}
