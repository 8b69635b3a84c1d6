package badgerstore

import (
	"errors"
	"testing"

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

// TestLayoutV1Migrated turns a store into key layout 1 (no version key, one
// 'x' key per tip) and checks that Open migrates it: tips and every other
// index match the oracle, the old keys are gone, and the store goes on.
func TestLayoutV1Migrated(t *testing.T) {
	dir := t.TempDir()
	f := dagtest.Build(t, "A -> B -> D, A -> C, A -> E -> F, C -> G")
	s, err := Open(dir, Options{CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, f.E("A"), f.E("B"), f.E("C"), f.E("D"), f.E("E"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rewriteDB(t, dir, func(txn *badger.Txn) error {
		item, err := txn.Get(key(tagTips, f.Room[:]))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		ids, err := decodeIDs(v)
		if err != nil {
			return err
		}
		if f.SortedNames(ids) != "C D E" {
			t.Fatalf("tips before rewrite = %q", f.SortedNames(ids))
		}
		for _, id := range ids {
			if err := txn.Set(key(tagOldTip, f.Room[:], id[:]), nil); err != nil {
				return err
			}
		}
		if err := txn.Delete(key(tagTips, f.Room[:])); err != nil {
			return err
		}
		return txn.Delete([]byte{tagVersion})
	})

	s, err = Open(dir, Options{CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dagtest.Put(t, s, f.E("F"), f.E("G"))
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(f.Events)); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(func(txn *badger.Txn) error {
		ids, err := (&btx{txn: txn}).ids([]byte{tagOldTip})
		if err == nil && len(ids) > 0 {
			t.Errorf("%d layout-1 tip keys left after migration", len(ids))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
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
