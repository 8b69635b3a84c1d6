package consensus

import (
	"errors"
	"slices"
	"testing"
)

func TestMachineCertifies(t *testing.T) {
	c := newCluster(t, 5, DefaultParams())
	hub := c.k.cands[0]
	c.propose(c.k.cands[3], "A", "root")
	c.propose(c.k.cands[2], "B", "A")
	for _, s := range c.k.mem.Servers {
		if got := c.chain(s); !slices.Equal(got, []string{"A", "B"}) {
			t.Errorf("server chain = %v, want [A B]", got)
		}
		if c.ms[s].CertifiedLen() != 2 {
			t.Errorf("certified %d, want 2", c.ms[s].CertifiedLen())
		}
		if n := count[Certified](c.acts[s]); n != 2 {
			t.Errorf("%d Certified actions, want 2", n)
		}
	}
	// Each server acks a slot at most once (a server that learns the
	// certificate first need not ack); each slot got a quorum.
	perSlot := map[EventID]int{}
	for _, s := range c.k.mem.Servers {
		mine := map[EventID]bool{}
		for _, a := range find[SendAck](c.acts[s]) {
			if mine[a.Ack.Slot] {
				t.Errorf("server acked slot %s twice", c.k.name(a.Ack.Slot))
			}
			mine[a.Ack.Slot] = true
			perSlot[a.Ack.Slot]++
		}
	}
	if perSlot[c.k.root] < 3 || perSlot[c.k.id("A")] < 3 {
		t.Errorf("acks per slot = %d, %d; want a quorum of 3 each", perSlot[c.k.root], perSlot[c.k.id("A")])
	}
	if n := count[SendSeal](c.acts[hub]); n != 2 {
		t.Errorf("hub sent %d seals, want 2", n)
	}
	for _, s := range c.k.mem.Servers[1:] {
		if s != hub && count[SendSeal](c.acts[s]) != 0 {
			t.Errorf("a non-hub sealed in a connected room")
		}
	}
}

func TestMachineRejects(t *testing.T) {
	c := newCluster(t, 3, DefaultParams())
	m := c.ms[c.k.cands[0]]
	outsider := sid(99)
	cases := []struct {
		name   string
		ev     Event
		reason Reason
		err    error
	}{
		{"vote from outside the room", c.k.ack(outsider, "root", "A", 0), ReasonUnauthorized, ErrNotMember},
		{"no content", Event{ID: "x", From: sid(0)}, ReasonMalformed, ErrMalformed},
		{"two contents", Event{ID: "x", From: sid(0), Commit: &Commit{Parent: "p"}, Ack: &Ack{Slot: "p", Commit: "c"}}, ReasonMalformed, ErrMalformed},
		{"empty ID", Event{From: sid(0), Commit: &Commit{Parent: "p"}}, ReasonMalformed, ErrMalformed},
		{"empty parent", Event{ID: "x", From: sid(0), Commit: &Commit{}}, ReasonMalformed, ErrMalformed},
		{"unsorted reports", Event{ID: "x", From: sid(0), Suspect: &Suspect{Term: 1, Reports: []AckReport{{Slot: "b", Commit: "c"}, {Slot: "a", Commit: "c"}}}}, ReasonMalformed, ErrMalformed},
		{"report above its term", Event{ID: "x", From: sid(0), Suspect: &Suspect{Term: 1, Reports: []AckReport{{Slot: "b", Commit: "c", Term: 2}}}}, ReasonMalformed, ErrMalformed},
		{"term 0 seal with justification", Event{ID: "x", From: sid(0), Seal: &Seal{Slot: "a", Commit: "b", Justification: []EventID{"s"}}}, ReasonMalformed, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acts, err := m.Step(tc.ev)
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Reason != tc.reason || !errors.Is(err, tc.err) || acts != nil {
				t.Errorf("Step = %v, %v; want a %v rejection wrapping %v", acts, err, tc.reason, tc.err)
			}
			if m.Has(tc.ev.ID) && tc.ev.ID != "" {
				t.Errorf("rejected event was recorded")
			}
		})
	}
}

// TestMachineFailover: the hub of term 1 saw B first, but a suspect vote
// that started term 1 reports an ack for A in term 0, so it must re-seal A;
// A is then certified in term 1.
func TestMachineFailover(t *testing.T) {
	p := DefaultParams()
	k := newKit(5)
	h0, h1, c2, c3 := k.cands[0], k.cands[1], k.cands[2], k.cands[3]
	m, err := New(Config{Room: k.room, Root: k.root, Self: h1, Membership: k.mem, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	step := func(ev Event) []Action {
		t.Helper()
		acts, err := m.Step(ev)
		if err != nil {
			t.Fatal(err)
		}
		return acts
	}
	step(k.commit("B", "root"))
	var own Suspect
	for range p.SealTimeout + 1 {
		for _, a := range find[SendSuspect](m.Tick()) {
			own = a.Suspect
		}
	}
	if !m.promised || own.Term != 0 || len(own.Reports) != 0 {
		t.Fatalf("h1 did not suspect term 0 with no reports: %+v", own)
	}
	step(k.suspect(h1, 0))
	step(k.commit("A", "root"))
	if n := count[SendAck](step(k.seal("root", "A", 0, false, 0, nil))); n != 0 {
		t.Errorf("h1 acked in term 0 after suspecting it")
	}
	step(k.ack(c2, "root", "A", 0))
	step(k.suspect(c3, 0))
	acts := step(k.suspect(c2, 0, k.report("root", "A", 0)))
	seals := find[SendSeal](acts)
	if len(seals) != 1 {
		t.Fatalf("h1 sent %d seals on becoming hub of term 1, want 1", len(seals))
	}
	if s := seals[0].Seal; s.Term != 1 || s.Commit != k.id("A") || s.Tentative || len(s.Justification) != 3 {
		t.Errorf("seal = %s term %d tentative %v with %d justifying votes; want A, term 1, 3 votes", k.name(s.Commit), s.Term, s.Tentative, len(s.Justification))
	}
	step(k.sealEv(h1, seals[0].Seal))
	step(k.ack(h1, "root", "A", 1))
	step(k.ack(c2, "root", "A", 1))
	acts = step(k.ack(h0, "root", "A", 1))
	if c := find[Certified](acts); len(c) != 1 || c[0].Commit != k.id("A") || c[0].Term != 1 {
		t.Errorf("Certified actions = %+v, want A in term 1", c)
	}
}

// TestMachinePromise: a server that suspected term t acks nothing in t.
func TestMachinePromise(t *testing.T) {
	p := DefaultParams()
	c := newCluster(t, 3, p)
	hub, x := c.k.cands[0], c.k.cands[1]
	c.isolate([]ServerID{hub}, c.k.mem.Servers)
	c.propose(x, "A", "root")
	c.tick(int(p.SealTimeout) + 1)
	if len(find[SendSuspect](c.acts[x])) != 1 {
		t.Fatalf("x did not suspect term 0 after the timeout")
	}
	// The hub's term-0 seal now arrives: x must not ack it.
	c.heal()
	c.deliver(hub, c.k.commit("A", "root"))
	if find[SendSeal](c.acts[hub]) == nil {
		t.Fatal("hub did not seal")
	}
	for _, a := range find[SendAck](c.acts[x]) {
		if a.Ack.Term == 0 {
			t.Errorf("x acked in term 0 after suspecting it")
		}
	}
}

// TestMachineRestore: a machine rebuilt from its persisted events keeps its
// promise and does not vote again.
func TestMachineRestore(t *testing.T) {
	p := DefaultParams()
	c := newCluster(t, 3, p)
	hub, x := c.k.cands[0], c.k.cands[1]
	c.isolate([]ServerID{hub}, c.k.mem.Servers)
	c.propose(x, "A", "root")
	c.tick(int(p.SealTimeout) + 1)
	m, err := New(Config{Room: c.k.room, Root: c.k.root, Self: x, Membership: c.k.mem, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	acts, errs := m.Restore(c.evs[x])
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if n := count[SendSuspect](acts); n != 0 {
		t.Errorf("restored machine suspected again (%d)", n)
	}
	seal := c.k.seal("root", "A", 0, false, 0, nil)
	acts, err = m.Step(seal)
	if err != nil {
		t.Fatal(err)
	}
	if n := count[SendAck](acts); n != 0 {
		t.Errorf("restored machine broke its promise: %d acks in term 0", n)
	}
}

// TestMachineTentative: a server cut off from the hub and from a majority
// seals tentatively after its staggered timeout; the reorg at heal undoes
// the tentative commit, retains its branch and releases it on deadline.
func TestMachineTentative(t *testing.T) {
	p := DefaultParams()
	c := newCluster(t, 5, p)
	minority := []ServerID{c.k.cands[3], c.k.cands[4]}
	var majority []ServerID
	for _, s := range c.k.mem.Servers {
		if !slices.Contains(minority, s) {
			majority = append(majority, s)
		}
	}
	c.isolate(minority, majority)
	c.propose(minority[0], "T", "root")
	c.propose(majority[0], "M", "root")
	c.tick(int(p.TentativeTimeout + 3*p.TentativeStep + 1))
	seals := find[SendSeal](c.acts[c.k.cands[3]])
	if len(seals) != 1 || !seals[0].Seal.Tentative || seals[0].Seal.Rank != 3 {
		t.Fatalf("rank-3 candidate seals = %+v, want one tentative seal of rank 3", seals)
	}
	if find[SendSeal](c.acts[c.k.cands[4]]) != nil {
		t.Errorf("rank-4 candidate sealed although rank 3 had sealed first")
	}
	if got := c.chain(minority[1]); !slices.Equal(got, []string{"T"}) {
		t.Errorf("minority chain = %v, want [T]", got)
	}
	c.heal()
	c.sync()
	for _, s := range c.k.mem.Servers {
		if got := c.chain(s); !slices.Equal(got, []string{"M"}) {
			t.Errorf("after heal chain = %v, want [M]", got)
		}
	}
	var reorg *Reorg
	for _, a := range find[OrderChanged](c.acts[minority[1]]) {
		if len(a.Reorg.Undone) > 0 {
			reorg = &a.Reorg
		}
	}
	if reorg == nil || !slices.Equal(c.k.names_(reorg.Undone), []string{"T"}) || reorg.ForkPoint != c.k.root || reorg.BeyondHorizon {
		t.Fatalf("reorg = %+v, want T undone at the root", reorg)
	}
	rb := find[RetainBranch](c.acts[minority[1]])
	if len(rb) != 1 {
		t.Fatalf("%d RetainBranch actions, want 1", len(rb))
	}
	before := len(find[ReleaseBranch](c.acts[minority[1]]))
	c.tick(int(rb[0].Deadline - c.ms[minority[1]].Now()))
	if got := len(find[ReleaseBranch](c.acts[minority[1]])); got != before+1 {
		t.Errorf("branch not released at its deadline")
	}
}

// TestMachineEquivocatingHub: servers that see two seals by the hub for
// one slot and term report evidence and suspect the term at once.
func TestMachineEquivocatingHub(t *testing.T) {
	c := newCluster(t, 5, DefaultParams())
	hub, x := c.k.cands[0], c.k.cands[2]
	c.isolate([]ServerID{hub}, c.k.mem.Servers)
	c.propose(x, "A", "root")
	c.propose(x, "B", "root")
	c.deliver(x, c.k.seal("root", "A", 0, false, 0, nil))
	c.deliver(x, c.k.seal("root", "B", 0, false, 0, nil))
	acts := c.acts[x]
	if len(find[EquivocationFound](acts)) != 1 {
		t.Errorf("no evidence reported")
	}
	if len(find[SendSuspect](acts)) != 1 {
		t.Errorf("did not suspect the equivocating hub at once")
	}
	if acks := find[SendAck](acts); len(acks) > 1 {
		t.Errorf("acked %d seals of one slot and term", len(acks))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{Root: "r"}); !errors.Is(err, ErrConfig) {
		t.Errorf("no servers: err = %v", err)
	}
	if _, err := New(Config{Membership: Membership{Servers: []ServerID{sid(1)}}}); !errors.Is(err, ErrConfig) {
		t.Errorf("no root: err = %v", err)
	}
}
