package room

import (
	"bytes"
	"slices"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// snapWindow bounds how many per-entry state snapshots a room keeps. A
// reorg or a lookup that reaches further back recomputes the state from the
// create event.
const snapWindow = 512

// memoWindow bounds how many epochs' states a room remembers for
// stateAt (see branchState.memo): the epochs whose public group state is
// kept, the create event's, and some for the host's StateAt.
const memoWindow = 2*observerWindow + 2

// StateEntry is one accepted event that can change room state, in arrival
// order: the create event, a state event, or a commit (whose changes count
// only while the commit is on the branch being evaluated). A state event
// changes nothing by itself: it takes effect with the commit that adopts
// it (Adopted), on that commit's branch.
type StateEntry struct {
	ID      dag.EventID
	Kind    dag.Kind
	Parent  dag.EventID // commit: its slot
	Actor   roomstate.Actor
	Changes []roomevent.Change
	Initial *roomstate.State // create: the initial state
	// Adopted are a commit's adopted state events, ascending by ID: those
	// among its DAG parents that no commit of its parent's branch adopted.
	// They apply, each with its own actor, before the commit's Changes.
	Adopted []StateEntry
}

// branchState folds the state entries of a room. Room state is a pure
// function of a set of commits (a branch): fold the create state, then for
// each commit of the branch, in arrival order, the state events it adopts
// and its own changes. Because a commit's parent is a DAG ancestor of the
// commit, every server logs the commits of one branch in chain order, so
// the commits' changes take effect in canonical order everywhere
// (docs/api.md, "Ordering"); and because a commit adopts only state events
// among its own DAG parents, what it adopts is a function of the DAG, not
// of the order in which state events arrived (docs/decisions.md, "State
// events take effect when a commit adopts them").
type branchState struct {
	root    dag.EventID
	chain   []dag.EventID // the canonical chain the snapshots follow
	entries []StateEntry
	snaps   []*roomstate.State // snaps[i]: state after entries[:i+1] on chain; nil once out of the window
	pos     map[dag.EventID]int
	parent  map[dag.EventID]dag.EventID
	onChain map[dag.EventID]bool // the commits of chain
	height  map[dag.EventID]int  // commits: their depth on their branch (the root's children are 1)

	// states indexes the accepted state events in entries; adopters lists,
	// per state event, the commits that adopted it (one per branch at most).
	states   map[dag.EventID]int
	adopters map[dag.EventID][]dag.EventID

	// memo holds, for some epochs other than the tip's, the state of the
	// epoch's branch, oldest first in memoOrder. Entries after an epoch's
	// own are never on its branch, and state events change nothing by
	// themselves, so an epoch's state never changes once computed: a
	// message, proposal or commit naming an old epoch costs a lookup, not
	// a fold of the room's history.
	memo      map[dag.EventID]*roomstate.State
	memoOrder []dag.EventID
}

func newBranchState(root dag.EventID, initial *roomstate.State) *branchState {
	return &branchState{
		root:     root,
		entries:  []StateEntry{{ID: root, Kind: dag.KindCreate, Initial: initial}},
		snaps:    []*roomstate.State{initial},
		pos:      map[dag.EventID]int{},
		parent:   map[dag.EventID]dag.EventID{},
		onChain:  map[dag.EventID]bool{},
		height:   map[dag.EventID]int{},
		states:   map[dag.EventID]int{},
		adopters: map[dag.EventID][]dag.EventID{},
		memo:     map[dag.EventID]*roomstate.State{},
	}
}

// tip is the last canonical commit, or the create event.
func (b *branchState) tip() dag.EventID {
	if len(b.chain) == 0 {
		return b.root
	}
	return b.chain[len(b.chain)-1]
}

// current is the room state of the canonical branch.
func (b *branchState) current() *roomstate.State { return b.snaps[len(b.snaps)-1] }

// known reports whether id is the root or an accepted commit of the room.
func (b *branchState) known(id dag.EventID) bool {
	_, ok := b.pos[id]
	return ok || id == b.root
}

// branch returns the commits from the root to c (c included) by parent links.
func (b *branchState) branch(c dag.EventID) map[dag.EventID]bool {
	set := map[dag.EventID]bool{}
	for c != b.root && !set[c] {
		p, ok := b.parent[c]
		if !ok {
			break
		}
		set[c] = true
		c = p
	}
	return set
}

func setOf(ids []dag.EventID) map[dag.EventID]bool {
	set := make(map[dag.EventID]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// applyEntry folds one entry into st for the branch in: the create
// event's initial state, or a commit of the branch with the state events
// it adopts. A standalone state event applies nothing.
func applyEntry(st *roomstate.State, e *StateEntry, in map[dag.EventID]bool) *roomstate.State {
	switch e.Kind {
	case dag.KindCreate:
		return e.Initial
	case dag.KindCommit:
		if !in[e.ID] {
			return st
		}
	default:
		return st
	}
	next, err := adoptStates(st, e.Adopted)
	if err == nil {
		next, err = applyChanges(next, e.Actor, e.Changes)
	}
	if err != nil {
		// The commit was authorized against the state of its parent's
		// branch, which is what the fold computes; a commit accepted in an
		// earlier version of the rules (restore) may not apply: it has no
		// effect here.
		return st
	}
	return next
}

// adoptedOn reports whether a commit of head's branch (head included)
// adopted state event id.
func (b *branchState) adoptedOn(id, head dag.EventID) bool {
	for _, a := range b.adopters[id] {
		h := b.height[a]
		for c := head; c != b.root && b.height[c] >= h; c = b.parent[c] {
			if c == a {
				return true
			}
		}
	}
	return false
}

// adoptable returns the state entries commit ev (whose parent is parent)
// adopts: the accepted state events among its DAG parents that no commit
// of parent's branch adopted, ascending by ID (ev.Prev is ascending).
func (b *branchState) adoptable(ev *dag.Event, parent dag.EventID) []StateEntry {
	var out []StateEntry
	for _, id := range ev.Prev {
		i, ok := b.states[id]
		if !ok || b.adoptedOn(id, parent) {
			continue
		}
		out = append(out, b.entries[i])
	}
	return out
}

// pending returns the accepted state events that no commit of head's
// branch adopted, ascending by ID.
func (b *branchState) pending(head dag.EventID) []StateEntry {
	if len(b.states) == 0 {
		return nil
	}
	in := b.onChain // the canonical tip's branch, the usual head
	if head != b.tip() {
		in = b.branch(head)
	}
	var out []StateEntry
	for id, i := range b.states {
		if !slices.ContainsFunc(b.adopters[id], func(a dag.EventID) bool { return in[a] }) {
			out = append(out, b.entries[i])
		}
	}
	slices.SortFunc(out, func(x, y StateEntry) int { return bytes.Compare(x.ID.Bytes(), y.ID.Bytes()) })
	return out
}

// firstDiff is the lowest entry index of a commit in exactly one of a and
// b, or -1 if they agree.
func (b *branchState) firstDiff(x, y map[dag.EventID]bool) int {
	first := -1
	for _, pair := range [2][2]map[dag.EventID]bool{{x, y}, {y, x}} {
		for c := range pair[0] {
			if pair[1][c] {
				continue
			}
			if i, ok := b.pos[c]; ok && (first < 0 || i < first) {
				first = i
			}
		}
	}
	return first
}

// base returns the state before entry i on the canonical branch, and
// whether a snapshot was available.
func (b *branchState) base(i int) (*roomstate.State, bool) {
	if i == 0 {
		return nil, true
	}
	st := b.snaps[i-1]
	return st, st != nil
}

// stateAt returns the state of the epoch that commit (or the create event)
// epoch starts: the fold of every entry so far on epoch's branch.
func (b *branchState) stateAt(epoch dag.EventID) (*roomstate.State, error) {
	if !b.known(epoch) {
		return nil, reject(ReasonUnknownEpoch, "epoch %v is not an accepted commit or the create event of the room", epoch)
	}
	if epoch == b.tip() {
		return b.current(), nil
	}
	if st, ok := b.memo[epoch]; ok {
		return st, nil
	}
	in := b.branch(epoch)
	from := b.firstDiff(in, b.onChain)
	if from < 0 {
		return b.current(), nil
	}
	st, ok := b.base(from)
	if !ok {
		from, st = 0, nil
	}
	for i := from; i < len(b.entries); i++ {
		st = applyEntry(st, &b.entries[i], in)
	}
	b.remember(epoch, st)
	return st, nil
}

// remember records st as the state of epoch's branch, dropping the oldest memo beyond memoWindow.
func (b *branchState) remember(epoch dag.EventID, st *roomstate.State) {
	if _, ok := b.memo[epoch]; !ok {
		b.memoOrder = append(b.memoOrder, epoch)
	}
	b.memo[epoch] = st
	for len(b.memoOrder) > memoWindow {
		delete(b.memo, b.memoOrder[0])
		b.memoOrder = b.memoOrder[1:]
	}
}

// forget drops the memo of epoch.
func (b *branchState) forget(epoch dag.EventID) {
	if _, ok := b.memo[epoch]; !ok {
		return
	}
	delete(b.memo, epoch)
	b.memoOrder = slices.DeleteFunc(b.memoOrder, func(id dag.EventID) bool { return id == epoch })
}

// appendEntry records an accepted state-changing event and its snapshot on
// the canonical branch.
func (b *branchState) appendEntry(e StateEntry) {
	b.entries = append(b.entries, e)
	b.snaps = append(b.snaps, applyEntry(b.current(), &b.entries[len(b.entries)-1], b.onChain))
	switch e.Kind {
	case dag.KindCommit:
		b.pos[e.ID] = len(b.entries) - 1
		b.parent[e.ID] = e.Parent
		b.height[e.ID] = b.height[e.Parent] + 1
		for _, a := range e.Adopted {
			b.adopters[a.ID] = append(b.adopters[a.ID], e.ID)
		}
	case dag.KindState:
		b.states[e.ID] = len(b.entries) - 1
	}
	if n := len(b.snaps) - snapWindow - 1; n >= 0 {
		b.snaps[n] = nil
	}
}

// setChain makes chain canonical and recomputes the state from the first
// entry whose branch membership changed.
func (b *branchState) setChain(chain []dag.EventID) {
	in := setOf(chain)
	from := b.firstDiff(b.onChain, in)
	b.chain, b.onChain = chain, in
	if from < 0 {
		return
	}
	st, ok := b.base(from)
	if !ok {
		from, st = 0, nil
	}
	for i := from; i < len(b.entries); i++ {
		st = applyEntry(st, &b.entries[i], in)
		if b.snaps[i] != nil || i >= len(b.snaps)-snapWindow {
			b.snaps[i] = st
		}
	}
}

// recompute rebuilds every snapshot in the window for the chain (restore).
func (b *branchState) recompute() {
	in := b.onChain
	var st *roomstate.State
	for i := range b.entries {
		st = applyEntry(st, &b.entries[i], in)
		if i >= len(b.entries)-snapWindow-1 {
			b.snaps[i] = st
		} else {
			b.snaps[i] = nil
		}
	}
}
