package dagtest

import (
	"crypto/ed25519"
	"maps"
	"slices"

	"github.com/rhizome-chat/rhizome/dag"
)

// Oracle is a naive model of one room's DAG, computed directly from a set of
// events without any store. Tests compare stores against it.
// ed25519Key shortens signatures in the suite.
type ed25519Key = ed25519.PrivateKey

type Oracle struct {
	Events   map[dag.EventID]*dag.Event
	Depth    map[dag.EventID]uint64 // only for complete events
	Children map[dag.EventID][]dag.EventID
}

// NewOracle models the events delivered: an event is complete when it and
// all its ancestors are in the set.
func NewOracle(delivered []*dag.Event) *Oracle {
	o := &Oracle{Events: map[dag.EventID]*dag.Event{}, Depth: map[dag.EventID]uint64{}, Children: map[dag.EventID][]dag.EventID{}}
	for _, e := range delivered {
		o.Events[e.ID()] = e
	}
	// Fixpoint: repeat until no new depth is found. Quadratic, which is fine
	// for a test oracle and keeps it obviously correct.
	for changed := true; changed; {
		changed = false
		for _, id := range o.sortedIDs() {
			if _, ok := o.Depth[id]; ok {
				continue
			}
			e := o.Events[id]
			d, ok := uint64(0), true
			for _, p := range e.Prev {
				pd, known := o.Depth[p]
				if !known {
					ok = false
					break
				}
				d = max(d, pd+1)
			}
			if ok {
				o.Depth[id] = d
				changed = true
			}
		}
	}
	for _, id := range o.sortedIDs() {
		if _, ok := o.Depth[id]; !ok {
			continue
		}
		for _, p := range o.Events[id].Prev {
			o.Children[p] = append(o.Children[p], id)
		}
	}
	for p := range o.Children {
		dag.SortIDs(o.Children[p])
	}
	return o
}

func (o *Oracle) sortedIDs() []dag.EventID {
	return slices.SortedFunc(maps.Keys(o.Events), dag.EventID.Compare)
}

// Stored returns the complete events, ascending by ID.
func (o *Oracle) Stored() []dag.EventID {
	return slices.SortedFunc(maps.Keys(o.Depth), dag.EventID.Compare)
}

// Pending returns the delivered events that are not complete, ascending.
func (o *Oracle) Pending() []dag.EventID {
	var out []dag.EventID
	for _, id := range o.sortedIDs() {
		if _, ok := o.Depth[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// Tips returns the complete events without complete children, ascending.
func (o *Oracle) Tips() []dag.EventID {
	var out []dag.EventID
	for _, id := range o.Stored() {
		if len(o.Children[id]) == 0 {
			out = append(out, id)
		}
	}
	return out
}

// Topo returns the complete events ordered by (depth, ID).
func (o *Oracle) Topo() []dag.Position {
	var out []dag.Position
	for _, id := range o.Stored() {
		out = append(out, dag.Position{Depth: o.Depth[id], ID: id})
	}
	slices.SortFunc(out, dag.Position.Compare)
	return out
}

// Missing returns the parents of pending events that were not delivered,
// ascending: what a store must report as missing for heads covering every
// pending event.
func (o *Oracle) Missing() []dag.EventID {
	set := map[dag.EventID]bool{}
	for _, id := range o.Pending() {
		for _, p := range o.Events[id].Prev {
			if _, ok := o.Events[p]; !ok {
				set[p] = true
			}
		}
	}
	return slices.SortedFunc(maps.Keys(set), dag.EventID.Compare)
}
