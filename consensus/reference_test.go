package consensus

import (
	"bytes"
	"crypto/sha256"
	"slices"
)

// This file is the reference that evaluate and the Machine's incremental
// view are held to (reference_match_test.go). It is written from the rules
// of docs/consensus.md, section 2, not from view.go: it shares no code with
// evaluate beyond the public event types, keeps its own data structures,
// answers each question by scanning the events, and prefers the plainest
// reading of a rule to speed. Rule names (S4, F2, ...) are the document's.

// refOutcome is everything evaluate derives from a set of events, in the
// reference's own terms.
type refOutcome struct {
	Chain       []EventID                       // F0: the canonical chain, root's child first
	CertLen     int                             // leading certified commits of Chain
	Frontier    EventID                         // last certified commit of Chain, or the root
	Term        uint64                          // H3: the current term
	Certified   map[EventID]uint64              // C1, C2: commit -> lowest term of a quorum of acks
	Evidence    []Evidence                      // E1, E2: seal evidence, then ack evidence, each by Second
	Excluded    map[ServerID]uint64             // E3: lowest term of any evidence
	AckExcluded map[ServerID]uint64             // E3: lowest term of ack evidence
	Children    map[EventID][]EventID           // the commit tree reachable from the root, sorted
	Electorates map[EventID]refElectorate       // M1: per reachable slot
	BestSeal    map[EventID]refSealRank         // F2-F4: each commit's best valid seal
	Sealed      map[refSlotTerm][]EventID       // commits with a valid seal, sorted
	HubSeals    map[EventID][]refHubSeal        // valid hub seals per slot, by seal ID
	Suspects    map[uint64]map[ServerID]EventID // per term, each counted server's lowest suspect ID
}

// refElectorate is a Membership read for voting.
type refElectorate struct {
	Servers    []ServerID // distinct, ascending
	Candidates []ServerID // H1
	Quorum     int        // a strict majority of Servers
}

// refSealRank is what fork choice reads of a seal (F2-F4).
type refSealRank struct {
	Term      uint64
	Tentative bool
	Rank      uint32
}

type refSlotTerm struct {
	Slot EventID
	Term uint64
}

type refHubSeal struct {
	ID     EventID
	From   ServerID
	Commit EventID
	Term   uint64
}

// refVote is one seal, ack or suspect event.
type refVote[T any] struct {
	id   EventID
	from ServerID
	v    T
}

// refEvaluator holds the events of one evaluation, split by kind.
type refEvaluator struct {
	room    []byte
	root    EventID
	initial Membership
	commits map[EventID]Commit
	seals   []refVote[Seal] // each kind in ascending ID order
	acks    []refVote[Ack]
	susps   []refVote[Suspect]

	// Each table below is filled once, from the events and the tables
	// before it.
	excluded, ackExcluded map[ServerID]uint64
	elect                 map[EventID]refElectorate // per reachable slot
	cert                  map[EventID]uint64        // certified commits
	// stats counts which rule decided each seal, so that the tests can
	// check that their events exercise every rule.
	stats map[string]int
}

// referenceEvaluate derives the outcome of events (accepted events, any
// order; a repeated ID counts once) for a room with the given root and
// initial membership.
func referenceEvaluate(room []byte, root EventID, initial Membership, events []Event) (refOutcome, map[string]int) {
	r := &refEvaluator{room: room, root: root, initial: initial, commits: map[EventID]Commit{}, stats: map[string]int{}}
	seen := map[EventID]bool{}
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b Event) int { return bytes.Compare([]byte(a.ID), []byte(b.ID)) })
	for _, ev := range sorted {
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		switch {
		case ev.Commit != nil:
			r.commits[ev.ID] = *ev.Commit
		case ev.Seal != nil:
			r.seals = append(r.seals, refVote[Seal]{ev.ID, ev.From, *ev.Seal})
		case ev.Ack != nil:
			r.acks = append(r.acks, refVote[Ack]{ev.ID, ev.From, *ev.Ack})
		case ev.Suspect != nil:
			r.susps = append(r.susps, refVote[Suspect]{ev.ID, ev.From, *ev.Suspect})
		}
	}

	out := refOutcome{
		Certified: map[EventID]uint64{}, Excluded: map[ServerID]uint64{}, AckExcluded: map[ServerID]uint64{},
		Children: map[EventID][]EventID{}, Electorates: map[EventID]refElectorate{}, BestSeal: map[EventID]refSealRank{},
		Sealed: map[refSlotTerm][]EventID{}, HubSeals: map[EventID][]refHubSeal{}, Suspects: map[uint64]map[ServerID]EventID{},
	}
	out.Evidence = r.evidence()
	for _, e := range out.Evidence {
		lower(out.Excluded, e.Server, e.Term)
		if e.Kind == EvidenceAck {
			lower(out.AckExcluded, e.Server, e.Term)
		}
	}
	r.excluded, r.ackExcluded = out.Excluded, out.AckExcluded

	r.elect, r.cert = out.Electorates, out.Certified
	slots := r.reachableSlots()
	for _, slot := range slots {
		out.Electorates[slot] = refElectorateOf(room, r.membership(slot))
		if kids := r.children(slot); len(kids) > 0 {
			out.Children[slot] = kids
		}
	}
	// C1, C2: parents come before children in slots.
	for _, id := range slots[1:] {
		parent := r.commits[id].Parent
		if t, ok := r.quorumTerm(parent, id); ok && r.slotCertified(parent) {
			out.Certified[id] = t
		}
	}
	for _, s := range r.susps {
		if r.isExcluded(s.from, s.v.Term) {
			continue
		}
		if out.Suspects[s.v.Term] == nil {
			out.Suspects[s.v.Term] = map[ServerID]EventID{}
		}
		if _, ok := out.Suspects[s.v.Term][s.from]; !ok {
			out.Suspects[s.v.Term][s.from] = s.id // the lowest, as r.susps ascends
		}
	}

	var sealTerm uint64
	for _, s := range r.seals {
		if !r.sealValid(s.from, s.v) {
			continue
		}
		rank := refSealRank{s.v.Term, s.v.Tentative, s.v.Rank}
		if old, ok := out.BestSeal[s.v.Commit]; !ok || refOutranks(rank, old) {
			out.BestSeal[s.v.Commit] = rank
		}
		st := refSlotTerm{s.v.Slot, s.v.Term}
		if !slices.Contains(out.Sealed[st], s.v.Commit) {
			out.Sealed[st] = append(out.Sealed[st], s.v.Commit)
			slices.Sort(out.Sealed[st])
		}
		if !s.v.Tentative {
			out.HubSeals[s.v.Slot] = append(out.HubSeals[s.v.Slot], refHubSeal{s.id, s.from, s.v.Commit, s.v.Term})
		}
		sealTerm = max(sealTerm, s.v.Term)
	}

	out.Chain = r.chain(out.Certified, out.BestSeal)
	out.Frontier = root
	for _, c := range out.Chain {
		if _, ok := out.Certified[c]; !ok {
			break
		}
		out.CertLen++
		out.Frontier = c
	}

	// H3: the highest term a quorum of the frontier's electorate started by
	// suspecting the one before, or that a valid seal proves started.
	e := r.elect[out.Frontier]
	out.Term = sealTerm
	for t, voters := range out.Suspects {
		n := 0
		for s := range voters {
			if slices.Contains(e.Servers, s) {
				n++
			}
		}
		if n >= e.Quorum && t+1 > out.Term {
			out.Term = t + 1
		}
	}
	return out, r.stats
}

// lower sets m[s] to t if s has no entry or a higher one.
func lower(m map[ServerID]uint64, s ServerID, t uint64) {
	if old, ok := m[s]; !ok || t < old {
		m[s] = t
	}
}

// evidence applies E1 and E2: for every server, slot and term in which one
// server's seals (then acks) name more than one commit, the lowest-ID vote
// and the lowest-ID vote naming another commit than it.
func (r *refEvaluator) evidence() []Evidence {
	type vote struct {
		id, slot, commit EventID
		from             ServerID
		term             uint64
	}
	var seals, acks []vote // ascending by ID
	for _, s := range r.seals {
		seals = append(seals, vote{s.id, s.v.Slot, s.v.Commit, s.from, s.v.Term})
	}
	for _, a := range r.acks {
		acks = append(acks, vote{a.id, a.v.Slot, a.v.Commit, a.from, a.v.Term})
	}
	var out []Evidence
	for _, kind := range []EvidenceKind{EvidenceSeal, EvidenceAck} {
		votes := seals
		if kind == EvidenceAck {
			votes = acks
		}
		var found []Evidence
		for i, first := range votes {
			sameKey := func(x vote) bool { return x.from == first.from && x.slot == first.slot && x.term == first.term }
			if slices.ContainsFunc(votes[:i], sameKey) {
				continue // not the key's lowest-ID vote
			}
			for _, second := range votes[i+1:] {
				if sameKey(second) && second.commit != first.commit {
					found = append(found, Evidence{Server: first.from, Kind: kind, Slot: first.slot, Term: first.term, First: first.id, Second: second.id})
					break
				}
			}
		}
		slices.SortFunc(found, func(a, b Evidence) int { return bytes.Compare([]byte(a.Second), []byte(b.Second)) })
		out = append(out, found...)
	}
	return out
}

// isExcluded: E3, the server's seals and suspect votes in term are ignored.
func (r *refEvaluator) isExcluded(s ServerID, term uint64) bool {
	t, ok := r.excluded[s]
	return ok && t <= term
}

// isAckExcluded: E3 for E2, the server's acks in term are ignored.
func (r *refEvaluator) isAckExcluded(s ServerID, term uint64) bool {
	t, ok := r.ackExcluded[s]
	return ok && t <= term
}

// reachable reports whether id is the root or a commit whose parents lead
// to it.
func (r *refEvaluator) reachable(id EventID) bool {
	for range len(r.commits) + 1 {
		if id == r.root {
			return true
		}
		c, ok := r.commits[id]
		if !ok {
			return false
		}
		id = c.Parent
	}
	return false // a cycle of parents
}

// reachableSlots returns the root and every commit reachable from it, by
// distance from the root, then by ID.
func (r *refEvaluator) reachableSlots() []EventID {
	depth := func(id EventID) int {
		d := 0
		for ; id != r.root; id = r.commits[id].Parent {
			d++
		}
		return d
	}
	var out []EventID
	for id := range r.commits {
		if id != r.root && r.reachable(id) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b EventID) int {
		if da, db := depth(a), depth(b); da != db {
			return da - db
		}
		return bytes.Compare([]byte(a), []byte(b))
	})
	return append([]EventID{r.root}, out...)
}

// children returns the commits whose parent is slot, ascending. The root
// is nobody's child, even if a commit claims its ID.
func (r *refEvaluator) children(slot EventID) []EventID {
	var out []EventID
	for id, c := range r.commits {
		if c.Parent == slot && id != r.root {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// membership is M1: the root has the initial membership; a commit has the
// one it carries, else its parent's.
func (r *refEvaluator) membership(slot EventID) Membership {
	for range len(r.commits) + 1 {
		if slot == r.root {
			break
		}
		c := r.commits[slot]
		if c.Membership != nil {
			return *c.Membership
		}
		slot = c.Parent
	}
	return r.initial
}

// refElectorateOf reads a membership for voting.
func refElectorateOf(room []byte, m Membership) refElectorate {
	servers := slices.Clone(m.Servers)
	slices.SortFunc(servers, func(a, b ServerID) int { return bytes.Compare(a[:], b[:]) })
	servers = slices.Compact(servers)
	return refElectorate{Servers: servers, Candidates: refCandidates(room, m, servers), Quorum: len(servers)/2 + 1}
}

// refCandidates is H1: the admins' order without entries that are not
// servers (nor repeats), or when that leaves none, the servers by
// SHA-256(opaque "hub", opaque room, opaque seed, opaque server), then by
// ID.
func refCandidates(room []byte, m Membership, servers []ServerID) []ServerID {
	var explicit []ServerID
	for _, s := range m.HubCandidates {
		if slices.Contains(servers, s) && !slices.Contains(explicit, s) {
			explicit = append(explicit, s)
		}
	}
	if len(explicit) > 0 {
		return explicit
	}
	key := func(s ServerID) []byte {
		var in []byte
		for _, part := range [][]byte{[]byte("hub"), room, m.Seed, s[:]} {
			in = append(append(in, refVarint(len(part))...), part...)
		}
		h := sha256.Sum256(in)
		return h[:]
	}
	out := slices.Clone(servers)
	slices.SortFunc(out, func(a, b ServerID) int {
		if c := bytes.Compare(key(a), key(b)); c != 0 {
			return c
		}
		return bytes.Compare(a[:], b[:])
	})
	return out
}

// refVarint is the RFC 9420 variable-length integer of a TLS-PL vector's
// length: 1, 2 or 4 bytes with the length of the encoding in the top two
// bits.
func refVarint(n int) []byte {
	switch {
	case n < 1<<6:
		return []byte{byte(n)}
	case n < 1<<14:
		return []byte{0x40 | byte(n>>8), byte(n)}
	}
	return []byte{0x80 | byte(n>>24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// rank is H2: s's distance after the hub of term t in candidate order.
func (e refElectorate) rank(s ServerID, t uint64) (uint32, bool) {
	i := slices.Index(e.Candidates, s)
	if i < 0 {
		return 0, false
	}
	n := uint64(len(e.Candidates))
	hub := t % n
	return uint32((uint64(i) + n - hub) % n), true
}

// quorumTerm is C1: the lowest term in which a quorum of slot's electorate
// acked commit, counting each server once and no server whose acks E3
// voids in that term.
func (r *refEvaluator) quorumTerm(slot, commit EventID) (uint64, bool) {
	e := r.elect[slot]
	var terms []uint64
	for _, a := range r.acks {
		if a.v.Slot == slot && a.v.Commit == commit {
			terms = append(terms, a.v.Term)
		}
	}
	slices.Sort(terms)
	terms = slices.Compact(terms)
	for _, t := range terms {
		var voters []ServerID
		for _, a := range r.acks {
			if a.v.Slot == slot && a.v.Commit == commit && a.v.Term == t &&
				slices.Contains(e.Servers, a.from) && !r.isAckExcluded(a.from, t) && !slices.Contains(voters, a.from) {
				voters = append(voters, a.from)
			}
		}
		if len(voters) >= e.Quorum {
			return t, true
		}
	}
	return 0, false
}

// slotCertified: the root counts as certified (S3, C2); a commit is if a
// quorum acked it and its parent is certified (r.cert).
func (r *refEvaluator) slotCertified(slot EventID) bool {
	if slot == r.root {
		return true
	}
	_, ok := r.cert[slot]
	return ok
}

// sealValid applies S1-S5 to one seal.
func (r *refEvaluator) sealValid(from ServerID, s Seal) bool {
	verdict := func(ok bool, why string) bool {
		r.stats[why]++
		return ok
	}
	// S1: the sealed commit is known and its parent is the slot.
	if c, ok := r.commits[s.Commit]; !ok || c.Parent != s.Slot {
		return verdict(false, "S1 commit unknown or of another slot")
	}
	// S2: the slot is reachable, the sealer is in M(slot), not excluded in
	// the seal's term, and the rank is its rank in the term.
	e, ok := r.elect[s.Slot]
	if !ok {
		return verdict(false, "S2 slot unreachable")
	}
	if !slices.Contains(e.Servers, from) {
		return verdict(false, "S2 sealer not a server")
	}
	if r.isExcluded(from, s.Term) {
		return verdict(false, "S2 sealer equivocated")
	}
	if rank, ok := e.rank(from, s.Term); !ok || rank != s.Rank {
		return verdict(false, "S2 wrong rank")
	}
	// S3: a hub seal needs rank 0 and a certified slot.
	if !s.Tentative && (s.Rank != 0 || !r.slotCertified(s.Slot)) {
		return verdict(false, "S3 hub seal without rank 0 or certified slot")
	}
	// S4: the justification.
	reports, voters, ok := r.justification(e, s.Term, s.Justification)
	if !ok {
		return verdict(false, "S4 justification")
	}
	if s.Tentative {
		return verdict(true, "valid tentative")
	}
	// S5: the commit the justification forces, if any.
	forced, free, decided := refForced(e, s.Slot, reports, voters)
	switch {
	case !decided:
		return verdict(false, "S5 undecided")
	case free && s.Term == 0:
		return verdict(true, "valid hub, term 0")
	case free:
		return verdict(true, "valid hub, free")
	case forced == s.Commit:
		return verdict(true, "valid hub, forced")
	}
	return verdict(false, "S5 another commit forced")
}

// justification is S4: in term 0 none; in a later term only suspect(t-1)
// events of the set, from distinct servers of e, of which those from
// servers not excluded in t-1 are a quorum. It returns those voters'
// reports (each reports a slot at most once) and how many they are.
func (r *refEvaluator) justification(e refElectorate, term uint64, ids []EventID) ([]AckReport, int, bool) {
	if term == 0 {
		return nil, 0, len(ids) == 0
	}
	var from []ServerID
	var reports []AckReport
	counted := 0
	for _, id := range ids {
		i := slices.IndexFunc(r.susps, func(s refVote[Suspect]) bool { return s.id == id })
		if i < 0 {
			return nil, 0, false // not a suspect vote of the set
		}
		s := r.susps[i]
		if s.v.Term != term-1 || !slices.Contains(e.Servers, s.from) || slices.Contains(from, s.from) {
			return nil, 0, false
		}
		from = append(from, s.from)
		if !r.isExcluded(s.from, s.v.Term) {
			counted++
			reports = append(reports, s.v.Reports...)
		}
	}
	return reports, counted, counted >= e.Quorum
}

// refForced is S5 for slot, given the reports of the voters counted in a
// justification: free if none reports the slot; else of the highest term
// reported for it, the only commit, or the only one that could have been
// certified there (the servers that did not report it leave a quorum), or
// the lowest ID if none could; undecided if several could.
func refForced(e refElectorate, slot EventID, reports []AckReport, voters int) (forced EventID, free, decided bool) {
	var top uint64
	found := false
	for _, rep := range reports {
		if rep.Slot == slot && (!found || rep.Term > top) {
			top, found = rep.Term, true
		}
	}
	if !found {
		return "", true, true
	}
	var commits []EventID
	for _, rep := range reports {
		if rep.Slot == slot && rep.Term == top && !slices.Contains(commits, rep.Commit) {
			commits = append(commits, rep.Commit)
		}
	}
	slices.Sort(commits)
	if len(commits) == 1 {
		return commits[0], false, true
	}
	var possible []EventID
	for _, c := range commits {
		reportedC := 0
		for _, rep := range reports {
			if rep.Slot == slot && rep.Term == top && rep.Commit == c {
				reportedC++
			}
		}
		notC := voters - reportedC // counted voters that did not ack c in top
		if len(e.Servers)-notC >= e.Quorum {
			possible = append(possible, c)
		}
	}
	switch len(possible) {
	case 0:
		return commits[0], false, true
	case 1:
		return possible[0], false, true
	}
	return "", false, false
}

// refOutranks is F2-F4 between two seals: the higher term, then a hub seal
// over a tentative one, then the lower rank.
func refOutranks(a, b refSealRank) bool {
	if a.Term != b.Term {
		return a.Term > b.Term
	}
	if a.Tentative != b.Tentative {
		return b.Tentative
	}
	return a.Rank < b.Rank
}

// chain is fork choice (F0-F5): from the root, append the best eligible
// child of the current slot until there is none.
func (r *refEvaluator) chain(certified map[EventID]uint64, best map[EventID]refSealRank) []EventID {
	// better reports whether sibling a beats sibling b.
	better := func(a, b EventID) bool {
		_, ca := certified[a]
		_, cb := certified[b]
		if ca != cb {
			return ca // F1
		}
		sa, oka := best[a]
		sb, okb := best[b]
		if oka != okb {
			return oka // a sealed commit beats an unsealed (certified) one
		}
		if oka && (refOutranks(sa, sb) || refOutranks(sb, sa)) {
			return refOutranks(sa, sb) // F2-F4
		}
		return bytes.Compare([]byte(a), []byte(b)) < 0 // F5
	}
	var out []EventID
	for slot := r.root; ; {
		var eligible []EventID
		for _, c := range r.children(slot) {
			_, cert := certified[c]
			_, sealed := best[c]
			if cert || sealed {
				eligible = append(eligible, c)
			}
		}
		if len(eligible) == 0 {
			return out
		}
		winner := eligible[0]
		for _, c := range eligible[1:] {
			if better(c, winner) {
				winner = c
			}
		}
		out = append(out, winner)
		slot = winner
	}
}
