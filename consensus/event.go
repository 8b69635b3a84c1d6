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
	from ServerID
	seq  uint64 // arrival order; used only for the hub's "first seen" choice
}

type voteRec[T any] struct {
	from ServerID
	v    T
}

// eventSet holds every accepted ordering event by ID, with the IDs of each
// kind kept sorted and the commits indexed by parent, so that evaluate need
// not sort on every step.
type eventSet struct {
	commits  map[EventID]*commitRec
	seals    map[EventID]voteRec[Seal]
	acks     map[EventID]voteRec[Ack]
	suspects map[EventID]voteRec[Suspect]
	seq      uint64

	commitIDs, sealIDs, ackIDs, suspectIDs []EventID
	byParent                               map[EventID][]EventID // sorted children
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
		s.commitIDs = insertSorted(s.commitIDs, ev.ID)
		s.byParent[ev.Commit.Parent] = insertSorted(s.byParent[ev.Commit.Parent], ev.ID)
	case ev.Seal != nil:
		s.seals[ev.ID] = voteRec[Seal]{ev.From, *ev.Seal}
		s.sealIDs = insertSorted(s.sealIDs, ev.ID)
	case ev.Ack != nil:
		s.acks[ev.ID] = voteRec[Ack]{ev.From, *ev.Ack}
		s.ackIDs = insertSorted(s.ackIDs, ev.ID)
	case ev.Suspect != nil:
		s.suspects[ev.ID] = voteRec[Suspect]{ev.From, *ev.Suspect}
		s.suspectIDs = insertSorted(s.suspectIDs, ev.ID)
	}
	return true
}

func sortedKeys[V any](m map[EventID]V) []EventID {
	keys := make([]EventID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
