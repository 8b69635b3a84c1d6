package sim

import (
	"bytes"
	"slices"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
)

func (w *world) honest() []*server {
	var out []*server
	for _, s := range w.servers {
		if !s.equivocate {
			out = append(out, s)
		}
	}
	return out
}

// observe runs at the end of every tick. It splits the run into healthy
// periods (no partition, crash, flapping link, withheld sending or
// equivocating seal) and measures, for each period that follows a fault,
// how long honest servers' chains kept conflicting (property 3; property 5
// for the periods after an equivocating seal).
func (w *world) observe() {
	if w.faulty || (w.rep.EquivocatingSeals > 0 && w.equivAt == w.now) {
		w.closePeriod()
		w.afterFault = true
		return
	}
	if !w.inPeriod {
		w.inPeriod, w.periodStart, w.periodSplit = true, w.now, false
	}
	if w.chainsConflict() {
		w.lastSplit, w.periodSplit = w.now, true
	}
}

// closePeriod ends the current healthy period and records its convergence
// time if it followed a fault. A period cut short by the next fault while
// still split records its length, a lower bound.
func (w *world) closePeriod() {
	if !w.inPeriod {
		return
	}
	w.inPeriod = false
	if !w.afterFault {
		return
	}
	w.rep.Heals++
	if w.periodSplit {
		w.rep.ConvergeTicks = max(w.rep.ConvergeTicks, w.lastSplit+1-w.periodStart)
	}
}

// chainsConflict reports whether two honest servers' chains disagree on
// some slot: some chain is not a prefix of the longest one.
func (w *world) chainsConflict() bool {
	hs := w.honest()
	var longest []dag.EventID
	for _, s := range hs {
		if s.up && len(s.chain) > len(longest) {
			longest = s.chain
		}
	}
	for _, s := range hs {
		if s.up && !slices.Equal(s.chain, longest[:len(s.chain)]) {
			return true
		}
	}
	return false
}

// connectedMajority marks the servers that belong to a connected majority
// this tick: up, not withholding, without an active flapping link, and in
// a partition group holding a quorum of such servers (property 4).
func (w *world) connectedMajority() {
	n := len(w.servers)
	flapped := make([]bool, n)
	for _, f := range w.net.flaps {
		if w.now < f.until {
			flapped[f.a], flapped[f.b] = true, true
		}
	}
	ok := func(i int) bool {
		s := w.servers[i]
		return s.up && s.withholdUntil <= w.now && !flapped[i]
	}
	size := map[int]int{}
	for i := range n {
		if ok(i) {
			size[w.net.group[i]]++
		}
	}
	if w.connected == nil {
		w.connected = make([]bool, n)
	}
	for i := range n {
		w.connected[i] = ok(i) && size[w.net.group[i]] >= n/2+1
	}
}

// quiescent reports whether the run is done: every honest server holds the
// same fully certified chain, no change is pending and every message is in
// a canonical epoch at its home server.
func (w *world) quiescent() bool {
	hs := w.honest()
	for _, s := range hs {
		if !s.up || !slices.Equal(hs[0].chain, s.chain) || s.certLen != len(s.chain) {
			return false
		}
	}
	for _, c := range w.clients {
		if len(c.changes) > 0 {
			return false
		}
		home := w.servers[c.home]
		for _, m := range c.msgs {
			if !home.chainSet[m.epoch] {
				return false
			}
		}
	}
	return w.lostCopies() == 0
}

// lostCopies counts (honest server, message) pairs where the server has no
// copy of the message in one of its canonical epochs.
func (w *world) lostCopies() int {
	lost := 0
	for _, s := range w.honest() {
		for _, c := range w.clients {
			for _, m := range c.msgs {
				if !slices.ContainsFunc(s.copies[m.id], func(e dag.EventID) bool { return s.chainSet[e] }) {
					lost++
				}
			}
		}
	}
	return lost
}

// certified checks a commit server s reported certified: it is a commit
// the run made, and the only one certified in its slot.
func (w *world) certified(s *server, c dag.EventID) {
	ci := w.commits[c]
	if ci == nil {
		w.violate("server %d: certified unknown commit %v", s.idx, c)
		return
	}
	if prev, ok := w.certBySlot[ci.parent]; ok && prev != c {
		w.violate("two certified commits in one slot: %v and %v", prev, c)
	}
	w.certBySlot[ci.parent] = c
}

func (w *world) changeDone(ch *change) {
	if ch.connOn {
		w.rep.MaxCertifyConnected = max(w.rep.MaxCertifyConnected, w.now-ch.connSince)
	}
	w.rep.ChangesCertified++
	w.rep.MaxCertifyTicks = max(w.rep.MaxCertifyTicks, w.now-ch.proposed)
	w.rep.LastCertifiedAt = w.now
	if !w.faulty {
		w.rep.MaxCertifyAfterHeal = max(w.rep.MaxCertifyAfterHeal, w.now-max(ch.proposed, w.rep.HealAt))
	}
}

// finish checks the invariants at the end of the run.
func (w *world) finish() {
	hs := w.honest()
	ref := hs[0]
	w.rep.FinalChainLen = len(ref.chain)
	w.rep.Converged = w.quiescent()
	w.closePeriod()
	w.rep.PacketsSent, w.rep.PacketsDropped, w.rep.PacketsDuplicated = w.net.sent, w.net.dropped, w.net.duplicated

	// Agreement and liveness at quiescence.
	for _, s := range hs[1:] {
		if !slices.Equal(ref.chain, s.chain) {
			w.violate("servers %d and %d disagree on the canonical chain", ref.idx, s.idx)
		}
	}
	if !w.rep.Converged {
		w.violate("not quiescent after %d settle ticks", w.sc.Settle)
	}
	if w.rep.ChangesCertified != w.rep.Changes {
		w.violate("%d of %d changes certified", w.rep.ChangesCertified, w.rep.Changes)
	}
	// Every change is carried by a commit on the final chain.
	carried := map[string]bool{}
	for _, c := range ref.chain {
		if ci := w.commits[c]; ci != nil {
			for _, id := range ci.changes {
				carried[id] = true
			}
		}
	}
	if len(carried) != w.rep.Changes {
		w.violate("%d of %d changes carried by the final chain", len(carried), w.rep.Changes)
	}
	// Finality: every commit ever certified is on the final chain.
	for _, slot := range sortedIDs(w.certBySlot) {
		if c := w.certBySlot[slot]; !ref.chainSet[c] {
			w.violate("certified commit %v is not canonical at the end", c)
		}
	}
	// No message lost: every honest server has each message in a canonical
	// epoch.
	w.rep.MessagesLost = w.lostCopies()
	if w.rep.HeldPastDeadline > 0 {
		w.violate("%d retained branches held past their deadline", w.rep.HeldPastDeadline)
	}
	if w.rep.MessagesLost > 0 {
		w.violate("%d message copies lost", w.rep.MessagesLost)
	}
	// Each server's feed describes its engine's chain, which is the pure
	// function of the ordering events it accepted.
	for _, s := range w.servers {
		o, _ := consensus.ForkChoice(w.order.room, w.order.root, w.order.membership, s.accepted())
		if !slices.Equal(dids(o.Chain), s.chain) || o.Certified != s.certLen {
			w.violate("server %d: the feed's chain differs from fork choice over its accepted events", s.idx)
		}
		if s.eng != nil && !slices.Equal(s.eng.Chain(), s.chain) {
			w.violate("server %d: the feed's chain differs from its engine's", s.idx)
		}
		if s == ref {
			w.rep.FinalTerm = o.Term
		}
	}
	// Fork choice over the union of all events gives the same chain.
	union := w.union()
	order, errs := consensus.ForkChoice(w.order.room, w.order.root, w.order.membership, union)
	if len(errs) > 0 {
		w.violate("union holds rejected events: %v", errs[0])
	}
	if !slices.Equal(dids(order.Chain), ref.chain) {
		w.violate("fork choice over the union differs from the servers' chain")
	}
	sealed := map[consensus.EventID]map[consensus.EventID]bool{}
	for _, ev := range union {
		if ev.Seal != nil {
			if sealed[ev.Seal.Slot] == nil {
				sealed[ev.Seal.Slot] = map[consensus.EventID]bool{}
			}
			sealed[ev.Seal.Slot][ev.Seal.Commit] = true
		}
	}
	for _, commits := range sealed {
		if len(commits) > 1 {
			w.rep.Forks++
		}
	}
	for _, e := range w.sc.Expect {
		if ok, v := e.Holds(w.rep); !e.Some && !ok {
			w.violate("scenario expectation %q failed: %s = %d", e.String(), e.Key, v)
		}
	}
}

// accepted returns the ordering events (commits and votes) s's feed
// records as accepted, as the ordering layer's input.
func (s *server) accepted() []consensus.Event {
	var out []consensus.Event
	for _, fe := range s.feed {
		if fe.order == nil && isOrdering(fe.kind) {
			if in, err := toInput(s.get(fe.event)); err == nil {
				out = append(out, in)
			}
		}
	}
	return out
}

// union returns every ordering event any server stores, sorted by ID.
func (w *world) union() []consensus.Event {
	seen := map[dag.EventID]*dag.Event{}
	for _, s := range w.servers {
		for _, le := range s.log(0) {
			if ev := s.get(le.ID); isOrdering(ev.Kind) {
				seen[le.ID] = ev
			}
		}
	}
	var out []consensus.Event
	for _, id := range sortedIDs(seen) {
		if in, err := toInput(seen[id]); err == nil {
			out = append(out, in)
		}
	}
	return out
}

func dids(ids []consensus.EventID) []dag.EventID {
	out := make([]dag.EventID, len(ids))
	for i, id := range ids {
		out[i] = did(id)
	}
	return out
}

func sortedIDs[V any](m map[dag.EventID]V) []dag.EventID {
	out := make([]dag.EventID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b dag.EventID) int { return bytes.Compare(a[:], b[:]) })
	return out
}
