package badgerstore

import (
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// interruptedPurge builds the state a crash in the middle of a purge of
// room f can leave: the journal still holds events of f acknowledged after
// the last checkpoint, badger lost them, and part of f's keys (its create
// event and its tips) are already deleted. With marker set, the purge's
// marker is durable too. g is another room, which must survive whole.
func interruptedPurge(t *testing.T, marker bool) (dir string, f, g *dagtest.Fixture) {
	t.Helper()
	f = dagtest.Build(t, "A -> B -> C -> D, B -> E")
	g, err := dagtest.ParseDAG("A -> B -> C", "other room", dagtest.Key(2))
	if err != nil {
		t.Fatal(err)
	}
	lim := dag.Limits{}
	first := []*dag.Event{f.E("A"), f.E("B"), g.E("A"), g.E("B")}
	second := []*dag.Event{f.E("C"), f.E("D"), f.E("E"), g.E("C")}
	dir = lostBadgerWrites(t, first, second, lim)
	rewriteDB(t, dir, func(txn *badger.Txn) error {
		a := f.ID("A")
		dels := append(keysIn(t, txn, append([]byte{tagTip}, f.Room[:]...)...), key(tagEvent, a[:]))
		for _, k := range dels {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		if !marker {
			return nil
		}
		return txn.Set(key(tagPurge, f.Room[:]), nil)
	})
	return dir, f, g
}

// TestPurgeInterrupted: Open finishes a purge a crash interrupted: nothing
// of the room is left (the journal's events of it are not replayed), the
// other room is whole, the marker is gone, and the room can be stored
// again.
func TestPurgeInterrupted(t *testing.T) {
	dir, f, g := interruptedPurge(t, true)
	s, err := Open(dir, Options{CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(nil)); err != nil {
		t.Fatalf("purged room: %v", err)
	}
	if err := dagtest.Check(s, g.Room, dagtest.NewOracle(g.Events)); err != nil {
		t.Fatalf("other room: %v", err)
	}
	if err := s.db.View(func(txn *badger.Txn) error {
		if n := len(keysIn(t, txn, tagPurge)); n != 0 {
			t.Errorf("%d purge markers left", n)
		}
		for _, id := range f.IDs("A B C D E") {
			if n := len(keysIn(t, txn, append([]byte{tagChild}, id[:]...)...)); n != 0 {
				t.Errorf("%d child edges of %s left", n, f.Name(id))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, f.Events...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(f.Events)); err != nil {
		t.Fatalf("room stored again: %v", err)
	}
}

// TestPurgeInterruptedControl shows what the marker prevents: the same
// half-deleted room without it cannot be recovered (the journal's events
// of the room no longer find their room).
func TestPurgeInterruptedControl(t *testing.T) {
	dir, _, _ := interruptedPurge(t, false)
	s, err := Open(dir, Options{CacheMiB: 16})
	if err == nil {
		s.Close()
		t.Fatal("opened a half-purged room without its marker")
	}
	t.Log(err)
}

// TestPurgeDurable: a purge that returned survives a reopen, with the other
// room's events stored around it.
func TestPurgeDurable(t *testing.T) {
	dir := t.TempDir()
	f := dagtest.Build(t, "A -> B -> C")
	g, err := dagtest.ParseDAG("A -> B -> C", "other room", dagtest.Key(2))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, f.E("A"), f.E("B"), g.E("A"), f.E("C"))
	if err := s.PurgeRoom(f.Room); err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, g.E("B"), g.E("C"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{CacheMiB: 16}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(nil)); err != nil {
		t.Fatalf("purged room after reopen: %v", err)
	}
	if err := dagtest.Check(s, g.Room, dagtest.NewOracle(g.Events)); err != nil {
		t.Fatalf("other room after reopen: %v", err)
	}
}
