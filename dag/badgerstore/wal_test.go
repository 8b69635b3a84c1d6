package badgerstore

import (
	"math/rand/v2"
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
	if st.WALSyncs < 2 {
		t.Errorf("rotated WALs synced = %d, want >= 2: badger's WAL naming changed?", st.WALSyncs)
	}
	if err := dagtest.Check(s, events[0].RoomID(), dagtest.NewOracle(events)); err != nil {
		t.Fatal(err)
	}
}
