package badgerstore

import (
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// rewriteDB opens the badger database in dir directly and runs f on it.
func rewriteDB(t *testing.T, dir string, f func(txn *badger.Txn) error) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(badgerLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// keysIn lists the keys with prefix in txn.
func keysIn(t *testing.T, txn *badger.Txn, prefix ...byte) [][]byte {
	t.Helper()
	keys, err := prefixKeysTxn(txn, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// unstampArrivals turns the pending events' arrivals into those of layouts
// 1 and 2: empty 'q' values and no 'a' keys.
func unstampArrivals(t *testing.T, txn *badger.Txn) error {
	for _, k := range keysIn(t, txn, tagPendingRoom) {
		if err := txn.Set(k, nil); err != nil {
			return err
		}
	}
	for _, k := range keysIn(t, txn, tagArrival) {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// migrationFixture stores A B C D E (tips C D E) and the pending G (waiting
// for F) in dir, with a clock at t0.
func migrationFixture(t *testing.T, dir string, t0 time.Time) *dagtest.Fixture {
	t.Helper()
	f := dagtest.Build(t, "A -> B -> D, A -> C, A -> E -> F -> G, C -> H")
	s, err := Open(dir, Options{CacheMiB: 16, Limits: dag.Limits{Now: func() time.Time { return t0 }}})
	if err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, f.E("A"), f.E("B"), f.E("C"), f.E("D"), f.E("E"), f.E("G"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// checkMigrated opens dir at t1 and checks the migrated store: every index
// matches the oracle after further Puts, no layout-2 list is left, and the
// pending event got the arrival t1 (it expires a TTL after t1, not t0).
func checkMigrated(t *testing.T, dir string, f *dagtest.Fixture, t1 time.Time) {
	t.Helper()
	s, err := Open(dir, Options{CacheMiB: 16, Limits: dag.Limits{PendingTTL: time.Minute, Now: func() time.Time { return t1 }}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.ExpirePending(t1.Add(59 * time.Second)); err != nil || n != 0 {
		t.Fatalf("ExpirePending before the TTL = %d, %v", n, err)
	}
	dagtest.Put(t, s, f.E("H"))
	if pend, _ := s.Pending(f.Room); f.SortedNames(pend) != "G" {
		t.Fatalf("pending after migration = %q", f.SortedNames(pend))
	}
	dagtest.Put(t, s, f.E("F"))
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(f.Events)); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(func(txn *badger.Txn) error {
		if n := len(keysIn(t, txn, tagTipList)); n > 0 {
			t.Errorf("%d layout-2 tip lists left after migration", n)
		}
		if n := len(keysIn(t, txn, tagArrival)); n > 0 {
			t.Errorf("%d arrival keys left after G was released", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLayoutV1Migrated turns a store into key layout 1 (no version key, one
// 'x' key per tip, pending events without arrival) and checks that Open
// migrates it.
func TestLayoutV1Migrated(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := migrationFixture(t, dir, t0)
	rewriteDB(t, dir, func(txn *badger.Txn) error {
		if err := unstampArrivals(t, txn); err != nil {
			return err
		}
		return txn.Delete([]byte{tagVersion})
	})
	checkMigrated(t, dir, f, t0.Add(time.Hour))
}

// TestLayoutV2Migrated turns a store into key layout 2 (one tip list per
// room, with a stale layout-1 tip key an interrupted migration left) and
// checks that Open migrates it.
func TestLayoutV2Migrated(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := migrationFixture(t, dir, t0)
	rewriteDB(t, dir, func(txn *badger.Txn) error {
		var tips []dag.EventID
		for _, k := range keysIn(t, txn, tagTip) {
			id, err := idAt(k, 1+dag.IDLen)
			if err != nil {
				return err
			}
			tips = append(tips, id)
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		if f.SortedNames(tips) != "C D E" {
			t.Fatalf("tips before rewrite = %q", f.SortedNames(tips))
		}
		if err := txn.Set(key(tagTipList, f.Room[:]), encodeIDs(tips)); err != nil {
			return err
		}
		b := f.ID("B")
		if err := txn.Set(key(tagTip, f.Room[:], b[:]), nil); err != nil {
			return err
		}
		if err := unstampArrivals(t, txn); err != nil {
			return err
		}
		return txn.Set([]byte{tagVersion}, []byte{2})
	})
	checkMigrated(t, dir, f, t0.Add(time.Hour))
}

// TestLayoutUnknownRefused checks that a directory stamped with a layout
// version this build does not know is refused, not misread.
func TestLayoutUnknownRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, dagtest.Build(t, "A").E("A"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rewriteDB(t, dir, func(txn *badger.Txn) error {
		return txn.Set([]byte{tagVersion}, []byte{layoutVersion + 1})
	})
	s, err = Open(dir, Options{CacheMiB: 16, Limits: dag.DefaultLimits})
	if err == nil {
		s.Close()
		t.Fatal("opened a store of an unknown key layout")
	}
	if !errors.Is(err, errLayout) {
		t.Fatalf("error %v, want %v", err, errLayout)
	}
	t.Log(err)
}
