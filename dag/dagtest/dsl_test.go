package dagtest

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
)

func TestParseDAG(t *testing.T) {
	t.Parallel()
	f := Build(t, "A -> B, A -> C, B C -> D\nD -> E -> F")
	if f.E("A").Kind != dag.KindCreate || f.E("A").RoomID() != f.Room {
		t.Fatal("A is not the room's create event")
	}
	wantParents := map[string]string{"B": "A", "C": "A", "D": "B C", "E": "D", "F": "E"}
	for child, parents := range wantParents {
		e := f.E(child)
		if e.Room != f.Room || e.Kind != dag.KindMessage {
			t.Fatalf("%s: room %v kind %v", child, e.Room, e.Kind)
		}
		if got := f.SortedNames(e.Prev); got != parents {
			t.Fatalf("parents of %s = %q, want %q", child, got, parents)
		}
		if err := e.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.Events) != 6 {
		t.Fatalf("%d events", len(f.Events))
	}
	// Creation order is topological.
	seen := map[dag.EventID]bool{}
	for _, e := range f.Events {
		for _, p := range e.Prev {
			if !seen[p] {
				t.Fatalf("%s comes before its parent %s", f.Name(e.ID()), f.Name(p))
			}
		}
		seen[e.ID()] = true
	}
	other, err := ParseDAG("A -> B, A -> C, B C -> D\nD -> E -> F", "other", Key(1))
	if err != nil || other.Room == f.Room {
		t.Fatalf("another label must give another room: %v", err)
	}
}

func TestParseDAGErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"two-roots":   "A -> B, C -> D",
		"cycle":       "A -> B -> C -> B",
		"self-parent": "A -> A",
		"empty-group": "A -> , B",
		"no-events":   "",
	}
	for name, spec := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseDAG(spec, "x", Key(1)); err == nil || !strings.HasPrefix(err.Error(), "dagtest:") {
				t.Fatalf("ParseDAG(%q) = %v, want a dagtest error", spec, err)
			}
		})
	}
}

func TestRandomDAGShape(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(Seed(t), 9))
	events, err := RandomDAG(rng, 300, 8, []ed25519Key{Key(1), Key(2)})
	if err != nil {
		t.Fatal(err)
	}
	o := NewOracle(events)
	forks, merges := 0, 0
	for _, e := range events {
		if len(o.Children[e.ID()]) > 1 {
			forks++
		}
		if len(e.Prev) > 1 {
			merges++
		}
	}
	if forks < 10 || merges < 10 || len(o.Stored()) != 300 {
		t.Fatalf("random DAG has %d forks, %d merges, %d complete events: not a useful test input", forks, merges, len(o.Stored()))
	}
}

// lyingStore misreports tips, to show that Check notices.
type lyingStore struct{ dag.Store }

func (s lyingStore) Tips(room dag.RoomID) ([]dag.EventID, error) {
	tips, err := s.Store.Tips(room)
	return tips[1:], err
}

// reorderedLog swaps two log entries.
type reorderedLog struct{ dag.Store }

func (s reorderedLog) Log(room dag.RoomID, after uint64, limit int) ([]dag.LogEntry, error) {
	l, err := s.Store.Log(room, after, limit)
	if len(l) > 1 {
		l[0].ID, l[1].ID = l[1].ID, l[0].ID
	}
	return l, err
}

func TestCheckDetectsFaults(t *testing.T) {
	t.Parallel()
	f := Build(t, "A -> B, A -> C, B C -> D, A -> E")
	s := dag.NewMemStore(dag.Limits{})
	Put(t, s, f.Events...)
	o := NewOracle(f.Events)
	if err := Check(s, f.Room, o); err != nil {
		t.Fatalf("honest store: %v", err)
	}
	for name, bad := range map[string]dag.Store{"tips": lyingStore{s}, "log": reorderedLog{s}} {
		if err := Check(bad, f.Room, o); err == nil {
			t.Errorf("Check accepted a store with faulty %s", name)
		}
	}
	// A store that lost an event is caught too.
	if err := Check(s, f.Room, NewOracle(append(slices.Clone(f.Events), Build(t, "A -> X").E("X")))); err == nil {
		t.Error("Check accepted a store lacking an event")
	}
}
