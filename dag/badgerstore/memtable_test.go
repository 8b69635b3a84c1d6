package badgerstore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// TestOpenAfterKillDuringMemtableCreation reproduces what a SIGKILL between
// badger creating a memtable file and sizing it leaves behind (an empty
// .mem file) and checks that the store opens with its events intact.
func TestOpenAfterKillDuringMemtableCreation(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := dagtest.Build(t, "A -> B")
	dagtest.Put(t, s, f.E("A"), f.E("B"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "99999.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("open with an empty memtable file: %v", err)
	}
	defer s.Close()
	for _, name := range []string{"A", "B"} {
		if ok, err := s.Has(f.E(name).ID()); err != nil || !ok {
			t.Fatalf("event %s lost: %v %v", name, ok, err)
		}
	}
}
