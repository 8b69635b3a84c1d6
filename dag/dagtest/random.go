package dagtest

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/rhizome-chat/rhizome/dag"
)

// RandomDAG returns a room of n events (the create event first) whose shape
// is drawn from rng: each event picks its parents among the current tips and
// some older events, so the DAG has forks (several events on one parent) and
// merges (events with several parents). Events come in creation order, which
// is topological. Each event is signed by one of origins, chosen by rng, and
// carries contentSize bytes of content.
func RandomDAG(rng *rand.Rand, n, contentSize int, origins []ed25519.PrivateKey) ([]*dag.Event, error) {
	if n < 1 || len(origins) == 0 {
		return nil, fmt.Errorf("dagtest: RandomDAG needs n >= 1 and an origin")
	}
	content := func(i int) []byte {
		c := make([]byte, max(contentSize, 8))
		for j := range c {
			c[j] = byte(rng.Uint32())
		}
		c[0], c[1], c[2], c[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		return c
	}
	create, err := dag.NewSigned(origins[0], dag.RoomID{}, dag.KindCreate, nil, 0, content(0))
	if err != nil {
		return nil, err
	}
	room := create.RoomID()
	events := []*dag.Event{create}
	tips := []dag.EventID{create.ID()}
	for i := 1; i < n; i++ {
		var prev []dag.EventID
		// Mostly 1 parent (forks when two events pick the same tip), often a
		// merge of 2-3 tips, sometimes an old event (a late fork).
		switch r := rng.IntN(10); {
		case r < 5:
			prev = []dag.EventID{tips[rng.IntN(len(tips))]}
		case r < 9:
			k := min(len(tips), 1+rng.IntN(3))
			for _, j := range rng.Perm(len(tips))[:k] {
				prev = append(prev, tips[j])
			}
		default:
			prev = []dag.EventID{events[rng.IntN(len(events))].ID()}
		}
		if len(prev) > dag.MaxParents {
			prev = prev[:dag.MaxParents]
		}
		e, err := dag.NewSigned(origins[rng.IntN(len(origins))], room, dag.KindMessage, prev, int64(i), content(i))
		if err != nil {
			return nil, err
		}
		events = append(events, e)
		tips = slices.DeleteFunc(tips, func(id dag.EventID) bool { return slices.Contains(prev, id) })
		tips = append(tips, e.ID())
		// Keep some tips unmerged for a while so forks persist.
		if len(tips) > 8 {
			tips = tips[len(tips)-8:]
		}
	}
	return events, nil
}

// Shuffle returns a copy of events in an order drawn from rng.
func Shuffle(rng *rand.Rand, events []*dag.Event) []*dag.Event {
	out := slices.Clone(events)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
