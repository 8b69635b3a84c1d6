package consensus

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// referenceEvaluate is the straightforward evaluation that evaluate
// replaced with per-kind indexes; TestEvaluateMatchesReference keeps the two
// equal.
func referenceEvaluate(room []byte, root EventID, initial *Membership, set *eventSet) *view {
	v := &view{
		excluded:    map[ServerID]uint64{},
		ackExcluded: map[ServerID]uint64{},
		elect:       map[EventID]*electorate{},
		children:    map[EventID][]EventID{},
		certified:   map[EventID]uint64{},
		best:        map[EventID]sealKey{},
		sealed:      map[slotTerm][]EventID{},
		hubSeals:    map[EventID][]sealRef{},
		suspects:    map[uint64]map[ServerID]EventID{},
	}
	referenceFindEquivocation(v, set)

	// The commit tree reachable from the root, with each slot's electorate.
	byParent := set.byParent
	v.elect[root] = newElectorate(room, initial)
	order := []EventID{root}
	for i := 0; i < len(order); i++ {
		p := order[i]
		for _, c := range byParent[p] {
			if _, seen := v.elect[c]; seen {
				continue
			}
			v.children[p] = append(v.children[p], c)
			if m := set.commits[c].Membership; m != nil {
				v.elect[c] = newElectorate(room, m)
			} else {
				v.elect[c] = v.elect[p]
			}
			order = append(order, c)
		}
	}

	// Certification: a quorum of the slot's electorate acked the commit in
	// one term, and its parent is certified (the root is).
	votes := map[ackKey]map[ServerID]bool{}
	terms := map[[2]EventID][]uint64{}
	for _, id := range set.ackIDs {
		a := set.acks[id]
		if v.isAckExcluded(a.from, a.v.Term) {
			continue
		}
		k := ackKey{a.v.Slot, a.v.Commit, a.v.Term}
		if votes[k] == nil {
			votes[k] = map[ServerID]bool{}
			pc := [2]EventID{a.v.Slot, a.v.Commit}
			terms[pc] = append(terms[pc], a.v.Term)
		}
		votes[k][a.from] = true
	}
	for _, p := range order {
		if !v.isCertified(p, root) {
			continue
		}
		e := v.elect[p]
		for _, c := range v.children[p] {
			ts := terms[[2]EventID{p, c}]
			slices.Sort(ts)
			for _, t := range ts {
				n := 0
				for s := range votes[ackKey{p, c, t}] {
					if e.servers[s] {
						n++
					}
				}
				if n >= e.quorum {
					v.certified[c] = t
					break
				}
			}
		}
	}

	// Suspect votes per term, one per server.
	for _, id := range set.suspectIDs {
		s := set.suspects[id]
		if v.isExcluded(s.from, s.v.Term) {
			continue
		}
		if v.suspects[s.v.Term] == nil {
			v.suspects[s.v.Term] = map[ServerID]EventID{}
		}
		if _, dup := v.suspects[s.v.Term][s.from]; !dup {
			v.suspects[s.v.Term][s.from] = id
		}
	}

	// Seals.
	var maxSealTerm uint64
	for _, id := range set.sealIDs {
		s := set.seals[id]
		if !v.sealValid(set, root, s.from, &s.v) {
			continue
		}
		k := sealKey{s.v.Term, s.v.Tentative, s.v.Rank}
		if old, ok := v.best[s.v.Commit]; !ok || k.beats(old) {
			v.best[s.v.Commit] = k
		}
		st := slotTerm{s.v.Slot, s.v.Term}
		if !slices.Contains(v.sealed[st], s.v.Commit) {
			v.sealed[st] = append(v.sealed[st], s.v.Commit)
		}
		if !s.v.Tentative {
			v.hubSeals[s.v.Slot] = append(v.hubSeals[s.v.Slot], sealRef{id: id, from: s.from, slot: s.v.Slot, commit: s.v.Commit, term: s.v.Term})
		}
		maxSealTerm = max(maxSealTerm, s.v.Term)
	}

	v.chooseChain(root)

	// The current term: the highest one a quorum of the frontier's
	// electorate started, or that a valid seal proves started.
	e := v.elect[v.frontier]
	v.term = maxSealTerm
	for t, voters := range v.suspects {
		if t+1 <= v.term {
			continue
		}
		n := 0
		for s := range voters {
			if e.servers[s] {
				n++
			}
		}
		if n >= e.quorum {
			v.term = t + 1
		}
	}
	return v
}

// findEquivocation records two seals or two acks by one server for one slot
// and term that name different commits.
func referenceFindEquivocation(v *view, set *eventSet) {
	type key struct {
		from ServerID
		slot EventID
		term uint64
	}
	type first struct{ id, commit EventID }
	note := func(kind EvidenceKind, seen map[key]first, from ServerID, id EventID, slot, commit EventID, term uint64) {
		k := key{from, slot, term}
		f, ok := seen[k]
		if !ok {
			seen[k] = first{id, commit}
			return
		}
		if f.commit == commit || f.id == "" {
			return
		}
		v.evidence = append(v.evidence, Evidence{Server: from, Kind: kind, Slot: slot, Term: term, First: f.id, Second: id})
		seen[k] = first{} // one piece of evidence per key is enough
		if t, ok := v.excluded[from]; !ok || term < t {
			v.excluded[from] = term
		}
		if t, ok := v.ackExcluded[from]; kind == EvidenceAck && (!ok || term < t) {
			v.ackExcluded[from] = term
		}
	}
	seals := map[key]first{}
	for _, id := range set.sealIDs {
		s := set.seals[id]
		note(EvidenceSeal, seals, s.from, id, s.v.Slot, s.v.Commit, s.v.Term)
	}
	acks := map[key]first{}
	for _, id := range set.ackIDs {
		a := set.acks[id]
		note(EvidenceAck, acks, a.from, id, a.v.Slot, a.v.Commit, a.v.Term)
	}
}

// TestEvaluateMatchesReference checks the indexed evaluate against the
// plain referenceEvaluate on generated sets with competing commits, several
// terms, seal and ack equivocation, duplicate votes under distinct IDs and
// suspect votes with reports, each set also built in a shuffled order.
func TestEvaluateMatchesReference(t *testing.T) {
	k := newKit(5)
	names := []string{"root"}
	for i := range 12 {
		names = append(names, string(rune('a'+i)))
	}
	evidence, certified := 0, 0
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 11))
		events := randomEvents(k, rng)
		for range 40 {
			from := k.mem.Servers[rng.IntN(len(k.mem.Servers))]
			i := 1 + rng.IntN(len(names)-1)
			commit, term := k.id(names[i]), uint64(rng.IntN(3))
			parent := events[slices.IndexFunc(events, func(e Event) bool { return e.ID == commit })].Commit.Parent
			switch rng.IntN(4) {
			case 0:
				a := Ack{Slot: parent, Commit: commit, Term: term}
				events = append(events, Event{ID: EventID(fmt.Sprintf("dup-ack-%d-%d", seed, len(events))), From: from, Ack: &a})
			case 1:
				events = append(events, k.ack(from, k.name(parent), names[i], term))
			case 2:
				events = append(events, k.suspect(from, term, AckReport{Slot: parent, Commit: commit, Term: term}))
			case 3:
				events = append(events, k.suspect(from, term))
			}
		}
		set, shuffled := newEventSet(), newEventSet()
		for _, ev := range events {
			if ev.validate() == nil {
				set.add(ev)
			}
		}
		rng.Shuffle(len(events), func(a, b int) { events[a], events[b] = events[b], events[a] })
		for _, ev := range events {
			if ev.validate() == nil {
				shuffled.add(ev)
			}
		}
		want := referenceEvaluate(k.room, k.root, &k.mem, set)
		for name, s := range map[string]*eventSet{"in order": set, "shuffled": shuffled} {
			if got := evaluate(k.room, k.root, &k.mem, s); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d (%s): views differ:\nchain %v vs %v\ncertified %v vs %v\nterm %d vs %d\nevidence %v vs %v",
					seed, name, k.names_(got.chain), k.names_(want.chain), got.certified, want.certified, got.term, want.term, got.evidence, want.evidence)
			}
		}
		evidence += len(want.evidence)
		certified += len(want.certified)
	}
	if evidence < 200 || certified < 100 {
		t.Fatalf("generator too weak: %d evidence, %d certificates over 200 sets", evidence, certified)
	}
}

// TestIncrementalViewMatchesReference steps generated events one by one
// into a Machine, which skips re-evaluation for acks that cannot change
// the view (Machine.ackInert) and for fresh commits (Machine.commitFresh),
// and checks after every step that its view
// equals referenceEvaluate over the events stepped so far.
func TestIncrementalViewMatchesReference(t *testing.T) {
	k := newKit(5)
	skipped, fresh := 0, 0
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 12))
		events := randomEvents(k, rng)
		// Add acks by every server for every sealed commit in a few
		// terms, so that many acks complete or follow a certificate.
		for _, ev := range slices.Clone(events) {
			if ev.Seal != nil {
				for _, s := range k.mem.Servers {
					a := Ack{Slot: ev.Seal.Slot, Commit: ev.Seal.Commit, Term: ev.Seal.Term + uint64(rng.IntN(2))}
					b, _ := a.Marshal()
					events = append(events, Event{ID: voteID("ack", s, b), From: s, Ack: &a})
				}
			}
		}
		rng.Shuffle(len(events), func(a, b int) { events[a], events[b] = events[b], events[a] })
		m, err := New(Config{Room: k.room, Root: k.root, Self: sid(99), Membership: k.mem, Params: DefaultParams()})
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range events {
			before := m.v
			if _, err := m.Step(ev); err != nil {
				t.Fatalf("seed %d: step %d: %v", seed, i, err)
			}
			m.refresh()
			if m.v == before && ev.Ack != nil {
				skipped++
			}
			if m.v == before && ev.Commit != nil {
				fresh++
			}
			if want := referenceEvaluate(k.room, k.root, &k.mem, m.set); !reflect.DeepEqual(m.v, want) {
				t.Fatalf("seed %d: after step %d (%s) the view differs from the reference in %v",
					seed, i, k.name(ev.ID), viewDiff(m.v, want))
			}
		}
	}
	if skipped < 500 || fresh < 40 {
		t.Fatalf("only %d acks and %d commits took the shortcuts: the test does not exercise them", skipped, fresh)
	}
	t.Logf("%d acks and %d commits skipped re-evaluation", skipped, fresh)
}

// viewDiff names the fields in which two views differ.
func viewDiff(a, b *view) []string {
	fields := []struct {
		name string
		x, y any
	}{
		{"excluded", a.excluded, b.excluded}, {"ackExcluded", a.ackExcluded, b.ackExcluded},
		{"evidence", a.evidence, b.evidence}, {"elect", a.elect, b.elect},
		{"children", a.children, b.children}, {"certified", a.certified, b.certified},
		{"best", a.best, b.best}, {"hubSeals", a.hubSeals, b.hubSeals}, {"sealed", a.sealed, b.sealed},
		{"suspects", a.suspects, b.suspects}, {"chain", a.chain, b.chain}, {"certLen", a.certLen, b.certLen},
		{"term", a.term, b.term}, {"frontier", a.frontier, b.frontier},
	}
	var out []string
	for _, f := range fields {
		if !reflect.DeepEqual(f.x, f.y) {
			out = append(out, f.name)
		}
	}
	return out
}
