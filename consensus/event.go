package consensus

import (
	"fmt"
	"slices"
)

// Commit is the part of a `commit` event that ordering needs.
type Commit struct {
	// Parent is the commit event whose epoch this commit builds on: its slot.
	// The room's create event is the root slot.
	Parent EventID
	// Membership, when non-nil, is the server set and hub order that this
	// commit installs. It governs the votes on this commit's children, that
	// is, from the next slot on; see docs/consensus.md, rule M.
	Membership *Membership
}

// Event is one input to [Machine.Step]: a DAG event that matters to
// ordering, with its origin server. The caller has verified the origin's
// signature; exactly one of Commit, Seal, Ack and Suspect is set.
type Event struct {
	ID      EventID
	From    ServerID
	Commit  *Commit
	Seal    *Seal
	Ack     *Ack
	Suspect *Suspect
}

func (ev *Event) kinds() int {
	n := 0
	for _, set := range []bool{ev.Commit != nil, ev.Seal != nil, ev.Ack != nil, ev.Suspect != nil} {
		if set {
			n++
		}
	}
	return n
}

// validate checks what can be checked without the rest of the set.
func (ev *Event) validate() error {
	if len(ev.ID) == 0 || len(ev.ID) > MaxIDLen {
		return fmt.Errorf("%w: event ID of %d bytes", ErrMalformed, len(ev.ID))
	}
	if ev.kinds() != 1 {
		return fmt.Errorf("%w: event must carry exactly one of commit, seal, ack, suspect", ErrMalformed)
	}
	ids := []EventID{}
	switch {
	case ev.Commit != nil:
		ids = append(ids, ev.Commit.Parent)
		if m := ev.Commit.Membership; m != nil && len(m.Servers) == 0 {
			return fmt.Errorf("%w: membership without servers", ErrMalformed)
		}
	case ev.Seal != nil:
		ids = append(ids, ev.Seal.Slot, ev.Seal.Commit)
		ids = append(ids, ev.Seal.Justification...)
		if !slices.IsSorted(ev.Seal.Justification) || len(slices.Compact(slices.Clone(ev.Seal.Justification))) != len(ev.Seal.Justification) {
			return fmt.Errorf("%w: justification not strictly ascending", ErrMalformed)
		}
		if ev.Seal.Term == 0 && len(ev.Seal.Justification) > 0 {
			return fmt.Errorf("%w: term 0 seal with a justification", ErrMalformed)
		}
	case ev.Ack != nil:
		ids = append(ids, ev.Ack.Slot, ev.Ack.Commit)
	case ev.Suspect != nil:
		for i, r := range ev.Suspect.Reports {
			ids = append(ids, r.Slot, r.Commit)
			if i > 0 && ev.Suspect.Reports[i-1].Slot >= r.Slot {
				return fmt.Errorf("%w: reports not strictly ascending by slot", ErrMalformed)
			}
			if r.Term > ev.Suspect.Term {
				return fmt.Errorf("%w: report of term %d in suspect(%d)", ErrMalformed, r.Term, ev.Suspect.Term)
			}
		}
	}
	for _, id := range ids {
		if len(id) == 0 || len(id) > MaxIDLen {
			return fmt.Errorf("%w: referenced ID of %d bytes", ErrMalformed, len(id))
		}
	}
	return nil
}

type commitRec struct {
	Commit
	from  ServerID
	seq   uint64      // arrival order; used only for the hub's "first seen" choice
	elect *electorate // Membership resolved, computed once (never mutated)
}

type voteRec[T any] struct {
	from ServerID
	v    T
}

// eventSet holds every accepted ordering event by ID, with the IDs of each
// kind kept sorted and indexes that evaluate reads instead of scanning every
// vote: commits by parent, acks by (slot, commit, term), suspects by term,
// and the vote keys where one server named two commits. Every index is a
// function of the set, never of the order of add calls.
type eventSet struct {
	commits  map[EventID]*commitRec
	seals    map[EventID]voteRec[Seal]
	acks     map[EventID]voteRec[Ack]
	suspects map[EventID]voteRec[Suspect]
	seq      uint64

	// sealIDs lists the seals in ID order, for evaluate. Other kinds keep
	// no sorted list: inserting into one costs O(set) per event.
	sealIDs  []EventID
	byParent map[EventID][]EventID // sorted children

	ackVoters  map[ackKey][]voter       // distinct servers per ack key
	ackTerms   map[[2]EventID][]uint64  // sorted terms acked per (slot, commit)
	suspectsBy map[uint64][]voter       // suspect votes per term
	sealVotes  map[voteKey][]voter      // seals per (server, slot, term)
	ackVotes   map[voteKey][]voter      // acks per (server, slot, term)
	conflicts  map[voteKey]EvidenceKind // keys whose votes name two commits
	sealsFor   map[EventID]int          // seals naming each commit

	// rootElect caches the initial membership's electorate: a set belongs
	// to one machine or ForkChoice call, so to one room and root.
	rootElect *electorate
}

// voter is one vote in an index: its event, origin and the commit it names.
type voter struct {
	id     EventID
	from   ServerID
	commit EventID
}

// voteKey identifies one server's vote of one kind for one slot and term.
type voteKey struct {
	kind EvidenceKind
	from ServerID
	slot EventID
	term uint64
}

func insertSorted(ids []EventID, id EventID) []EventID {
	i, _ := slices.BinarySearch(ids, id)
	return slices.Insert(ids, i, id)
}

func newEventSet() *eventSet {
	return &eventSet{
		commits:  map[EventID]*commitRec{},
		seals:    map[EventID]voteRec[Seal]{},
		acks:     map[EventID]voteRec[Ack]{},
		suspects: map[EventID]voteRec[Suspect]{},
		byParent: map[EventID][]EventID{},

		ackVoters:  map[ackKey][]voter{},
		ackTerms:   map[[2]EventID][]uint64{},
		suspectsBy: map[uint64][]voter{},
		sealVotes:  map[voteKey][]voter{},
		ackVotes:   map[voteKey][]voter{},
		conflicts:  map[voteKey]EvidenceKind{},
		sealsFor:   map[EventID]int{},
	}
}

func (s *eventSet) has(id EventID) bool {
	if _, ok := s.commits[id]; ok {
		return true
	}
	if _, ok := s.seals[id]; ok {
		return true
	}
	if _, ok := s.acks[id]; ok {
		return true
	}
	_, ok := s.suspects[id]
	return ok
}

// add records a validated event; it reports false for a duplicate.
func (s *eventSet) add(ev Event) bool {
	if s.has(ev.ID) {
		return false
	}
	s.seq++
	switch {
	case ev.Commit != nil:
		s.commits[ev.ID] = &commitRec{Commit: *ev.Commit, from: ev.From, seq: s.seq}
		// A view shares the children lists: never write to one in place.
		s.byParent[ev.Commit.Parent] = insertSorted(slices.Clip(s.byParent[ev.Commit.Parent]), ev.ID)
	case ev.Seal != nil:
		s.seals[ev.ID] = voteRec[Seal]{ev.From, *ev.Seal}
		s.sealIDs = insertSorted(s.sealIDs, ev.ID)
		s.noteVote(s.sealVotes, voteKey{EvidenceSeal, ev.From, ev.Seal.Slot, ev.Seal.Term}, voter{ev.ID, ev.From, ev.Seal.Commit})
		s.sealsFor[ev.Seal.Commit]++
	case ev.Ack != nil:
		a := *ev.Ack
		s.acks[ev.ID] = voteRec[Ack]{ev.From, a}
		s.noteVote(s.ackVotes, voteKey{EvidenceAck, ev.From, a.Slot, a.Term}, voter{ev.ID, ev.From, a.Commit})
		k := ackKey{a.Slot, a.Commit, a.Term}
		vs := s.ackVoters[k]
		if !slices.ContainsFunc(vs, func(v voter) bool { return v.from == ev.From }) {
			if len(vs) == 0 {
				pc := [2]EventID{a.Slot, a.Commit}
				ts := s.ackTerms[pc]
				i, _ := slices.BinarySearch(ts, a.Term)
				s.ackTerms[pc] = slices.Insert(ts, i, a.Term)
			}
			s.ackVoters[k] = append(vs, voter{ev.ID, ev.From, a.Commit})
		}
	case ev.Suspect != nil:
		s.suspects[ev.ID] = voteRec[Suspect]{ev.From, *ev.Suspect}
		s.suspectsBy[ev.Suspect.Term] = append(s.suspectsBy[ev.Suspect.Term], voter{id: ev.ID, from: ev.From})
	}
	return true
}

// noteVote indexes a seal or ack by its (server, slot, term) key and marks
// the key as a conflict once two of its votes name different commits.
func (s *eventSet) noteVote(idx map[voteKey][]voter, k voteKey, v voter) {
	vs := append(idx[k], v)
	idx[k] = vs
	if vs[0].commit != v.commit {
		s.conflicts[k] = k.kind
	}
}

func sortedKeys[V any](m map[EventID]V) []EventID {
	keys := make([]EventID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
