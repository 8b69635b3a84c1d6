package room

import (
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
// only while the commit is on the branch being evaluated).
type StateEntry struct {
	ID      dag.EventID
	Kind    dag.Kind
	Parent  dag.EventID // commit: its slot
	Actor   roomstate.Actor
	Changes []roomevent.Change
	Initial *roomstate.State // create: the initial state
}

// branchState folds the state entries of a room. Room state is a pure
// function of the accepted state-changing events in arrival order and of a
// set of commits (a branch): fold the create state, every state event, and
// the changes of the commits of the branch, in arrival order. Because a
// commit's parent is a DAG ancestor of the commit, every server logs the
// commits of one branch in chain order, so the commits' changes take effect
// in canonical order everywhere (docs/api.md, "Ordering").
type branchState struct {
	root    dag.EventID
	chain   []dag.EventID // the canonical chain the snapshots follow
	entries []StateEntry
	snaps   []*roomstate.State // snaps[i]: state after entries[:i+1] on chain; nil once out of the window
	pos     map[dag.EventID]int
	parent  map[dag.EventID]dag.EventID
	onChain map[dag.EventID]bool // the commits of chain

	// memo holds, for some epochs other than the tip's, the state after
	// the first n entries on the epoch's branch, oldest first in
	// memoOrder. Entries are only appended and every commit of an epoch's
	// branch precedes the epoch's own entry, so the state after more
	// entries is the memo with the later state events folded in: a
	// message, proposal or commit naming an old epoch costs the entries
	// since its last use, not a fold of the room's history.
	memo      map[dag.EventID]*foldMemo
	memoOrder []dag.EventID
}

// foldMemo is the state of an epoch's branch after entries[:n].
type foldMemo struct {
	st *roomstate.State
	n  int
}

func newBranchState(root dag.EventID, initial *roomstate.State) *branchState {
	return &branchState{
		root:    root,
		entries: []StateEntry{{ID: root, Kind: dag.KindCreate, Initial: initial}},
		snaps:   []*roomstate.State{initial},
		pos:     map[dag.EventID]int{},
		parent:  map[dag.EventID]dag.EventID{},
		onChain: map[dag.EventID]bool{},
		memo:    map[dag.EventID]*foldMemo{},
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

// applyEntry folds one entry into st for the branch in.
func applyEntry(st *roomstate.State, e *StateEntry, in map[dag.EventID]bool) *roomstate.State {
	switch e.Kind {
	case dag.KindCreate:
		return e.Initial
	case dag.KindCommit:
		if !in[e.ID] {
			return st
		}
	}
	next, err := applyChanges(st, e.Actor, e.Changes)
	if err != nil {
		// The change was authorized when it arrived; on this branch (or
		// after a state event that arrived in between) it no longer
		// applies, so it has no effect here.
		return st
	}
	return next
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
	if m, ok := b.memo[epoch]; ok {
		// Entries from m.n on came after epoch, so no commit among them
		// is on its branch: only their state events apply.
		for ; m.n < len(b.entries); m.n++ {
			if e := &b.entries[m.n]; e.Kind == dag.KindState {
				m.st = applyEntry(m.st, e, nil)
			}
		}
		return m.st, nil
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

// remember records st as the state of epoch's branch after every entry so
// far, dropping the oldest memo beyond memoWindow.
func (b *branchState) remember(epoch dag.EventID, st *roomstate.State) {
	if _, ok := b.memo[epoch]; !ok {
		b.memoOrder = append(b.memoOrder, epoch)
	}
	b.memo[epoch] = &foldMemo{st: st, n: len(b.entries)}
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
	if e.Kind == dag.KindCommit {
		b.pos[e.ID] = len(b.entries) - 1
		b.parent[e.ID] = e.Parent
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
