package consensus

import (
	"slices"
)

// EvidenceKind says which vote a server cast twice.
type EvidenceKind uint8

// Evidence kinds.
const (
	// EvidenceSeal: two seals for one slot and term naming different commits.
	EvidenceSeal EvidenceKind = iota + 1
	// EvidenceAck: two acks for one slot and term naming different commits.
	EvidenceAck
)

// Evidence proves that Server equivocated: the events First and Second are
// two votes of one kind for one slot and term that name different commits.
// From the evidence on, every vote of Server in Term or any later term is
// ignored.
type Evidence struct {
	Server        ServerID
	Kind          EvidenceKind
	Slot          EventID
	Term          uint64
	First, Second EventID
}

// sealKey ranks a commit's best valid seal (fork-choice rules F2 to F4).
type sealKey struct {
	term      uint64
	tentative bool
	rank      uint32
}

// beats reports whether a outranks b: the higher term (rule F2), then the
// hub's seal over a tentative one (F3), then the lower rank (F4).
func (a sealKey) beats(b sealKey) bool {
	if a.term != b.term {
		return a.term > b.term
	}
	if a.tentative != b.tentative {
		return !a.tentative
	}
	return a.rank < b.rank
}

type slotTerm struct {
	slot EventID
	term uint64
}

type ackKey struct {
	slot, commit EventID
	term         uint64
}

type sealRef struct {
	id           EventID
	from         ServerID
	slot, commit EventID
	term         uint64
}

// view is everything derived from an event set. It is a pure function of
// the set (and the room, root and initial membership): never of arrival
// order, except commitRec.seq which only the hub's free choice reads.
type view struct {
	excluded    map[ServerID]uint64 // lowest term in which the server equivocated
	ackExcluded map[ServerID]uint64 // lowest term in which the server acked twice
	evidence    []Evidence
	elect       map[EventID]*electorate // electorate per reachable slot
	children    map[EventID][]EventID   // reachable commit tree, sorted
	certified   map[EventID]uint64      // commit -> lowest term with a quorum of acks
	best        map[EventID]sealKey     // commit -> its best valid seal
	hubSeals    map[EventID][]sealRef   // valid non-tentative seals per slot, by ID
	sealed      map[slotTerm][]EventID  // commits with a valid seal per slot and term
	suspects    map[uint64]map[ServerID]EventID
	chain       []EventID
	certLen     int
	term        uint64
	frontier    EventID
}

// isExcluded reports whether s's seals and suspect votes in term are
// ignored: s equivocated in term or earlier.
func (v *view) isExcluded(s ServerID, term uint64) bool {
	t, ok := v.excluded[s]
	return ok && t <= term
}

// ackExcluded reports whether s's acks in term are ignored: s acked two
// commits for one slot in term or earlier. Seal equivocation alone does not
// void a server's acks: counting them cannot certify two commits for a slot
// unless it also acked twice, and voiding them could un-certify a commit.
func (v *view) isAckExcluded(s ServerID, term uint64) bool {
	t, ok := v.ackExcluded[s]
	return ok && t <= term
}

func (v *view) isCertified(id EventID, root EventID) bool {
	if id == root {
		return true
	}
	_, ok := v.certified[id]
	return ok
}

// evaluate derives the view of set. It reads the set's indexes, so it runs
// in time linear in the commits, seals, distinct ack keys and suspects, with
// no per-vote allocation. referenceEvaluate (in a test) is the plain
// version it must equal.
func evaluate(room []byte, root EventID, initial *Membership, set *eventSet) *view {
	v := &view{
		excluded:    map[ServerID]uint64{},
		ackExcluded: map[ServerID]uint64{},
		elect:       make(map[EventID]*electorate, len(set.commits)+1),
		children:    make(map[EventID][]EventID, len(set.byParent)),
		certified:   make(map[EventID]uint64, len(set.commits)),
		best:        make(map[EventID]sealKey, len(set.commits)),
		sealed:      make(map[slotTerm][]EventID, len(set.commits)),
		hubSeals:    map[EventID][]sealRef{},
		suspects:    make(map[uint64]map[ServerID]EventID, len(set.suspectsBy)),
	}
	v.findEquivocation(set)

	// The commit tree reachable from the root, with each slot's electorate.
	byParent := set.byParent
	if set.rootElect == nil {
		set.rootElect = newElectorate(room, initial)
	}
	v.elect[root] = set.rootElect
	order := make([]EventID, 1, len(set.commits)+1)
	order[0] = root
	for i := 0; i < len(order); i++ {
		p := order[i]
		kids := byParent[p]
		for j, c := range kids {
			if _, seen := v.elect[c]; seen {
				// Only the root can be met twice (a commit claiming its ID).
				kids = slices.Delete(slices.Clone(kids), j, j+1)
				break
			}
		}
		if len(kids) > 0 {
			v.children[p] = kids
		}
		for _, c := range kids {
			if r := set.commits[c]; r.Membership != nil {
				if r.elect == nil {
					r.elect = newElectorate(room, r.Membership)
				}
				v.elect[c] = r.elect
			} else {
				v.elect[c] = v.elect[p]
			}
			order = append(order, c)
		}
	}

	// Certification: a quorum of the slot's electorate acked the commit in
	// one term, and its parent is certified (the root is).
	for _, p := range order {
		if !v.isCertified(p, root) {
			continue
		}
		e := v.elect[p]
		for _, c := range v.children[p] {
			for _, t := range set.ackTerms[[2]EventID{p, c}] {
				n := 0
				for _, a := range set.ackVoters[ackKey{p, c, t}] {
					if e.servers[a.from] && !v.isAckExcluded(a.from, t) {
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

	// Suspect votes per term, one per server (its lowest event ID).
	for t, vs := range set.suspectsBy {
		for _, s := range vs {
			if v.isExcluded(s.from, t) {
				continue
			}
			if v.suspects[t] == nil {
				v.suspects[t] = map[ServerID]EventID{}
			}
			if old, dup := v.suspects[t][s.from]; !dup || s.id < old {
				v.suspects[t][s.from] = s.id
			}
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

// findEquivocation records, for every (server, slot, term) where one server
// cast two seals or two acks naming different commits, one piece of
// evidence: the key's lowest-ID vote and the lowest-ID vote naming another
// commit. Seal evidence comes first, each kind ordered by the second vote's
// ID.
func (v *view) findEquivocation(set *eventSet) {
	if len(set.conflicts) == 0 {
		return
	}
	var seals, acks []Evidence
	for k := range set.conflicts {
		idx := set.sealVotes
		if k.kind == EvidenceAck {
			idx = set.ackVotes
		}
		vs := idx[k]
		first := slices.MinFunc(vs, func(a, b voter) int { return cmpID(a.id, b.id) })
		var second EventID
		for _, x := range vs {
			if x.commit != first.commit && (second == "" || x.id < second) {
				second = x.id
			}
		}
		e := Evidence{Server: k.from, Kind: k.kind, Slot: k.slot, Term: k.term, First: first.id, Second: second}
		if k.kind == EvidenceAck {
			acks = append(acks, e)
		} else {
			seals = append(seals, e)
		}
		if t, ok := v.excluded[k.from]; !ok || k.term < t {
			v.excluded[k.from] = k.term
		}
		if t, ok := v.ackExcluded[k.from]; k.kind == EvidenceAck && (!ok || k.term < t) {
			v.ackExcluded[k.from] = k.term
		}
	}
	bySecond := func(a, b Evidence) int { return cmpID(a.Second, b.Second) }
	slices.SortFunc(seals, bySecond)
	slices.SortFunc(acks, bySecond)
	v.evidence = append(seals, acks...)
}

func cmpID(a, b EventID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sealValid applies rules S1-S5 of docs/consensus.md to one seal.
func (v *view) sealValid(set *eventSet, root EventID, from ServerID, s *Seal) bool {
	c, ok := set.commits[s.Commit]
	if !ok || c.Parent != s.Slot {
		return false
	}
	e := v.elect[s.Slot]
	if e == nil || !e.servers[from] || v.isExcluded(from, s.Term) {
		return false
	}
	if r, ok := e.rank(from, s.Term); !ok || r != s.Rank {
		return false
	}
	if !s.Tentative && (s.Rank != 0 || !v.isCertified(s.Slot, root)) {
		return false
	}
	reports, ok := v.justify(set, e, s.Term, s.Justification)
	if !ok {
		return false
	}
	if s.Tentative {
		return true
	}
	forced, free, ok := v.constraint(e, s.Slot, reports)
	return ok && (free || forced == s.Commit)
}

// justify checks that ids are suspect(term-1) votes, all present, from
// distinct servers of e, at least a quorum of them, and returns the
// reports of those not proven equivocators.
func (v *view) justify(set *eventSet, e *electorate, term uint64, ids []EventID) ([][]AckReport, bool) {
	if term == 0 {
		return nil, len(ids) == 0
	}
	if len(ids) > len(e.servers) {
		return nil, false // some server would be listed twice
	}
	seen := make([]ServerID, 0, len(ids))
	reports := make([][]AckReport, 0, len(ids))
	for _, id := range ids {
		s, ok := set.suspects[id]
		if !ok || s.v.Term != term-1 || !e.servers[s.from] || slices.Contains(seen, s.from) {
			return nil, false
		}
		seen = append(seen, s.from)
		if !v.isExcluded(s.from, s.v.Term) {
			reports = append(reports, s.v.Reports)
		}
	}
	return reports, len(reports) >= e.quorum
}

// constraint is the Paxos rule (S5): given the suspect votes that started a
// term, it returns the commit a hub must seal in slot, or free=true when
// none is forced. ok=false means the votes cannot decide (only possible
// after an equivocating hub) and more votes are needed.
func (v *view) constraint(e *electorate, slot EventID, reports [][]AckReport) (forced EventID, free, ok bool) {
	var top uint64
	count := map[EventID]int{}
	for _, rs := range reports {
		i, found := slices.BinarySearchFunc(rs, slot, func(r AckReport, s EventID) int {
			switch {
			case r.Slot < s:
				return -1
			case r.Slot > s:
				return 1
			}
			return 0
		})
		if !found {
			continue
		}
		r := rs[i]
		switch {
		case len(count) == 0 || r.Term > top:
			top = r.Term
			clear(count)
			count[r.Commit] = 1
		case r.Term == top:
			count[r.Commit]++
		}
	}
	if len(count) == 0 {
		return "", true, true
	}
	commits := sortedKeys(count)
	if len(commits) == 1 {
		return commits[0], false, true
	}
	// An equivocating hub got acks for several commits in term top. A commit
	// could have been certified only if the voters who did not report it
	// leave room for a quorum.
	var possible []EventID
	for _, c := range commits {
		if len(e.servers)-(len(reports)-count[c]) >= e.quorum {
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

// chooseChain applies fork choice from the root: at each slot the best
// eligible (sealed or certified) child wins, then its slot is next.
func (v *view) chooseChain(root EventID) {
	cur := root
	v.frontier = root
	for {
		var best EventID
		for _, c := range v.children[cur] {
			if !v.eligible(c) {
				continue
			}
			if best == "" || v.better(c, best) {
				best = c
			}
		}
		if best == "" {
			return
		}
		v.chain = append(v.chain, best)
		if _, ok := v.certified[best]; ok && v.certLen == len(v.chain)-1 {
			v.certLen++
			v.frontier = best
		}
		cur = best
	}
}

func (v *view) eligible(c EventID) bool {
	if _, ok := v.certified[c]; ok {
		return true
	}
	_, ok := v.best[c]
	return ok
}

// better is the fork-choice comparator between two sibling commits, rules
// F1 to F5 of docs/consensus.md.
func (v *view) better(a, b EventID) bool {
	_, ca := v.certified[a]
	_, cb := v.certified[b]
	if ca != cb { // F1: certified beats uncertified
		return ca
	}
	ka, oka := v.best[a]
	kb, okb := v.best[b]
	if oka != okb {
		return oka
	}
	if oka && ka != kb { // F2-F4: higher term, hub over tentative, lower rank
		return ka.beats(kb)
	}
	return a < b // F5: lower event ID
}
