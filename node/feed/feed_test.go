package feed

import (
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/internal/localdb"
)

// TestRoomFeed: the feed is kept per room as well as in one sequence. A
// room's feed holds its entries only, with their global numbers, in order;
// removing a room deletes its entries from both; and a database written
// before the per-room copies existed is indexed once at open.
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
	// a: 1, 2; b: 3; a: 4 (global numbers).
	for i, r := range []dag.RoomID{a, a, b, a} {
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
	check(l, a, 0, []uint64{1, 2, 4})
	check(l, a, 2, []uint64{4})
	check(l, b, 0, []uint64{3})

	// A database from before the per-room copies: drop them and the
	// marker; reopening rebuilds them from the global feed.
	if err := db.Update(func(txn *badger.Txn) error {
		for _, r := range []dag.RoomID{a, b} {
			for s := uint64(1); s <= 4; s++ {
				if err := txn.Delete(roomFeedKey(r, s)); err != nil {
					return err
				}
			}
		}
		return txn.Delete(roomFeedsMarker)
	}); err != nil {
		t.Fatal(err)
	}
	check(l, a, 0, nil)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, l = open()
	defer db.Close()
	check(l, a, 0, []uint64{1, 2, 4})
	check(l, b, 0, []uint64{3})

	// Removing a room deletes its entries from both feeds.
	if err := l.RemoveRoom(a); err != nil {
		t.Fatal(err)
	}
	check(l, a, 0, nil)
	seqs, _, err := l.All(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs, []uint64{3}) {
		t.Fatalf("global feed after removing a: %v, want [3]", seqs)
	}
}
