package room

import (
	"slices"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Rule R (references are parents). An event is judged against the events
// it names in its content: a commit against its parent commit's epoch and
// the proposals it includes by reference, a message or proposal against
// its epoch's commit. Each of them must be one of the event's own DAG
// parents (the create event excepted: it is in every event's past). A
// server stores an event only once its parents are stored, and steps
// events in that order, so every server has judged what an event names
// before it judges the event: the verdict is a function of the event and
// its past, never of the order in which concurrent events arrived. Without
// the rule a server could choose DAG parents that leave the named commit
// out, and servers that stored the event first would refuse it
// (unknown-epoch) while the others accepted it (docs/decisions.md, "Rule
// R"). Hosts build their own events with [Engine.Refs] among the parents.

// ReasonNotParent: an event names a commit (its parent or epoch) or a
// proposal (by reference) that is not one of its DAG parents (rule R).
const ReasonNotParent Reason = "ref-not-parent"

// MaxRefs is the most events rule R can make an event name among its
// parents: dag.MaxParents less one, so that a host always has room for a
// tip of the DAG besides them. A commit including more proposals by
// reference than MaxRefs-1 cannot be built: committers include the rest
// in a later commit.
const MaxRefs = dag.MaxParents - 1

// hasParent reports whether id is one of ev's parents (ev.Prev is
// ascending) or the root, which every event descends from.
func hasParent(ev *dag.Event, root, id dag.EventID) bool {
	if id == root {
		return true
	}
	_, ok := slices.BinarySearchFunc(ev.Prev, id, dag.EventID.Compare)
	return ok
}

// checkParent holds ev to rule R for the commit it names (what is "the
// commit's parent" or "the message's epoch").
func (e *Engine) checkParent(ev *dag.Event, named dag.EventID, what string) error {
	if hasParent(ev, e.b.root, named) {
		return nil
	}
	return reject(ReasonNotParent, "the %s %v is not among the event's DAG parents", what, named)
}

// checkRefParents holds commit ev to rule R for the proposals it includes
// by reference (observed by the commit's parent epoch's public group).
func (e *Engine) checkRefParents(ev *dag.Event, epoch dag.EventID, props []mls.CommitProposal) error {
	for _, p := range props {
		if p.Reference == nil {
			continue
		}
		id, ok := e.propEvents[epoch][string(p.Reference)]
		if !ok {
			// The public group resolved the reference, so some accepted
			// proposal event of the epoch carried it.
			return reject(ReasonNotParent, "no proposal event of epoch %v carries the proposal reference %x", epoch, p.Reference)
		}
		if !hasParent(ev, e.b.root, id) {
			return reject(ReasonNotParent, "proposal %v, included by reference, is not among the commit's DAG parents", id)
		}
	}
	return nil
}

// noteProposal records that proposal event id of epoch carries ref.
func (e *Engine) noteProposal(epoch, id dag.EventID, ref []byte) {
	m := e.propEvents[epoch]
	if m == nil {
		m = map[string]dag.EventID{}
		e.propEvents[epoch] = m
	}
	m[string(ref)] = id
}

// Refs returns the events rule R requires among the DAG parents of a new
// event of kind with content, ascending: the commit it names (unless it
// is the create event), and for a commit the proposal events it includes
// by reference that this engine accepted; then, for a commit, as many as
// fit of the pending state events it is to adopt (adoptPending: those no
// commit of its parent's branch adopted, that apply, ascending by ID). The
// host adds them to the tips it chooses as parents (at most [MaxRefs] are
// returned; a commit naming more is refused by Check anyway). Content that
// does not decode gives an error, as Check would.
func (e *Engine) Refs(kind dag.Kind, content []byte) ([]dag.EventID, error) {
	var named dag.EventID
	var out []dag.EventID
	switch kind {
	case dag.KindCommit:
		c, err := roomevent.DecodeCommit(content)
		if err != nil {
			return nil, rejectErr(ReasonMalformedContent, err)
		}
		named = c.Parent
		msg, err := mls.UnmarshalMLSMessage(slices.Clone(c.Commit))
		if err != nil || msg.PublicMessage == nil || msg.PublicMessage.Content.Commit == nil {
			break // Check refuses it
		}
		for _, p := range msg.PublicMessage.Content.Commit.Proposals {
			if p.Reference == nil {
				continue
			}
			if id, ok := e.propEvents[named][string(p.Reference)]; ok {
				out = append(out, id)
			}
		}
	case dag.KindMessage, dag.KindProposal:
		ep, err := epochOf(&dag.Event{Kind: kind, Content: content})
		if err != nil {
			return nil, err
		}
		named = ep
	default:
		return nil, nil
	}
	if named != e.b.root {
		out = append(out, named)
	}
	dag.SortIDs(out)
	out = slices.Compact(out)
	if len(out) > MaxRefs {
		return nil, reject(ReasonNotParent, "the event names %d events, more than the %d its DAG parents can hold besides a tip", len(out), MaxRefs)
	}
	if kind == dag.KindCommit && e.b.known(named) {
		if _, ids, err := e.adoptPending(named, MaxRefs-len(out)); err == nil && len(ids) > 0 {
			out = append(out, ids...)
			dag.SortIDs(out)
		}
	}
	return out, nil
}

// adoptPending returns what the next commit on epoch is to adopt: the
// state of epoch with the pending state events of its branch applied
// (those no commit of the branch adopted), ascending by ID, skipping any
// that does not apply and stopping at budget, and their IDs. Skipping
// leaves the state as it was, so the commit adopting exactly these IDs is
// judged against the same state.
func (e *Engine) adoptPending(epoch dag.EventID, budget int) (*roomstate.State, []dag.EventID, error) {
	st, err := e.b.stateAt(epoch)
	if err != nil {
		return nil, nil, err
	}
	var ids []dag.EventID
	for _, p := range e.b.pending(epoch) {
		if len(ids) >= budget {
			break
		}
		if next, err := adoptState(st, &p); err == nil {
			st = next
			ids = append(ids, p.ID)
		}
	}
	return st, ids, nil
}

// Named returns the commit ev names (rule R: one of its parents, or the
// create event), the one whose state it builds on: a commit's parent, a
// message's or proposal's epoch. Other kinds, and content that does not
// decode, name none (ok false). Hosts use it to check, before storing an
// event, that its origin is a server of the room at its parents
// ([Engine.ServersAt]).
func Named(ev *dag.Event) (dag.EventID, bool) {
	switch ev.Kind {
	case dag.KindCommit:
		c, err := roomevent.DecodeCommit(ev.Content)
		if err != nil {
			return dag.EventID{}, false
		}
		return c.Parent, true
	case dag.KindMessage, dag.KindProposal:
		ep, err := epochOf(ev)
		return ep, err == nil
	}
	return dag.EventID{}, false
}

// ServersAt returns the servers of the room state of epoch (an accepted
// commit or the create event), sorted, and false for any other ID. Servers
// change only through commits (standalone state events may not touch
// them), so the answer for an epoch never changes: it is the set the
// engine holds an event naming epoch to (not-a-room-server).
func (e *Engine) ServersAt(epoch dag.EventID) ([]dag.ServerID, bool) {
	st, err := e.b.stateAt(epoch)
	if err != nil || st == nil {
		return nil, false
	}
	out := make([]dag.ServerID, 0, len(st.Servers()))
	for _, s := range st.Servers() {
		out = append(out, dag.ServerID(s.ID))
	}
	return sortServers(out), true
}

// Parents trims prev, the parents a host chose for a new event of kind
// with content (its Refs and tips, dag.MergeParents), for a commit: a
// pending state event of the commit's parent's branch among the tips that
// Refs did not name would be adopted too, and one that does not apply
// would fail the commit, so such tips are left out (a later event merges
// them). Other kinds, and content that does not decode, keep prev.
func (e *Engine) Parents(kind dag.Kind, content []byte, prev []dag.EventID) []dag.EventID {
	if kind != dag.KindCommit {
		return prev
	}
	c, err := roomevent.DecodeCommit(content)
	if err != nil || !e.b.known(c.Parent) {
		return prev
	}
	refs, err := e.Refs(kind, content)
	if err != nil {
		return prev
	}
	out := slices.DeleteFunc(slices.Clone(prev), func(id dag.EventID) bool {
		_, isState := e.b.states[id]
		return isState && !slices.Contains(refs, id) && !e.b.adoptedOn(id, c.Parent)
	})
	if len(out) == 0 {
		out = []dag.EventID{e.b.root} // in every event's past
	}
	return out
}
