package dag

import (
	"cmp"
	"fmt"
	"slices"
)

// MergeParents returns the parents of a new local event of room: the
// [MaxParents] oldest of its tips by arrival (lowest log Seq), ascending.
// Each local event thus drains the room's tips by up to MaxParents-1, and
// every tip is merged in turn: a tip has at most (tips before it)/MaxParents
// local events to wait, whatever arrives meanwhile. A choice by ID (the
// highest, say) would let tips that keep arriving above a low one keep it
// a tip for good. It costs one Meta per tip.
func MergeParents(s Store, room RoomID) ([]EventID, error) {
	tips, err := s.Tips(room)
	if err != nil || len(tips) <= MaxParents {
		return tips, err
	}
	seqs := make(map[EventID]uint64, len(tips))
	for _, id := range tips {
		m, err := s.Meta(id)
		if err != nil {
			return nil, fmt.Errorf("dag: merge tips of %v: %w", room, err)
		}
		seqs[id] = m.Seq
	}
	slices.SortFunc(tips, func(a, b EventID) int { return cmp.Compare(seqs[a], seqs[b]) })
	return SortIDs(tips[:MaxParents]), nil
}
