package badgerstore

import (
	"math/rand/v2"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// TestPendingSurvivesReopen checks that pending events are durable: after a
// close and reopen they are still pending, still counted against the limits,
// and released in topological order when their parent arrives.
func TestPendingSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	f := dagtest.Build(t, "A -> B -> C -> D, C -> E, B -> F")
	lim := dag.Limits{PendingPerRoom: 4, PendingPerOrigin: 100}
	s, err := Open(dir, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, f.E("A"), f.E("C"), f.E("D"), f.E("E"), f.E("F"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pend, err := s.Pending(f.Room)
	if err != nil || f.SortedNames(pend) != "C D E F" {
		t.Fatalf("pending after reopen = %q, %v", f.SortedNames(pend), err)
	}
	// The count survived too: the room is at its limit of 4.
	g := dagtest.Build(t, "A -> B -> X")
	if _, err := s.Put(g.E("X")); err == nil {
		t.Fatal("pending limit not enforced after reopen")
	}
	r := dagtest.Put(t, s, f.E("B"))[0]
	if f.Names(r.Released[:2]) != "C F" && f.Names(r.Released[:2]) != "F C" {
		t.Fatalf("released %q: depth-2 events must come first", f.Names(r.Released))
	}
	if len(r.Released) != 4 {
		t.Fatalf("released %q", f.Names(r.Released))
	}
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(f.Events)); err != nil {
		t.Fatal(err)
	}
}

// TestLargeRelease releases a long pending chain whose writes exceed one
// badger transaction, so the release spans several checkpoints.
func TestLargeRelease(t *testing.T) {
	seed := dagtest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	events, err := dagtest.RandomDAG(rng, 160, 16<<10, []ed25519Key{dagtest.Key(1)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := Open(dir, Options{Limits: dag.Limits{PendingPerRoom: 1000, PendingPerOrigin: 1000}, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dagtest.Put(t, s, events[0])
	// Everything but the second event arrives first: (almost) all pending.
	for _, e := range events[2:] {
		if _, err := s.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	r := dagtest.Put(t, s, events[1])[0]
	o := dagtest.NewOracle(events)
	if len(r.Released) == 0 {
		t.Fatal("nothing released")
	}
	var last dag.Position
	for _, id := range r.Released {
		p := dag.Position{Depth: o.Depth[id], ID: id}
		if p.Compare(last) <= 0 {
			t.Fatalf("release order not topological at %v", id)
		}
		last = p
	}
	if err := dagtest.Check(s, events[0].RoomID(), o); err != nil {
		t.Fatal(err)
	}
}
