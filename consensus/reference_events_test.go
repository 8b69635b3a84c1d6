package consensus

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// refGen builds the event sets of the reference tests: a commit tree with
// competing children, an unreachable branch, membership changes (new
// servers, explicit hub orders with strangers and repeats), hub and
// tentative seals over four terms with justifications that are complete,
// short, of the wrong term, from outsiders, from one server twice or
// naming missing events, suspect reports that force, contradict or leave
// open a slot, acks that certify or fall short, votes by outsiders, seal
// and ack equivocation, and duplicate votes under distinct IDs. Sealers
// and voters are mostly the right ones, so that most rules pass as often
// as they fail.
type refGen struct {
	k      *kit
	rng    *rand.Rand
	pool   []ServerID // the kit's servers, then three only new memberships name
	slots  []EventID  // the root, then the commits in creation order
	parent map[EventID]EventID
	mem    map[EventID]Membership // the membership in force at each slot
	susp   map[uint64][]Event     // suspect votes so far, per term
	have   map[EventID]bool
	voted  map[refGenVote]EventID // the commit each honest seal or ack named
	events []Event
	serial int
}

// referenceEvents returns one generated set; every event passes validate
// and no two events share an ID.
func referenceEvents(k *kit, rng *rand.Rand) []Event {
	g := &refGen{
		k: k, rng: rng, pool: slices.Concat(k.mem.Servers, []ServerID{sid(5), sid(6), sid(7)}),
		slots: []EventID{k.root}, parent: map[EventID]EventID{}, mem: map[EventID]Membership{k.root: k.mem},
		susp: map[uint64][]Event{}, have: map[EventID]bool{}, voted: map[refGenVote]EventID{},
	}
	for i := range 14 {
		g.addCommit(string(rune('a' + i)))
	}
	if rng.IntN(8) == 0 { // a commit claiming the root's ID
		g.add(Event{ID: k.root, From: g.pool[0], Commit: &Commit{Parent: g.slots[1+rng.IntN(len(g.slots)-1)]}})
	}
	for _, c := range g.slots[1:] {
		for range rng.IntN(3) {
			g.addSeal(c)
		}
		if rng.IntN(6) != 0 {
			g.addAcks(c)
		}
	}
	for range 6 { // suspect votes that no seal lists: they move the term
		c := g.pick(g.slots[1:])
		g.suspect(pickFrom(g.rng, g.pool), g.term(), g.parent[c], c, rng.IntN(2) == 0)
	}
	for range 3 { // acks by anyone for anything
		c := g.pick(g.slots[1:])
		g.ack(pickFrom(g.rng, g.pool), g.pick(g.slots), c, g.term(), false)
	}
	return g.events
}

func (g *refGen) add(ev Event) {
	if g.have[ev.ID] {
		return
	}
	if err := ev.validate(); err != nil {
		panic(fmt.Sprintf("generated an invalid event: %v", err))
	}
	g.have[ev.ID] = true
	g.events = append(g.events, ev)
}

func pickFrom[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func (g *refGen) pick(xs []EventID) EventID { return pickFrom(g.rng, xs) }

// term draws a term, low ones more often.
func (g *refGen) term() uint64 { return []uint64{0, 0, 0, 0, 1, 1, 1, 2, 2, 3}[g.rng.IntN(10)] }

// electorate is the generator's own belief about slot's voters; it need not
// be right, only right often.
func (g *refGen) electorate(slot EventID) refElectorate {
	m, ok := g.mem[slot]
	if !ok {
		m = g.k.mem // the unreachable branch's missing root
	}
	return refElectorateOf(g.k.room, m)
}

func (g *refGen) addCommit(name string) {
	rng := g.rng
	parent := g.slots[len(g.slots)-1-rng.IntN(min(4, len(g.slots)))]
	if rng.IntN(20) == 0 {
		parent = g.k.id("ghost") // never created: the branch is unreachable
	}
	id := g.k.id(name)
	c := &Commit{Parent: parent}
	m, ok := g.mem[parent]
	if !ok {
		m = g.k.mem
	}
	if rng.IntN(5) == 0 {
		nm := Membership{Seed: fmt.Appendf(nil, "seed-%d", rng.IntN(3))}
		perm := rng.Perm(len(g.pool))
		for _, i := range perm[:2+rng.IntN(5)] {
			nm.Servers = append(nm.Servers, g.pool[i])
		}
		if rng.IntN(4) == 0 {
			nm.Servers = append(nm.Servers, nm.Servers[0]) // listed twice
		}
		if rng.IntN(2) == 0 { // an explicit order, strangers and repeats included
			for _, i := range rng.Perm(len(g.pool))[:1+rng.IntN(4)] {
				nm.HubCandidates = append(nm.HubCandidates, g.pool[i])
			}
			if rng.IntN(3) == 0 {
				nm.HubCandidates = append(nm.HubCandidates, nm.HubCandidates[0])
			}
		}
		c.Membership, m = &nm, nm
	}
	g.mem[id] = m
	g.parent[id] = parent
	g.slots = append(g.slots, id)
	g.add(Event{ID: id, From: g.pool[0], Commit: c})
}

// siblingOr returns another child of c's slot, or any commit, or c itself.
func (g *refGen) siblingOr(c EventID) EventID {
	var others []EventID
	for _, x := range g.slots[1:] {
		if x != c && g.parent[x] == g.parent[c] {
			others = append(others, x)
		}
	}
	if len(others) == 0 || g.rng.IntN(4) == 0 {
		return g.pick(g.slots[1:])
	}
	return g.pick(others)
}

func (g *refGen) addSeal(c EventID) {
	rng := g.rng
	slot := g.parent[c]
	e := g.electorate(slot)
	n := len(e.Candidates)
	t := g.term()
	tentative := rng.IntN(2) == 0
	rank := 0
	if tentative {
		rank = rng.IntN(n)
	}
	from := e.Candidates[(int(t%uint64(n))+rank)%n]
	switch rng.IntN(14) {
	case 0:
		rank++ // S2: not its rank
	case 1:
		from = pickFrom(rng, g.pool) // S2: maybe no server of the slot
	case 2:
		slot = g.pick(g.slots) // S1: maybe another slot
	case 3:
		tentative, rank, from = false, 1, e.Candidates[(int(t%uint64(n))+1)%n] // S3
	}
	if !g.honest(EvidenceSeal, from, slot, c, t) {
		return
	}
	s := Seal{Slot: slot, Commit: c, Term: t, Tentative: tentative, Rank: uint32(rank), Justification: g.justify(e, t, slot, c)}
	g.add(g.k.sealEv(from, s))
	if rng.IntN(12) == 0 { // E1: the same server seals another commit
		s.Commit = g.siblingOr(c)
		g.add(g.k.sealEv(from, s))
	}
}

// justify returns a justification for a seal of c in slot and term t: the
// suspect(t-1) votes of a quorum or more of e, sometimes spoiled.
func (g *refGen) justify(e refElectorate, t uint64, slot, c EventID) []EventID {
	if t == 0 {
		return nil
	}
	rng := g.rng
	voters := slices.Clone(e.Servers)
	rng.Shuffle(len(voters), func(i, j int) { voters[i], voters[j] = voters[j], voters[i] })
	q := e.Quorum + rng.IntN(len(voters)-e.Quorum+1)
	if rng.IntN(8) == 0 {
		q = e.Quorum - 1 // S4: too few
	}
	// The voters report the slot (forcing c or another commit) or, in a
	// third of the justifications, keep quiet about it (S5 leaves it free).
	reports := rng.IntN(3) != 0
	var ids []EventID
	for _, v := range voters[:q] {
		if old := g.suspectsBy(v, t-1); len(old) > 0 && rng.IntN(3) == 0 {
			ids = append(ids, pickFrom(rng, old).ID)
		} else {
			ids = append(ids, g.suspect(v, t-1, slot, c, reports).ID)
		}
	}
	switch rng.IntN(12) {
	case 0:
		ids = append(ids, g.suspect(pickFrom(rng, g.pool), t-1, slot, c, reports).ID) // maybe an outsider
	case 1:
		ids = append(ids, g.suspect(pickFrom(rng, e.Servers), t, slot, c, reports).ID) // the wrong term
	case 2:
		ids = append(ids, g.suspect(voters[0], t-1, slot, c, reports).ID) // maybe one server twice
	case 3:
		g.serial++
		ids = append(ids, EventID(fmt.Sprintf("missing-%d", g.serial)))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func (g *refGen) suspectsBy(from ServerID, t uint64) []Event {
	var out []Event
	for _, ev := range g.susp[t] {
		if ev.From == from {
			out = append(out, ev)
		}
	}
	return out
}

// suspect makes a suspect(t) vote reporting up to two random slots and,
// if reportSlot, slot (for c, or at times a sibling of c).
func (g *refGen) suspect(from ServerID, t uint64, slot, c EventID, reportSlot bool) Event {
	rng := g.rng
	bySlot := map[EventID]AckReport{}
	report := func(s, c EventID) {
		bySlot[s] = AckReport{Slot: s, Commit: c, Term: uint64(rng.IntN(int(t) + 1))}
	}
	for range rng.IntN(3) {
		if s := g.pick(g.slots); s != slot {
			report(s, g.pick(g.slots[1:]))
		}
	}
	if reportSlot {
		if rng.IntN(3) == 0 {
			c = g.siblingOr(c)
		}
		report(slot, c)
	}
	var reports []AckReport
	for _, r := range bySlot {
		reports = append(reports, r)
	}
	slices.SortFunc(reports, func(a, b AckReport) int { return strings.Compare(string(a.Slot), string(b.Slot)) })
	ev := g.k.suspect(from, t, reports...)
	if !g.have[ev.ID] {
		g.susp[t] = append(g.susp[t], ev)
	}
	g.add(ev)
	return ev
}

// addAcks has part of c's slot's electorate ack it in one term, with an
// outsider, a duplicate under another ID or an equivocation at times.
func (g *refGen) addAcks(c EventID) {
	rng := g.rng
	slot := g.parent[c]
	e := g.electorate(slot)
	t := g.term()
	voters := slices.Clone(e.Servers)
	rng.Shuffle(len(voters), func(i, j int) { voters[i], voters[j] = voters[j], voters[i] })
	if rng.IntN(3) == 0 {
		voters = voters[:1+rng.IntN(len(voters))] // often short of a quorum
	} else {
		voters = voters[:e.Quorum+rng.IntN(len(voters)-e.Quorum+1)]
	}
	if rng.IntN(6) == 0 {
		voters = append(voters, pickFrom(rng, g.pool))
	}
	for _, v := range voters {
		g.ack(v, slot, c, t, false)
	}
	switch rng.IntN(16) {
	case 0:
		g.serial++
		a := Ack{Slot: slot, Commit: c, Term: t}
		g.add(Event{ID: EventID(fmt.Sprintf("dup-ack-%d", g.serial)), From: voters[0], Ack: &a})
	case 1: // E2: one voter acks another commit in the same slot and term
		g.ack(voters[0], slot, g.siblingOr(c), t, true)
	}
}

// ack adds from's ack, unless it would be from's second commit for the slot
// and term and equivocate is false.
func (g *refGen) ack(from ServerID, slot, c EventID, t uint64, equivocate bool) {
	if !equivocate && !g.honest(EvidenceAck, from, slot, c, t) {
		return
	}
	a := Ack{Slot: slot, Commit: c, Term: t}
	b, _ := a.Marshal()
	g.add(Event{ID: voteID("ack", from, b), From: from, Ack: &a})
}

// refGenVote is one server's vote of one kind in one slot and term.
type refGenVote struct {
	kind EvidenceKind
	from ServerID
	slot EventID
	term uint64
}

// honest records that from votes for c in slot and term and reports
// whether that is its only commit there, as an honest server's would be.
func (g *refGen) honest(kind EvidenceKind, from ServerID, slot, c EventID, t uint64) bool {
	k := refGenVote{kind, from, slot, t}
	if old, ok := g.voted[k]; ok && old != c {
		return false
	}
	g.voted[k] = c
	return true
}
