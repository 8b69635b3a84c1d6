package consensus

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func cat(parts ...[]Event) []Event { return slices.Concat(parts...) }
func one(evs ...Event) []Event     { return evs }

// TestForkChoiceRules checks each numbered rule F1-F5 of docs/consensus.md
// on a slot with two competing commits. Commit names are chosen so that
// the expected winner never also wins on the bare ID tiebreak unless the
// case is about it.
func TestForkChoiceRules(t *testing.T) {
	k := newKit(5)
	// lo sorts before hi by event ID.
	lo, hi := "x", "y"
	if k.id(lo) > k.id(hi) {
		lo, hi = hi, lo
	}
	term1 := one(k.suspect(k.cands[0], 0), k.suspect(k.cands[1], 0), k.suspect(k.cands[2], 0))
	cases := []struct {
		name   string
		events []Event
		want   []string
		cert   int
	}{
		{
			name:   "unsealed commits are not canonical",
			events: one(k.commit(lo, "root"), k.commit(hi, "root")),
			want:   []string{},
		},
		{
			name: "F1 certified beats a higher-term seal",
			events: cat(one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.seal("root", hi, 0, false, 0, nil)), k.acks(3, "root", hi, 0), term1,
				one(k.seal("root", lo, 1, true, 1, ids(term1)))),
			want: []string{hi}, cert: 1,
		},
		{
			name: "F1 two acks short of a quorum do not certify",
			events: cat(one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.seal("root", hi, 0, false, 0, nil)), k.acks(2, "root", hi, 0), term1,
				one(k.seal("root", lo, 1, true, 1, ids(term1)))),
			want: []string{lo},
		},
		{
			name: "F2 higher term beats lower term",
			events: cat(one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.seal("root", lo, 0, false, 0, nil)), term1,
				one(k.seal("root", hi, 1, false, 0, ids(term1)))),
			want: []string{hi},
		},
		{
			name: "F2 a tentative seal of a higher term beats a hub seal",
			events: cat(one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.seal("root", lo, 0, false, 0, nil)), term1,
				one(k.seal("root", hi, 1, true, 2, ids(term1)))),
			want: []string{hi},
		},
		{
			name: "F3 the hub's seal beats a tentative one in the same term",
			events: one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.seal("root", lo, 0, true, 1, nil), k.seal("root", hi, 0, false, 0, nil)),
			want: []string{hi},
		},
		{
			name: "F4 lower candidate rank wins among tentative seals",
			events: one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.seal("root", lo, 0, true, 3, nil), k.seal("root", hi, 0, true, 1, nil)),
			want: []string{hi},
		},
		{
			name: "seal with a forged rank is ignored",
			events: one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.sealEv(k.cands[3], Seal{Slot: k.root, Commit: k.id(lo), Rank: 1, Tentative: true}),
				k.seal("root", hi, 0, true, 2, nil)),
			want: []string{hi},
		},
		{
			name: "hub seal of a non-hub is ignored",
			events: one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.sealEv(k.cands[1], Seal{Slot: k.root, Commit: k.id(lo), Rank: 1}),
				k.seal("root", hi, 0, true, 2, nil)),
			want: []string{hi},
		},
		{
			name: "term 1 seal without a quorum of suspects is ignored",
			events: one(k.commit(lo, "root"), k.commit(hi, "root"),
				k.seal("root", lo, 0, false, 0, nil),
				k.suspect(k.cands[0], 0), k.suspect(k.cands[1], 0),
				k.seal("root", hi, 1, false, 0, ids(one(k.suspect(k.cands[0], 0), k.suspect(k.cands[1], 0))))),
			want: []string{lo},
		},
		{
			name: "hub seal on an uncertified parent is ignored, tentative is not",
			events: one(k.commit("a", "root"), k.commit(lo, "a"), k.commit(hi, "a"),
				k.seal("root", "a", 0, false, 0, nil),
				k.seal("a", lo, 0, false, 0, nil), k.seal("a", hi, 0, true, 1, nil)),
			want: []string{"a", hi},
		},
		{
			name: "chain follows the winner's children",
			events: cat(one(k.commit("a", "root"), k.commit("b", "a"), k.commit("c", "b"),
				k.seal("root", "a", 0, false, 0, nil)), k.acks(3, "root", "a", 0),
				one(k.seal("a", "b", 0, false, 0, nil)), k.acks(3, "a", "b", 0),
				one(k.seal("b", "c", 0, false, 0, nil))),
			want: []string{"a", "b", "c"}, cert: 2,
		},
		{
			name: "a certificate needs a certified parent",
			events: cat(one(k.commit("a", "root"), k.commit("b", "a"),
				k.seal("root", "a", 0, true, 1, nil), k.seal("a", "b", 0, true, 1, nil)),
				k.acks(3, "a", "b", 0)),
			want: []string{"a", "b"}, cert: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := k.order(t, tc.events)
			if got := k.names_(o.Chain); !slices.Equal(got, tc.want) {
				t.Errorf("chain = %v, want %v", got, tc.want)
			}
			if o.Certified != tc.cert {
				t.Errorf("certified = %d, want %d", o.Certified, tc.cert)
			}
		})
	}
}

// TestBetterTiebreak checks F5 directly: with equal seal keys and equal
// certification the lower event ID wins.
func TestBetterTiebreak(t *testing.T) {
	v := &view{certified: map[EventID]uint64{}, best: map[EventID]sealKey{}}
	a, b := EventID("\x01a"), EventID("\x02b")
	v.best[a], v.best[b] = sealKey{term: 3, rank: 1}, sealKey{term: 3, rank: 1}
	if !v.better(a, b) || v.better(b, a) {
		t.Fatal("F5: lower ID must win on equal keys")
	}
	v.certified[b] = 3
	if !v.better(b, a) {
		t.Fatal("F1: certified must beat a lower ID")
	}
}

// TestConstraint checks the Paxos rule a new hub must follow, including the
// equivocation case where the reports cannot decide.
func TestConstraint(t *testing.T) {
	k := newKit(5)
	e := newElectorate(k.room, &k.mem)
	v := &view{}
	s := k.root
	A, B, C := k.id("A"), k.id("B"), k.id("C")
	if A > B {
		A, B = B, A // the "neither" case expects the lower ID
	}
	rep := func(c EventID, t uint64) []AckReport { return []AckReport{{Slot: s, Commit: c, Term: t}} }
	cases := []struct {
		name    string
		reports [][]AckReport
		forced  EventID
		free    bool
		ok      bool
	}{
		{"no acks: free", [][]AckReport{nil, nil, nil}, "", true, true},
		{"one ack forces", [][]AckReport{rep(A, 0), nil, nil}, A, false, true},
		{"highest term wins", [][]AckReport{rep(A, 0), rep(B, 1), nil}, B, false, true},
		{"other slots ignored", [][]AckReport{{{Slot: A, Commit: B, Term: 4}}, rep(C, 2), nil}, C, false, true},
		{"conflict at top, both could be certified", [][]AckReport{rep(A, 2), rep(A, 2), rep(B, 2)}, "", false, false},
		{"conflict at top, only A could be certified", [][]AckReport{rep(A, 2), rep(A, 2), rep(A, 2), rep(B, 2), rep(B, 2)}, A, false, true},
		{"conflict at top, neither could be", [][]AckReport{rep(A, 2), rep(B, 2), rep(C, 1), nil, nil}, A, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, free, ok := v.constraint(e, s, tc.reports)
			if f != tc.forced || free != tc.free || ok != tc.ok {
				t.Errorf("constraint = (%s, free %v, ok %v), want (%s, %v, %v)", k.name(f), free, ok, k.name(tc.forced), tc.free, tc.ok)
			}
		})
	}
}

// TestPaxosReseal: after a term change the new hub's seal must name the
// highest-term acked commit among the suspects that started the term.
func TestPaxosReseal(t *testing.T) {
	k := newKit(5)
	base := cat(one(k.commit("A", "root"), k.commit("B", "root"),
		k.seal("root", "A", 0, false, 0, nil)), k.acks(2, "root", "A", 0))
	sus := one(k.suspect(k.cands[0], 0, k.report("root", "A", 0)), k.suspect(k.cands[3], 0), k.suspect(k.cands[4], 0))
	t.Run("sealing another commit is invalid", func(t *testing.T) {
		o := k.order(t, cat(base, sus, one(k.seal("root", "B", 1, false, 0, ids(sus)))))
		if got := k.names_(o.Chain); !slices.Equal(got, []string{"A"}) {
			t.Errorf("chain = %v, want [A]", got)
		}
	})
	t.Run("re-sealing the acked commit is valid and certifies", func(t *testing.T) {
		o := k.order(t, cat(base, sus, one(k.seal("root", "A", 1, false, 0, ids(sus))), k.acks(3, "root", "A", 1)))
		if got := k.names_(o.Chain); !slices.Equal(got, []string{"A"}) || o.Certified != 1 || o.Term != 1 {
			t.Errorf("chain = %v certified %d term %d, want [A] 1 1", got, o.Certified, o.Term)
		}
	})
	t.Run("a justification missing a suspect event is not yet valid", func(t *testing.T) {
		o := k.order(t, cat(base, sus[:2], one(k.seal("root", "B", 1, false, 0, ids(sus)))))
		if got := k.names_(o.Chain); !slices.Equal(got, []string{"A"}) {
			t.Errorf("chain = %v, want [A]", got)
		}
	})
}

// TestEquivocation: two seals for one slot and term by the hub are
// evidence; both seals stop counting, but acks already cast still certify.
func TestEquivocation(t *testing.T) {
	k := newKit(5)
	hub := k.cands[0]
	evs := cat(one(k.commit("A", "root"), k.commit("B", "root"),
		k.seal("root", "A", 0, false, 0, nil), k.seal("root", "B", 0, false, 0, nil)))
	o := k.order(t, evs)
	if len(o.Evidence) != 1 || o.Evidence[0].Server != hub || o.Evidence[0].Kind != EvidenceSeal || o.Evidence[0].Term != 0 {
		t.Fatalf("evidence = %+v, want one seal equivocation by the hub in term 0", o.Evidence)
	}
	if len(o.Chain) != 0 {
		t.Errorf("chain = %v, want empty: the equivocator's seals are ignored", k.names_(o.Chain))
	}
	o = k.order(t, cat(evs, k.acks(3, "root", "A", 0)))
	if got := k.names_(o.Chain); !slices.Equal(got, []string{"A"}) || o.Certified != 1 {
		t.Errorf("chain = %v certified %d, want [A] certified: acks cast before the evidence stand", got, o.Certified)
	}
	// An acker that acks both A and B in term 0 has its acks voided.
	twice := cat(evs, one(k.ack(k.cands[1], "root", "A", 0), k.ack(k.cands[1], "root", "B", 0), k.ack(k.cands[2], "root", "A", 0), k.ack(k.cands[0], "root", "A", 0)))
	o = k.order(t, twice)
	if o.Certified != 0 || len(o.Evidence) != 2 {
		t.Errorf("certified %d with %d evidence, want 0 certified and 2 pieces of evidence", o.Certified, len(o.Evidence))
	}
}

// TestMembershipChange: a commit that changes the server set governs the
// votes on its children. Growing from 5 to 7 servers raises the quorum to 4.
func TestMembershipChange(t *testing.T) {
	k := newKit(5)
	seven := Membership{Seed: []byte("seed2")}
	for i := range 7 {
		seven.Servers = append(seven.Servers, sid(i))
	}
	grow := Event{ID: k.id("grow"), From: sid(0), Commit: &Commit{Parent: k.root, Membership: &seven}}
	c7 := DefaultCandidates(k.room, seven.Seed, seven.Servers)
	next := k.commit("next", "grow")
	seal := k.sealEv(c7[0], Seal{Slot: k.id("grow"), Commit: k.id("next")})
	base := cat(one(grow, next, k.seal("root", "grow", 0, false, 0, nil)), k.acks(3, "root", "grow", 0), one(seal))
	var three, four []Event
	for i := range 4 {
		a := k.ack(c7[i], "grow", "next", 0)
		if i < 3 {
			three = append(three, a)
		}
		four = append(four, a)
	}
	if o := k.order(t, cat(base, three)); o.Certified != 1 || len(o.Chain) != 2 {
		t.Errorf("with 3 of 7 acks: chain %d certified %d, want 2 and 1", len(o.Chain), o.Certified)
	}
	if o := k.order(t, cat(base, four)); o.Certified != 2 {
		t.Errorf("with 4 of 7 acks: certified %d, want 2", o.Certified)
	}
	// The old hub may not seal the new slot unless it is the new hub.
	if c7[0] != k.cands[0] {
		old := k.sealEv(k.cands[0], Seal{Slot: k.id("grow"), Commit: k.id("next")})
		if o := k.order(t, cat(one(grow, next, k.seal("root", "grow", 0, false, 0, nil)), k.acks(3, "root", "grow", 0), one(old))); len(o.Chain) != 1 {
			t.Errorf("a seal by the old hub order was accepted: chain %v", k.names_(o.Chain))
		}
	}
}

// TestForkChoicePermutations is property 1 on generated event sets: any
// permutation with duplicates gives the same order (20 sets x 50 trials).
func TestForkChoicePermutations(t *testing.T) {
	k := newKit(5)
	longest, evidence := 0, 0
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 2))
		events := randomEvents(k, rng)
		want := k.order(t, events)
		longest = max(longest, len(want.Chain))
		evidence += len(want.Evidence)
		for i := range 50 {
			perm := slices.Clone(events)
			for range rng.IntN(len(events)) {
				perm = append(perm, events[rng.IntN(len(events))])
			}
			rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
			got := k.order(t, perm)
			if !slices.Equal(got.Chain, want.Chain) || got.Certified != want.Certified || got.Term != want.Term || len(got.Evidence) != len(want.Evidence) {
				t.Fatalf("set %d trial %d: order differs: %v vs %v", seed, i, k.names_(got.Chain), k.names_(want.Chain))
			}
		}
	}
	if longest < 2 || evidence == 0 {
		t.Fatalf("generator too weak: longest chain %d, evidence %d", longest, evidence)
	}
}

// randomEvents builds a messy but plausible set: a commit tree with
// competing children, hub and tentative seals over several terms,
// suspects, acks (some certifying) and an equivocation.
func randomEvents(k *kit, rng *rand.Rand) []Event {
	var evs []Event
	slots := []string{"root"}
	var sus []Event
	used := map[string]bool{}
	for i := range 12 {
		parent := slots[len(slots)-1-rng.IntN(min(3, len(slots)))]
		name := string(rune('a' + i))
		evs = append(evs, k.commit(name, parent))
		slots = append(slots, name)
		term := uint64(rng.IntN(3))
		var just []EventID
		if term > 0 {
			js := one(k.suspect(k.cands[0], term-1), k.suspect(k.cands[1], term-1), k.suspect(k.cands[2], term-1))
			sus = append(sus, js...)
			just = ids(js)
		}
		tentative, rank := rng.IntN(2) == 0, 0
		if tentative {
			rank = rng.IntN(5)
		}
		if key := fmt.Sprint(parent, term, rank); !used[key] {
			used[key] = true
			evs = append(evs, k.seal(parent, name, term, tentative, rank, just))
		}
		evs = append(evs, k.acks(rng.IntN(5)+1, parent, name, term)...)
	}
	evs = append(evs, k.seal("a", "b", 0, true, 4, nil), k.seal("a", "c", 0, true, 4, nil))
	return append(evs, sus...)
}
