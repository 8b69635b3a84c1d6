package node

import (
	"fmt"
	"slices"
	"time"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// DefaultTick is the length of one consensus tick: the node ticks every
// room's ordering machine at this interval. With consensus.DefaultParams a
// frontier waits 1.5 s for its hub before suspecting it, a minority side
// seals tentatively after 4 to 8 s, and a losing branch's secrets are kept
// for 30 s (docs/consensus.md, section 5).
const DefaultTick = 10 * time.Millisecond

// snapWindow bounds how many per-entry state snapshots a room keeps. A
// reorg that reaches further back recomputes the state from the create
// event.
const snapWindow = 512

// stateEntry is one accepted event that can change room state, in arrival
// order: the create event, a state event, or a commit (whose changes count
// only while the commit is on the branch being evaluated).
type stateEntry struct {
	id      dag.EventID
	kind    dag.Kind
	parent  dag.EventID // commit: its slot
	actor   roomstate.Actor
	changes []roomevent.Change
	initial *roomstate.State // create: the initial state
}

// roomOrder is the ordering layer of one room: its consensus machine and the
// room state derived from the canonical commit chain. Room state is a pure
// function of the accepted state-changing events in arrival order and of a
// set of commits (a branch): fold the create state, every state event, and
// the changes of the commits of the branch, in arrival order. Because a
// commit's parent is a DAG ancestor of the commit, every server logs the
// commits of one branch in chain order, so the commits' changes take effect
// in canonical order everywhere (docs/api.md, "Ordering"). The current state
// is the state of the canonical branch; a reorg recomputes it from the first
// entry whose membership in the branch changed.
//
// A roomOrder is used only under rooms.writeMu.
type roomOrder struct {
	room dag.RoomID
	root dag.EventID
	m    *consensus.Machine

	// chain and certLen are the canonical chain and its certified prefix as
	// last reported in the feed.
	chain   []dag.EventID
	certLen int

	entries []stateEntry
	snaps   []*roomstate.State // snaps[i]: state after entries[:i+1] on chain; nil once out of the window
	pos     map[dag.EventID]int
	parent  map[dag.EventID]dag.EventID

	// retainUntil is the deadline (unix ms) of the last RetainBranch not yet
	// reported in an order record.
	retainUntil int64
}

func newRoomOrder(room dag.RoomID, create *dag.Event, initial *roomstate.State, self dag.ServerID, params consensus.Params) (*roomOrder, error) {
	m, err := consensus.New(consensus.Config{
		Room:       room.CreateID().Bytes(),
		Root:       cid(create.ID()),
		Self:       consensus.ServerID(self),
		Membership: membershipOf(initial, create.ID()),
		Params:     params,
	})
	if err != nil {
		return nil, fmt.Errorf("node: ordering machine of room %v: %w", room, err)
	}
	o := &roomOrder{
		room: room, root: create.ID(), m: m,
		pos: map[dag.EventID]int{}, parent: map[dag.EventID]dag.EventID{},
	}
	o.entries = []stateEntry{{id: create.ID(), kind: dag.KindCreate, initial: initial}}
	o.snaps = []*roomstate.State{initial}
	return o, nil
}

// cid converts a DAG event ID to the consensus package's ID.
func cid(id dag.EventID) consensus.EventID { return consensus.EventID(id.Bytes()) }

// did converts a consensus event ID back; the machine only returns IDs the
// node gave it, so a failure is a programming error reported as zero.
func did(id consensus.EventID) dag.EventID {
	out, _ := dag.EventIDFromBytes([]byte(id))
	return out
}

func dids(ids []consensus.EventID) []dag.EventID {
	out := make([]dag.EventID, len(ids))
	for i, id := range ids {
		out[i] = did(id)
	}
	return out
}

// membershipOf is the consensus membership a room state describes: its
// servers and explicit hub candidates, with seed (the event that set the
// server set) for the default candidate order.
func membershipOf(st *roomstate.State, seed dag.EventID) consensus.Membership {
	var m consensus.Membership
	for _, s := range st.Servers() {
		m.Servers = append(m.Servers, consensus.ServerID(s.ID))
	}
	for _, s := range st.HubCandidates() {
		m.HubCandidates = append(m.HubCandidates, consensus.ServerID(s))
	}
	m.Seed = seed.Bytes()
	return m
}

// changesServers reports whether a commit's changes touch the servers
// component, that is, whether the commit installs a new membership.
func changesServers(cs []roomevent.Change) bool {
	for _, c := range cs {
		if roomstate.ComponentID(c.Component) == roomstate.ComponentServers {
			return true
		}
	}
	return false
}

// tip is the last canonical commit, or the create event.
func (o *roomOrder) tip() dag.EventID {
	if len(o.chain) == 0 {
		return o.root
	}
	return o.chain[len(o.chain)-1]
}

// certified is the last certified commit, or the create event.
func (o *roomOrder) certified() dag.EventID {
	if o.certLen == 0 {
		return o.root
	}
	return o.chain[o.certLen-1]
}

// current is the room state of the canonical branch.
func (o *roomOrder) current() *roomstate.State { return o.snaps[len(o.snaps)-1] }

// known reports whether id is the root or an accepted commit of the room.
func (o *roomOrder) known(id dag.EventID) bool {
	_, ok := o.pos[id]
	return ok || id == o.root
}

// branch returns the commits from the root to c (c included) by parent links.
func (o *roomOrder) branch(c dag.EventID) map[dag.EventID]bool {
	set := map[dag.EventID]bool{}
	for c != o.root && !set[c] {
		p, ok := o.parent[c]
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
func applyEntry(st *roomstate.State, e *stateEntry, in map[dag.EventID]bool) *roomstate.State {
	switch e.kind {
	case dag.KindCreate:
		return e.initial
	case dag.KindCommit:
		if !in[e.id] {
			return st
		}
	}
	next, err := applyChanges(st, e.actor, e.changes)
	if err != nil {
		// The change was authorized when it arrived; on this branch (or
		// after a state event that arrived in between) it no longer
		// applies, so it has no effect here.
		return st
	}
	return next
}

// firstDiff is the lowest entry index of a commit in exactly one of a and b,
// or -1 if they agree.
func (o *roomOrder) firstDiff(a, b map[dag.EventID]bool) int {
	first := -1
	for _, pair := range [2][2]map[dag.EventID]bool{{a, b}, {b, a}} {
		for c := range pair[0] {
			if pair[1][c] {
				continue
			}
			if i, ok := o.pos[c]; ok && (first < 0 || i < first) {
				first = i
			}
		}
	}
	return first
}

// base returns the state before entry i on the canonical branch, and
// whether a snapshot was available.
func (o *roomOrder) base(i int) (*roomstate.State, bool) {
	if i == 0 {
		return nil, true
	}
	st := o.snaps[i-1]
	return st, st != nil
}

// stateAt returns the state of the epoch that commit (or the create event)
// parent starts: the fold of every entry so far on parent's branch. A
// commit is authorized against it.
func (o *roomOrder) stateAt(parent dag.EventID) (*roomstate.State, error) {
	if !o.known(parent) {
		return nil, authErr("unknown-epoch", "parent %v is not an accepted commit or the create event of room %v", parent, o.room)
	}
	if parent == o.tip() {
		return o.current(), nil
	}
	in := o.branch(parent)
	from := o.firstDiff(in, setOf(o.chain))
	if from < 0 {
		return o.current(), nil
	}
	st, ok := o.base(from)
	if !ok {
		from, st = 0, nil
	}
	for i := from; i < len(o.entries); i++ {
		st = applyEntry(st, &o.entries[i], in)
	}
	return st, nil
}

// appendEntry records an accepted state-changing event and its snapshot on
// the canonical branch.
func (o *roomOrder) appendEntry(e stateEntry) {
	in := setOf(o.chain)
	o.entries = append(o.entries, e)
	o.snaps = append(o.snaps, applyEntry(o.current(), &o.entries[len(o.entries)-1], in))
	if e.kind == dag.KindCommit {
		o.pos[e.id] = len(o.entries) - 1
		o.parent[e.id] = e.parent
	}
	if n := len(o.snaps) - snapWindow - 1; n >= 0 {
		o.snaps[n] = nil
	}
}

// setChain makes chain canonical and recomputes the state from the first
// entry whose branch membership changed.
func (o *roomOrder) setChain(chain []dag.EventID) {
	from := o.firstDiff(setOf(o.chain), setOf(chain))
	o.chain = chain
	if from < 0 {
		return
	}
	in := setOf(chain)
	st, ok := o.base(from)
	if !ok {
		from, st = 0, nil
	}
	for i := from; i < len(o.entries); i++ {
		st = applyEntry(st, &o.entries[i], in)
		if o.snaps[i] != nil || i >= len(o.snaps)-snapWindow {
			o.snaps[i] = st
		}
	}
}

// orderRecord is an order line of the delivery feed: the canonical chain
// or its certified prefix changed (docs/api.md, "Ordering"). IDs are in
// their text form.
type orderRecord struct {
	Tip         string   `json:"t"`
	Certified   string   `json:"c"`
	Undone      []string `json:"u,omitempty"` // newest first
	Applied     []string `json:"a,omitempty"` // oldest first
	RetainUntil int64    `json:"ru,omitempty"`
}

// report compares the machine's canonical chain and certified prefix with
// the last reported ones and returns the order record for the change, or
// nil if nothing changed. The state follows the new chain.
func (o *roomOrder) report() *orderRecord {
	chain := dids(o.m.Canonical())
	certLen := o.m.CertifiedLen()
	if slices.Equal(chain, o.chain) && certLen == o.certLen {
		return nil
	}
	fp := 0
	for fp < len(chain) && fp < len(o.chain) && chain[fp] == o.chain[fp] {
		fp++
	}
	rec := &orderRecord{}
	for i := len(o.chain) - 1; i >= fp; i-- {
		rec.Undone = append(rec.Undone, o.chain[i].String())
	}
	for _, c := range chain[fp:] {
		rec.Applied = append(rec.Applied, c.String())
	}
	if len(rec.Undone) > 0 {
		rec.RetainUntil = o.retainUntil
	}
	o.retainUntil = 0
	o.setChain(chain)
	o.certLen = certLen
	rec.Tip, rec.Certified = o.tip().String(), o.certified().String()
	return rec
}

// replayRecord applies a persisted order record to the reported chain
// (restart: the feed holds every record in order).
func (o *roomOrder) replayRecord(rec *orderRecord) error {
	n := len(o.chain) - len(rec.Undone)
	if n < 0 {
		return fmt.Errorf("node: order record of room %v undoes %d commits of a chain of %d", o.room, len(rec.Undone), len(o.chain))
	}
	chain := slices.Clone(o.chain[:n])
	for _, s := range rec.Applied {
		id, err := dag.ParseEventID(s)
		if err != nil {
			return fmt.Errorf("node: order record of room %v: %w", o.room, err)
		}
		chain = append(chain, id)
	}
	o.chain = chain
	o.certLen = 0
	if rec.Certified != o.root.String() {
		for i, c := range chain {
			if c.String() == rec.Certified {
				o.certLen = i + 1
			}
		}
	}
	return nil
}

// recompute rebuilds every snapshot for the reported chain (restart).
func (o *roomOrder) recompute() {
	in := setOf(o.chain)
	var st *roomstate.State
	for i := range o.entries {
		st = applyEntry(st, &o.entries[i], in)
		if i >= len(o.entries)-snapWindow-1 {
			o.snaps[i] = st
		} else {
			o.snaps[i] = nil
		}
	}
}
