package dag_test

import (
	"fmt"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// localEvent signs and stores an event of room on the parents MergeParents
// picks.
func localEvent(t *testing.T, s dag.Store, room dag.RoomID, ts int64) {
	t.Helper()
	prev, err := dag.MergeParents(s, room)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dag.NewSigned(dagtest.Key(5), room, dag.KindMessage, prev, ts, fmt.Appendf(nil, "local %d", ts))
	if err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, ev)
}

// TestMergeParentsDrainsTips: 1,000 tips, then 60 local events: each
// merges up to 20 tips, so the room ends with one.
func TestMergeParentsDrainsTips(t *testing.T) {
	const n = 1000
	f := dagtest.ManyTips(t, n)
	s := dag.NewMemStore(dag.Limits{})
	dagtest.Put(t, s, f.Events[:n+1]...)
	for i := range 60 {
		localEvent(t, s, f.Room, int64(i))
	}
	if tips, err := s.Tips(f.Room); err != nil || len(tips) != 1 {
		t.Fatalf("%d tips after 60 local events, %v; want 1", len(tips), err)
	}
}

// TestMergeParentsNoTipForever: while 19 new tips arrive before every local
// event (the count stays at about 100), each of the first 100 tips is
// merged within 100/20 local events: oldest first, whatever the IDs.
func TestMergeParentsNoTipForever(t *testing.T) {
	const n = 100
	f := dagtest.ManyTips(t, n)
	s := dag.NewMemStore(dag.Limits{})
	dagtest.Put(t, s, f.Events[:n+1]...)
	first := f.Events[1 : n+1]
	for round := range n / dag.MaxParents {
		for k := range dag.MaxParents - 1 {
			ev, err := dag.NewSigned(dagtest.Key(6), f.Room, dag.KindMessage, []dag.EventID{f.ID("A")}, int64(1000*round+k), []byte("inflow"))
			if err != nil {
				t.Fatal(err)
			}
			dagtest.Put(t, s, ev)
		}
		localEvent(t, s, f.Room, int64(round))
	}
	for _, e := range first {
		if children, err := s.Children(e.ID()); err != nil || len(children) == 0 {
			t.Fatalf("tip %s still unmerged after %d local events (%v)", f.Name(e.ID()), n/dag.MaxParents, err)
		}
	}
	if tips, _ := s.Tips(f.Room); len(tips) > n {
		t.Fatalf("%d tips, more than the %d at the start", len(tips), n)
	}
}

// TestMergeParentsRefs: required parents (rule R's references) are always
// among the parents, whether tips or not, with tips filling the rest up to
// MaxParents; more than MaxParents required parents is an error.
func TestMergeParentsRefs(t *testing.T) {
	const n = 100
	f := dagtest.ManyTips(t, n)
	s := dag.NewMemStore(dag.Limits{})
	dagtest.Put(t, s, f.Events[:n+1]...)
	root := f.Events[0].ID() // not a tip: every tip descends from it
	tip := f.Events[n].ID()  // the newest tip, which oldest-first leaves out
	prev, err := dag.MergeParents(s, f.Room, root, tip, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(prev) != dag.MaxParents {
		t.Errorf("%d parents, want %d", len(prev), dag.MaxParents)
	}
	has := map[dag.EventID]bool{}
	for i, id := range prev {
		has[id] = true
		if i > 0 && prev[i-1].Compare(id) >= 0 {
			t.Fatalf("parents not strictly ascending: %v", prev)
		}
	}
	if !has[root] || !has[tip] {
		t.Errorf("parents %v leave out a required one (%v, %v)", prev, root, tip)
	}
	if _, err := dag.NewSigned(dagtest.Key(5), f.Room, dag.KindMessage, prev, 1, []byte("x")); err != nil {
		t.Errorf("the parents do not make a valid event: %v", err)
	}
	many := make([]dag.EventID, dag.MaxParents+1)
	for i := range many {
		many[i] = f.Events[1+i].ID()
	}
	if _, err := dag.MergeParents(s, f.Room, many...); err == nil {
		t.Error("MergeParents accepted more required parents than MaxParents")
	}
}
