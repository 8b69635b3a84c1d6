package badgerstore

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// TestRotatedWALsSynced ingests, with parallel producers, enough into 1 MiB
// memtables that badger rotates its memtable WAL many times, with a 256 KiB
// journal so that the syncer checkpoints several times, and checks that the
// checkpoints noticed the rotations (and fsynced the rotated WALs before
// truncating the journal that covered them) and that every event is stored.
func TestRotatedWALsSynced(t *testing.T) {
	seed := dagtest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 5))
	events, err := dagtest.RandomDAG(rng, 900, 3072, []ed25519Key{dagtest.Key(3)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.TempDir(), Options{
		Limits:       dag.Limits{PendingPerRoom: len(events), PendingPerOrigin: len(events)},
		journalBytes: 256 << 10,
		tune: func(o badger.Options) badger.Options {
			// Events (<= 64 KiB) stay in the LSM tree, as with the defaults.
			return o.WithMemTableSize(1 << 20).WithValueThreshold(100 << 10)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dagtest.Put(t, s, events[0])
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for i := 1 + p; i < len(events); i += 8 {
				if _, err := s.Put(events[i]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d puts, %d syncs, %d checkpoints, %d rotated WALs synced", st.Puts, st.Syncs, st.Checkpoints, st.WALSyncs)
	// 900 events of ~3.2 KiB fill a 1 MiB memtable at least twice
	// over, and a 256 KiB journal ten times.
	if st.Checkpoints < 2 {
		t.Errorf("checkpoints = %d, want >= 2", st.Checkpoints)
	}
	// How many rotated WALs a checkpoint still finds depends on when
	// badger's flusher runs: under CPU contention it can flush several
	// memtables (and delete their WALs) between two checkpoints, so one
	// synced WAL is what the test can demand (a CI run on a loaded machine
	// saw 1 of 17 checkpoints find one). None means the WALs are missed.
	if st.WALSyncs < 1 {
		t.Errorf("rotated WALs synced = %d, want >= 1: badger's WAL naming changed?", st.WALSyncs)
	}
	if err := dagtest.Check(s, events[0].RoomID(), dagtest.NewOracle(events)); err != nil {
		t.Fatal(err)
	}
}

// TestSyncRotatedAcrossGaps: badger deletes a memtable's log once the
// memtable is flushed, so log numbers have gaps; the tracker must still
// sync every file from the newest it knew up to the current one, and move
// on to the current one.
func TestSyncRotatedAcrossGaps(t *testing.T) {
	dir := t.TempDir()
	touch := func(names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	touch("00003.mem", "000001.vlog")
	w, err := newWALTracker(dir)
	if err != nil {
		t.Fatal(err)
	}
	// 00004 was flushed and deleted; 00003 and 00005 are immutable
	// memtables, 00007 the current one; the value log rotated once.
	touch("00005.mem", "00007.mem", "000002.vlog")
	n, err := w.syncRotated()
	if err != nil || n != 3 {
		t.Fatalf("synced %d files (%v), want 00003.mem, 00005.mem, 000001.vlog", n, err)
	}
	touch("00009.mem")
	if n, err := w.syncRotated(); err != nil || n != 1 {
		t.Fatalf("synced %d files (%v), want 00007.mem", n, err)
	}
	if n, err := w.syncRotated(); err != nil || n != 0 {
		t.Fatalf("synced %d files (%v) with no rotation", n, err)
	}
}
