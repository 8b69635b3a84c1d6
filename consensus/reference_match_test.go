package consensus

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var (
	refSeed = flag.Int64("seed", -1, "replay the reference tests on this generated set only")
	refSets = flag.Int("refsets", 300, "how many generated sets TestEvaluateMatchesReference checks")
)

// refSeeds returns the seeds to run: the one -seed names, else 0..n-1.
func refSeeds(n int) []uint64 {
	if *refSeed >= 0 {
		return []uint64{uint64(*refSeed)}
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i)
	}
	return out
}

// observe is the view in the reference's terms.
func observe(v *view) refOutcome {
	o := refOutcome{
		Chain: slices.Clone(v.chain), CertLen: v.certLen, Frontier: v.frontier, Term: v.term,
		Certified: map[EventID]uint64{}, Evidence: slices.Clone(v.evidence),
		Excluded: map[ServerID]uint64{}, AckExcluded: map[ServerID]uint64{},
		Children: map[EventID][]EventID{}, Electorates: map[EventID]refElectorate{}, BestSeal: map[EventID]refSealRank{},
		Sealed: map[refSlotTerm][]EventID{}, HubSeals: map[EventID][]refHubSeal{}, Suspects: map[uint64]map[ServerID]EventID{},
	}
	for c, t := range v.certified {
		o.Certified[c] = t
	}
	for s, t := range v.excluded {
		o.Excluded[s] = t
	}
	for s, t := range v.ackExcluded {
		o.AckExcluded[s] = t
	}
	for p, kids := range v.children {
		if len(kids) > 0 {
			o.Children[p] = slices.Clone(kids)
		}
	}
	for slot, e := range v.elect {
		re := refElectorate{Candidates: slices.Clone(e.candidates), Quorum: e.quorum}
		for s := range e.servers {
			re.Servers = append(re.Servers, s)
		}
		slices.SortFunc(re.Servers, func(a, b ServerID) int { return strings.Compare(string(a[:]), string(b[:])) })
		o.Electorates[slot] = re
	}
	for c, k := range v.best {
		o.BestSeal[c] = refSealRank{k.term, k.tentative, k.rank}
	}
	for st, cs := range v.sealed {
		sorted := slices.Clone(cs)
		slices.Sort(sorted)
		o.Sealed[refSlotTerm{st.slot, st.term}] = sorted
	}
	for slot, ss := range v.hubSeals {
		for _, s := range ss {
			if s.slot != slot {
				panic("hub seal filed under another slot")
			}
			o.HubSeals[slot] = append(o.HubSeals[slot], refHubSeal{s.id, s.from, s.commit, s.term})
		}
	}
	for t, voters := range v.suspects {
		o.Suspects[t] = map[ServerID]EventID{}
		for s, id := range voters {
			o.Suspects[t][s] = id
		}
	}
	if len(o.Chain) == 0 {
		o.Chain = nil
	}
	if len(o.Evidence) == 0 {
		o.Evidence = nil
	}
	return o
}

// refDiff describes the fields in which two outcomes differ, with commit
// names for the kit's IDs.
func refDiff(k *kit, got, want refOutcome) string {
	var b strings.Builder
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "\n%s:\n  got  %s\n  want %s", gv.Type().Field(i).Name, k.describe(g), k.describe(w))
		}
	}
	return b.String()
}

// describe formats x with the kit's commit names in place of their IDs.
func (k *kit) describe(x any) string {
	s := fmt.Sprintf("%v", x)
	for id, name := range k.names {
		s = strings.ReplaceAll(s, string(id), name)
	}
	return s
}

// knownOnly is rule M3 as ForkChoice applies it: votes from servers that
// neither the initial membership nor any commit's names are dropped.
func knownOnly(initial Membership, events []Event) []Event {
	known := map[ServerID]bool{}
	for _, s := range initial.Servers {
		known[s] = true
	}
	for _, ev := range events {
		if ev.Commit != nil && ev.Commit.Membership != nil {
			for _, s := range ev.Commit.Membership.Servers {
				known[s] = true
			}
		}
	}
	var out []Event
	for _, ev := range events {
		if ev.Commit != nil || known[ev.From] {
			out = append(out, ev)
		}
	}
	return out
}

// TestEvaluateMatchesReference checks evaluate, over a set built in
// generation order and in a shuffled order, and ForkChoice against the
// independent referenceEvaluate on generated sets (referenceEvents), then
// checks that the sets exercised every rule. -seed=N replays one set.
func TestEvaluateMatchesReference(t *testing.T) {
	k := newKit(5)
	seeds := refSeeds(*refSets)
	stats := map[string]int{}
	cover := map[string]int{}
	for _, seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 11))
		events := referenceEvents(k, rng)
		want, st := referenceEvaluate(k.room, k.root, k.mem, events)
		fail := func(what, diff string) {
			t.Fatalf("seed %d: %s differs from the reference:%s\nreplay: go test ./consensus -run 'TestEvaluateMatchesReference$' -seed=%d -v", seed, what, diff, seed)
		}
		set, shuffled := newEventSet(), newEventSet()
		for _, ev := range events {
			set.add(ev)
		}
		perm := slices.Clone(events)
		rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
		for _, ev := range perm {
			shuffled.add(ev)
		}
		if got := observe(evaluate(k.room, k.root, &k.mem, set)); !reflect.DeepEqual(got, want) {
			fail("evaluate", refDiff(k, got, want))
		}
		if got := observe(evaluate(k.room, k.root, &k.mem, shuffled)); !reflect.DeepEqual(got, want) {
			fail("evaluate (shuffled)", refDiff(k, got, want))
		}

		known := knownOnly(k.mem, perm)
		fc, _ := referenceEvaluate(k.room, k.root, k.mem, known)
		o, errs := ForkChoice(k.room, k.root, k.mem, perm)
		if len(errs) != len(perm)-len(known) {
			t.Fatalf("seed %d: ForkChoice rejected %d events, M3 drops %d", seed, len(errs), len(perm)-len(known))
		}
		if !slices.Equal(o.Chain, fc.Chain) || o.Certified != fc.CertLen || o.Term != fc.Term || !reflect.DeepEqual(o.Evidence, fc.Evidence) {
			fail("ForkChoice", fmt.Sprintf("\n  got  %s %d %d %v\n  want %s %d %d %v",
				k.names_(o.Chain), o.Certified, o.Term, len(o.Evidence), k.names_(fc.Chain), fc.CertLen, fc.Term, len(fc.Evidence)))
		}

		for why, n := range st {
			stats[why] += n
		}
		for _, e := range want.Evidence {
			cover[fmt.Sprint("evidence kind ", e.Kind)]++
		}
		cover["certified commits"] += len(want.Certified)
		if want.CertLen >= 3 {
			cover["sets with 3 or more certified canonical commits"]++
		}
		if want.Term >= 2 {
			cover["sets in term 2 or later"]++
		}
		for slot, e := range want.Electorates {
			if _, on := want.Certified[slot]; on && !reflect.DeepEqual(e, want.Electorates[k.root]) {
				cover["certified commits with a new electorate"]++
			}
		}
	}
	if len(seeds) == 1 {
		return
	}
	t.Logf("seal verdicts %v; coverage %v", stats, cover)
	for _, why := range []string{
		"S1 commit unknown or of another slot", "S2 slot unreachable", "S2 sealer not a server",
		"S2 sealer equivocated", "S2 wrong rank", "S3 hub seal without rank 0 or certified slot",
		"S4 justification", "S5 undecided", "S5 another commit forced",
		"valid tentative", "valid hub, term 0", "valid hub, free", "valid hub, forced",
	} {
		if stats[why] < 3 {
			t.Errorf("generated sets decide only %d seals by %q", stats[why], why)
		}
	}
	for _, what := range []string{
		"evidence kind 1", "evidence kind 2", "certified commits", "sets with 3 or more certified canonical commits",
		"sets in term 2 or later", "certified commits with a new electorate",
	} {
		if cover[what] < 10 {
			t.Errorf("generated sets hold only %d %s", cover[what], what)
		}
	}
}

// TestIncrementalViewMatchesReference steps generated events one by one
// into a Machine, which skips re-evaluation for acks that cannot change
// the view (Machine.ackInert) and for fresh commits (Machine.commitFresh),
// and checks after every step that its view equals referenceEvaluate over
// the events it accepted so far (votes from servers it does not know yet
// are rejected, rule M3).
func TestIncrementalViewMatchesReference(t *testing.T) {
	k := newKit(5)
	skipped, fresh, rejected := 0, 0, 0
	for _, seed := range refSeeds(40) {
		rng := rand.New(rand.NewPCG(seed, 12))
		events := referenceEvents(k, rng)
		// Acks by every server for every sealed commit in its term or the
		// next, so that many acks complete or follow a certificate.
		for _, ev := range slices.Clone(events) {
			if ev.Seal != nil {
				for _, s := range k.mem.Servers {
					a := Ack{Slot: ev.Seal.Slot, Commit: ev.Seal.Commit, Term: ev.Seal.Term + uint64(rng.IntN(2))}
					b, _ := a.Marshal()
					if id := voteID("ack", s, b); !slices.ContainsFunc(events, func(e Event) bool { return e.ID == id }) {
						events = append(events, Event{ID: id, From: s, Ack: &a})
					}
				}
			}
		}
		rng.Shuffle(len(events), func(a, b int) { events[a], events[b] = events[b], events[a] })
		m, err := New(Config{Room: k.room, Root: k.root, Self: sid(99), Membership: k.mem, Params: DefaultParams()})
		if err != nil {
			t.Fatal(err)
		}
		var accepted []Event
		for i, ev := range events {
			before := m.v
			if _, err := m.Step(ev); errors.Is(err, ErrNotMember) {
				rejected++
				continue
			} else if err != nil {
				t.Fatalf("seed %d: step %d: %v", seed, i, err)
			}
			accepted = append(accepted, ev)
			m.refresh()
			if m.v == before && ev.Ack != nil {
				skipped++
			}
			if m.v == before && ev.Commit != nil {
				fresh++
			}
			if want, _ := referenceEvaluate(k.room, k.root, k.mem, accepted); !reflect.DeepEqual(observe(m.v), want) {
				t.Fatalf("seed %d: after step %d (%s) the view differs from the reference:%s\nreplay: go test ./consensus -run 'TestIncrementalViewMatchesReference$' -seed=%d -v",
					seed, i, k.name(ev.ID), refDiff(k, observe(m.v), want), seed)
			}
		}
	}
	if *refSeed < 0 && (skipped < 500 || fresh < 40 || rejected == 0) {
		t.Fatalf("only %d acks and %d commits took the shortcuts and %d votes were rejected: the test does not exercise them", skipped, fresh, rejected)
	}
	t.Logf("%d acks and %d commits skipped re-evaluation; %d votes from unknown servers rejected", skipped, fresh, rejected)
}
