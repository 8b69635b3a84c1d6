package badgerstore

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// vlogBytes returns the total size of the value-log files in dir.
func vlogBytes(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// TestValueLogGC releases a large set of pending events, whose encodings
// then are garbage in the value log, and checks that garbage collection
// reclaims space without losing or damaging a stored event.
func TestValueLogGC(t *testing.T) {
	seed := dagtest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 11))
	events, err := dagtest.RandomDAG(rng, 300, 16<<10, []ed25519Key{dagtest.Key(2)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := Options{Limits: dag.Limits{PendingPerRoom: 1000, PendingPerOrigin: 1000}, GCInterval: -1,
		tune: func(o badger.Options) badger.Options {
			// Small files and tables, so that a few MiB of events span
			// several value-log files and compactions run.
			return o.WithValueLogFileSize(1 << 20).WithMemTableSize(1 << 20).WithNumLevelZeroTables(1).WithBaseTableSize(256 << 10)
		}}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, events[0])
	for _, e := range events[2:] {
		if _, err := s.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	dagtest.Put(t, s, events[1])
	// Reopen twice, with a write between, so that the memtables are flushed
	// into two level-0 tables, which (with NumLevelZeroTables 1) badger then
	// compacts: compaction tells it which value-log entries the deletes of
	// the released pending events discarded.
	other := dagtest.Build(t, "A")
	for _, e := range []*dag.Event{nil, other.E("A")} {
		if e != nil {
			dagtest.Put(t, s, e)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(dir, opts); err != nil {
			t.Fatal(err)
		}
	}
	defer s.Close()
	for deadline := time.Now().Add(10 * time.Second); s.db.Levels()[0].NumTables > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("level 0 not compacted within 10 s")
		}
	}
	before := vlogBytes(t, dir)
	if err := s.collectGarbage(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	after := vlogBytes(t, dir)
	t.Logf("value log: %d -> %d bytes", before, after)
	if after >= before {
		t.Errorf("value-log gc reclaimed nothing: %d -> %d bytes", before, after)
	}
	if err := dagtest.Check(s, events[0].RoomID(), dagtest.NewOracle(events)); err != nil {
		t.Fatal(err)
	}
}
