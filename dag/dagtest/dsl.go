// Package dagtest holds test kits for package dag: a compact notation for DAG
// fixtures, seeded random DAGs, and RunStoreTests, the suite that every
// [dag.Store] implementation must pass.
package dagtest

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
)

// Key returns a deterministic Ed25519 key derived from n, for tests.
func Key(n byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = n ^ byte(i*7)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// Fixture is a room built from a DAG spec. Every event's content is its
// name (prefixed by the room label), so names map to distinct IDs.
type Fixture struct {
	Room   dag.RoomID
	Events []*dag.Event // in creation order, which is topological
	byName map[string]*dag.Event
	names  map[dag.EventID]string
}

// ParseDAG builds a room from a spec such as
//
//	A -> B, A -> C, B C -> D
//
// Clauses are separated by commas or newlines. In a clause, every name left
// of "->" becomes a parent of every name right of it; chains "A -> B -> C"
// are allowed. A name may appear in several clauses: its parents are the
// union. Exactly one name has no parents; it becomes the room's create event,
// all others are messages. Events are signed with priv; label distinguishes
// rooms built from the same spec.
func ParseDAG(spec, label string, priv ed25519.PrivateKey) (*Fixture, error) {
	parents := map[string][]string{}
	var order []string // names in order of first appearance
	see := func(n string) {
		if _, ok := parents[n]; !ok {
			parents[n] = nil
			order = append(order, n)
		}
	}
	clauses := strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == '\n' || r == ';' })
	for _, clause := range clauses {
		if strings.TrimSpace(clause) == "" {
			continue
		}
		groups := strings.Split(clause, "->")
		var prev []string
		for i, g := range groups {
			names := strings.Fields(g)
			if len(names) == 0 {
				return nil, fmt.Errorf("dagtest: empty group in clause %q", clause)
			}
			for _, n := range names {
				see(n)
				if i > 0 {
					for _, p := range prev {
						if p == n {
							return nil, fmt.Errorf("dagtest: %s is its own parent", n)
						}
						if !slices.Contains(parents[n], p) {
							parents[n] = append(parents[n], p)
						}
					}
				}
			}
			prev = names
		}
	}
	var roots []string
	for _, n := range order {
		if len(parents[n]) == 0 {
			roots = append(roots, n)
		}
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("dagtest: need exactly one root (the create event), have %v", roots)
	}
	f := &Fixture{byName: map[string]*dag.Event{}, names: map[dag.EventID]string{}}
	// Sign in an order where parents come first (Kahn's algorithm, ties by
	// order of appearance).
	done := map[string]bool{}
	for len(done) < len(order) {
		progress := false
		for _, n := range order {
			if done[n] || !allDone(parents[n], done) {
				continue
			}
			var e *dag.Event
			var err error
			if len(parents[n]) == 0 {
				e, err = dag.NewSigned(priv, dag.RoomID{}, dag.KindCreate, nil, 0, []byte(label+"/"+n))
			} else {
				ids := make([]dag.EventID, len(parents[n]))
				for i, p := range parents[n] {
					ids[i] = f.byName[p].ID()
				}
				e, err = dag.NewSigned(priv, f.Room, dag.KindMessage, ids, int64(len(f.Events)), []byte(label+"/"+n))
			}
			if err != nil {
				return nil, fmt.Errorf("dagtest: event %s: %w", n, err)
			}
			if e.Kind == dag.KindCreate {
				f.Room = e.RoomID()
			}
			f.Events = append(f.Events, e)
			f.byName[n] = e
			f.names[e.ID()] = n
			done[n] = true
			progress = true
		}
		if !progress {
			return nil, fmt.Errorf("dagtest: spec %q has a cycle", spec)
		}
	}
	return f, nil
}

func allDone(names []string, done map[string]bool) bool {
	for _, n := range names {
		if !done[n] {
			return false
		}
	}
	return true
}

// Build is ParseDAG for tests: it fails t on error and signs with Key(1).
func Build(t testing.TB, spec string) *Fixture {
	t.Helper()
	f, err := ParseDAG(spec, t.Name(), Key(1))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// E returns the event named name; it panics on an unknown name (a bug in
// the test).
func (f *Fixture) E(name string) *dag.Event {
	e, ok := f.byName[name]
	if !ok {
		panic("dagtest: no event named " + name)
	}
	return e
}

// ID returns the ID of the event named name.
func (f *Fixture) ID(name string) dag.EventID { return f.E(name).ID() }

// IDs returns the IDs of the named events (space-separated), ascending.
func (f *Fixture) IDs(names string) []dag.EventID {
	var ids []dag.EventID
	for _, n := range strings.Fields(names) {
		ids = append(ids, f.ID(n))
	}
	return dag.SortIDs(ids)
}

// Name returns the fixture name of id, or its text form if it is not part
// of the fixture.
func (f *Fixture) Name(id dag.EventID) string {
	if n, ok := f.names[id]; ok {
		return n
	}
	return id.String()
}

// Names returns the names of ids joined by spaces, in the given order.
func (f *Fixture) Names(ids []dag.EventID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = f.Name(id)
	}
	return strings.Join(s, " ")
}

// SortedNames returns the names of ids sorted alphabetically, joined by spaces.
func (f *Fixture) SortedNames(ids []dag.EventID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = f.Name(id)
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}
