package dag

import (
	"cmp"
	"fmt"
	"slices"
)

// MergeParents returns the parents of a new local event of room: refs
// (the events the event's content names, which must be among its parents:
// room's rule R), then the oldest of its tips by arrival (lowest log Seq)
// up to [MaxParents] in all, ascending. Each local event thus drains the
// room's tips by up to MaxParents-1-len(refs), and every tip is merged in
// turn: a tip has a bounded number of local events to wait, whatever
// arrives meanwhile. A choice by ID (the highest, say) would let tips
// that keep arriving above a low one keep it a tip for good. It costs one
// Meta per tip. More than MaxParents refs is an error.
func MergeParents(s Store, room RoomID, refs ...EventID) ([]EventID, error) {
	refs = slices.Compact(SortIDs(slices.Clone(refs)))
	if len(refs) > MaxParents {
		return nil, fmt.Errorf("dag: merge tips of %v: %d required parents, more than %d", room, len(refs), MaxParents)
	}
	tips, err := s.Tips(room)
	if err != nil {
		return nil, err
	}
	tips = slices.DeleteFunc(tips, func(id EventID) bool { return slices.Contains(refs, id) })
	free := MaxParents - len(refs)
	if len(tips) > free {
		seqs := make(map[EventID]uint64, len(tips))
		for _, id := range tips {
			m, err := s.Meta(id)
			if err != nil {
				return nil, fmt.Errorf("dag: merge tips of %v: %w", room, err)
			}
			seqs[id] = m.Seq
		}
		slices.SortFunc(tips, func(a, b EventID) int { return cmp.Compare(seqs[a], seqs[b]) })
		tips = tips[:free]
	}
	return slices.Compact(SortIDs(append(tips, refs...))), nil
}
