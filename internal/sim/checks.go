package sim

import (
	"slices"

	"github.com/rhizome-chat/rhizome/consensus"
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
	var longest []consensus.EventID
	for _, s := range hs {
		if !s.up {
			continue
		}
		if c, _ := s.chain(); len(c) > len(longest) {
			longest = c
		}
	}
	for _, s := range hs {
		if !s.up {
			continue
		}
		if c, _ := s.chain(); !slices.Equal(c, longest[:len(c)]) {
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
	var ref []consensus.EventID
	for i, s := range hs {
		if !s.up {
			return false
		}
		c, _ := s.chain()
		if i == 0 {
			ref = c
		} else if !slices.Equal(ref, c) {
			return false
		}
		if s.m.CertifiedLen() != len(c) {
			return false
		}
	}
	for _, c := range w.clients {
		if len(c.changes) > 0 {
			return false
		}
		_, onChain := w.servers[c.home].chain()
		for _, m := range c.msgs {
			if !onChain[m.epoch] {
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
		copies := s.messageCopies()
		_, onChain := s.chain()
		for _, c := range w.clients {
			for _, m := range c.msgs {
				if !slices.ContainsFunc(copies[m.id], func(e consensus.EventID) bool { return onChain[e] }) {
					lost++
				}
			}
		}
	}
	return lost
}

func (w *world) reorg(s *server, r consensus.Reorg) {
	if len(r.Undone) == 0 {
		return
	}
	w.rep.Reorgs++
	w.rep.MaxReorgDepth = max(w.rep.MaxReorgDepth, len(r.Undone))
	if r.BeyondHorizon {
		w.rep.BeyondHorizon++
	}
	for _, c := range r.Undone {
		if s.certSeen[c] {
			w.violate("server %d: certified commit %x undone", s.idx, string(c)[:4])
		}
	}
}

func (w *world) certified(s *server, c consensus.EventID) {
	s.certSeen[c] = true
	ev := s.lookup(toDagID(c))
	if ev == nil {
		w.violate("server %d: certified unknown commit", s.idx)
		return
	}
	if prev, ok := w.certBySlot[ev.Parent]; ok && prev != c {
		w.violate("two certified commits in one slot: %x and %x", string(prev)[:4], string(c)[:4])
	}
	w.certBySlot[ev.Parent] = c
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
	ref, refSet := hs[0].chain()
	w.rep.FinalChainLen = len(ref)
	w.rep.FinalTerm = hs[0].m.Term()
	w.rep.Converged = w.quiescent()
	w.closePeriod()
	w.rep.PacketsSent, w.rep.PacketsDropped, w.rep.PacketsDuplicated = w.net.sent, w.net.dropped, w.net.duplicated

	// Agreement and liveness at quiescence.
	for _, s := range hs[1:] {
		if c, _ := s.chain(); !slices.Equal(ref, c) {
			w.violate("servers %d and %d disagree on the canonical chain", hs[0].idx, s.idx)
		}
	}
	if !w.rep.Converged {
		w.violate("not quiescent after %d settle ticks", w.sc.Settle)
	}
	if w.rep.ChangesCertified != w.rep.Changes {
		w.violate("%d of %d changes certified", w.rep.ChangesCertified, w.rep.Changes)
	}
	// Finality: every commit ever certified is on the final chain.
	for _, slot := range sortedIDs(w.certBySlot) {
		if c := w.certBySlot[slot]; !refSet[c] {
			w.violate("certified commit %x is not canonical at the end", string(c)[:4])
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
	// Each machine's state is the pure function of its persisted events.
	for _, s := range w.servers {
		var own []consensus.Event
		for _, ev := range s.ordering() {
			in, _ := ev.toInput()
			own = append(own, in)
		}
		o, _ := consensus.ForkChoice([]byte(roomID), w.root, w.membership, own)
		if c, _ := s.chain(); !slices.Equal(o.Chain, c) {
			w.violate("server %d: machine chain differs from fork choice over its persisted events", s.idx)
		}
	}
	// Fork choice over the union of all events gives the same chain.
	union := w.union()
	order, errs := consensus.ForkChoice([]byte(roomID), w.root, w.membership, union)
	if len(errs) > 0 {
		w.violate("union holds rejected events: %v", errs[0])
	}
	if !slices.Equal(order.Chain, ref) {
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

// union returns every ordering event any server holds, sorted by ID.
func (w *world) union() []consensus.Event {
	seen := map[consensus.EventID]*event{}
	for _, s := range w.servers {
		for _, ev := range s.ordering() {
			seen[ev.ID] = ev
		}
	}
	var out []consensus.Event
	for _, id := range sortedIDs(seen) {
		in, err := seen[id].toInput()
		if err == nil {
			out = append(out, in)
		}
	}
	return out
}

func sortedIDs[V any](m map[consensus.EventID]V) []consensus.EventID {
	out := make([]consensus.EventID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
