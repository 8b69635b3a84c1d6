package consensus

import (
	"errors"
	"fmt"
	"slices"
)

// Params are the machine's timing and retention parameters, in ticks and
// commits. The node chooses the tick length (the simulator uses one tick per
// simulated millisecond-scale step; see docs/consensus.md).
type Params struct {
	// SealTimeout is how long the frontier slot may have a proposed commit
	// but no certified one before the server suspects the term's hub.
	SealTimeout uint64
	// TentativeTimeout is how long the canonical tip may have an unsealed
	// child before the term's hub (rank 0) seals it tentatively; a candidate
	// of rank r waits TentativeTimeout + r*TentativeStep.
	TentativeTimeout uint64
	// TentativeStep staggers tentative sealing by candidate rank.
	TentativeStep uint64
	// Horizon is the rewind horizon in commits: a reorg undoing more
	// commits is flagged BeyondHorizon.
	Horizon int
	// RetainTicks is how long a losing branch's secrets may be kept.
	RetainTicks uint64
}

// DefaultParams returns the defaults documented in docs/consensus.md.
func DefaultParams() Params {
	return Params{SealTimeout: 150, TentativeTimeout: 400, TentativeStep: 100, Horizon: 5, RetainTicks: 3000}
}

// Config configures a Machine.
type Config struct {
	// Room is the room ID; it feeds the default hub-candidate order.
	Room []byte
	// Root is the room's create event: the slot of the first commit.
	Root EventID
	// Self is this server.
	Self ServerID
	// Membership is the room's initial server set and hub order.
	Membership Membership
	// Params are the timeouts and bounds; see [DefaultParams].
	Params Params
}

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("consensus: invalid config")

type timer struct {
	on    bool
	term  uint64
	slot  EventID
	since uint64
}

// arm starts the timer for (term, slot) unless it already runs for them,
// and returns the ticks elapsed since it started.
func (t *timer) arm(term uint64, slot EventID, now uint64) uint64 {
	if !t.on || t.term != term || t.slot != slot {
		*t = timer{on: true, term: term, slot: slot, since: now}
	}
	return now - t.since
}

type ownSeal struct {
	commit    EventID
	tentative bool
}

// Machine is one server's ordering state for one room. It is not safe for
// concurrent use; the caller serializes Step and Tick.
type Machine struct {
	cfg   Config
	known map[ServerID]bool // servers of any known membership
	set   *eventSet
	v     *view
	dirty bool
	now   uint64

	promised bool
	promise  uint64 // highest term this server suspected
	ownAcks  map[slotTerm]EventID
	ackTop   map[EventID]Ack // highest-term own ack per slot
	ownSeals map[slotTerm]ownSeal

	canon     []EventID
	certDone  int
	evidence  map[Evidence]bool
	retained  []RetainBranch
	stuck     timer
	tentative timer
}

// New returns a machine with an empty event set. To restart after a crash,
// call New and Step every persisted event, the server's own votes included.
func New(cfg Config) (*Machine, error) {
	if cfg.Root == "" || len(cfg.Root) > MaxIDLen {
		return nil, fmt.Errorf("%w: root ID of %d bytes", ErrConfig, len(cfg.Root))
	}
	if len(cfg.Membership.Servers) == 0 {
		return nil, fmt.Errorf("%w: no servers", ErrConfig)
	}
	m := &Machine{
		cfg:      cfg,
		known:    map[ServerID]bool{},
		set:      newEventSet(),
		dirty:    true,
		ownAcks:  map[slotTerm]EventID{},
		ackTop:   map[EventID]Ack{},
		ownSeals: map[slotTerm]ownSeal{},
		evidence: map[Evidence]bool{},
	}
	for _, s := range cfg.Membership.Servers {
		m.known[s] = true
	}
	m.refresh()
	return m, nil
}

// Step records one event and returns the actions it causes. A duplicate is
// ignored. A rejected event returns a [*RejectError] and changes nothing.
func (m *Machine) Step(ev Event) ([]Action, error) {
	added, err := m.record(ev)
	if err != nil || !added {
		return nil, err
	}
	return m.drive(), nil
}

// StepBatch records several events, as a sync response delivers them, and
// returns the actions for the whole batch: the same actions Step would
// return for the last event had the others been stepped first, without
// acting on the intermediate states. Rejected events are skipped and
// returned as errors.
func (m *Machine) StepBatch(evs []Event) ([]Action, []error) {
	var errs []error
	changed := false
	for _, ev := range evs {
		added, err := m.record(ev)
		if err != nil {
			errs = append(errs, err)
		}
		changed = changed || added
	}
	if !changed {
		return nil, errs
	}
	return m.drive(), errs
}

func (m *Machine) record(ev Event) (bool, error) {
	if err := ev.validate(); err != nil {
		return false, reject(ReasonMalformed, ev.ID, err)
	}
	if ev.Commit == nil && !m.known[ev.From] {
		return false, reject(ReasonUnauthorized, ev.ID, ErrNotMember)
	}
	if !m.set.add(ev) {
		return false, nil
	}
	if ev.Commit != nil && ev.Commit.Membership != nil {
		for _, s := range ev.Commit.Membership.Servers {
			m.known[s] = true
		}
	}
	if ev.From == m.cfg.Self {
		m.noteOwn(ev)
	}
	if !m.dirty && ev.Ack != nil && m.ackInert(ev.From, *ev.Ack) {
		return true, nil // the view is unchanged; see ackInert
	}
	if !m.dirty && ev.Commit != nil && m.commitFresh(ev.ID, *ev.Commit) {
		return true, nil // the view was extended in place; see commitFresh
	}
	m.dirty = true
	return true, nil
}

// commitFresh handles a commit that nothing in the set refers to yet (no
// seal names it, no ack for it in its slot, no child) and that installs no
// membership: it cannot be eligible in fork choice, so the view changes
// only by the new leaf in the commit tree, which commitFresh adds in place
// (nothing at all if its parent is unreachable). It reports false, leaving
// the view to a full evaluation, for any other commit.
// TestIncrementalViewMatchesReference checks this shortcut.
func (m *Machine) commitFresh(id EventID, c Commit) bool {
	set, v := m.set, m.v
	if c.Membership != nil || id == m.cfg.Root || set.sealsFor[id] > 0 || len(set.byParent[id]) > 0 ||
		len(set.ackTerms[[2]EventID{c.Parent, id}]) > 0 {
		return false
	}
	e, ok := v.elect[c.Parent]
	if !ok {
		return true // unreachable: not in the view at all
	}
	kids := set.byParent[c.Parent]
	if slices.Contains(kids, m.cfg.Root) {
		return false // a commit claiming the root's ID: leave it to evaluate
	}
	v.children[c.Parent] = kids
	v.elect[id] = e
	return true
}

// ackInert reports whether the view, which is current for the set before
// from's ack a was added, is also the view of the set with it. Acks enter
// the view only through equivocation evidence and certification, so the
// view is unchanged unless from cast another ack for a's slot and term
// naming another commit (the evidence may change), or a could complete a
// certificate: its slot is certified, its commit is a child of the slot
// not yet certified in a term at or below a's, and a quorum of the slot's
// electorate has now acked it in a's term.
// TestIncrementalViewMatchesReference checks this shortcut.
func (m *Machine) ackInert(from ServerID, a Ack) bool {
	if _, ok := m.set.conflicts[voteKey{EvidenceAck, from, a.Slot, a.Term}]; ok {
		return false
	}
	v := m.v
	e := v.elect[a.Slot]
	if e == nil || !v.isCertified(a.Slot, m.cfg.Root) {
		return true
	}
	if r, ok := m.set.commits[a.Commit]; !ok || r.Parent != a.Slot || v.elect[a.Commit] == nil {
		return true
	}
	if t, ok := v.certified[a.Commit]; ok && t <= a.Term {
		return true
	}
	n := 0
	for _, x := range m.set.ackVoters[ackKey{a.Slot, a.Commit, a.Term}] {
		if e.servers[x.from] && !v.isAckExcluded(x.from, a.Term) {
			n++
		}
	}
	return n < e.quorum
}

// Restore loads persisted events into a fresh machine without acting on
// them one by one, then returns the actions due for the whole set. A restart
// must use Restore rather than Step: stepping a partial set could make the
// server vote differently from the votes it already cast and persisted.
// Events that Step would reject are skipped and returned as errors.
func (m *Machine) Restore(events []Event) ([]Action, []error) {
	var errs []error
	for _, ev := range events {
		if ev.Commit != nil && ev.Commit.Membership != nil {
			for _, s := range ev.Commit.Membership.Servers {
				m.known[s] = true
			}
		}
	}
	for _, ev := range events {
		if err := ev.validate(); err != nil {
			errs = append(errs, reject(ReasonMalformed, ev.ID, err))
			continue
		}
		if ev.Commit == nil && !m.known[ev.From] {
			errs = append(errs, reject(ReasonUnauthorized, ev.ID, ErrNotMember))
			continue
		}
		if m.set.add(ev) && ev.From == m.cfg.Self {
			m.noteOwn(ev)
		}
	}
	m.dirty = true
	return m.drive(), errs
}

// Tick advances logical time by one tick and returns the actions due.
func (m *Machine) Tick() []Action {
	m.now++
	var out []Action
	kept := m.retained[:0]
	for _, r := range m.retained {
		if r.Deadline <= m.now {
			out = append(out, ReleaseBranch{Commits: r.Commits})
		} else {
			kept = append(kept, r)
		}
	}
	m.retained = kept
	return append(out, m.drive()...)
}

// noteOwn rebuilds the local vote state from the server's own events, so
// that a restarted machine keeps its promises.
func (m *Machine) noteOwn(ev Event) {
	switch {
	case ev.Ack != nil:
		m.recordAck(*ev.Ack)
	case ev.Seal != nil:
		k := slotTerm{ev.Seal.Slot, ev.Seal.Term}
		if old, ok := m.ownSeals[k]; !ok || (old.tentative && !ev.Seal.Tentative) {
			m.ownSeals[k] = ownSeal{ev.Seal.Commit, ev.Seal.Tentative}
		}
	case ev.Suspect != nil:
		m.recordPromise(ev.Suspect.Term)
	}
}

func (m *Machine) recordAck(a Ack) {
	m.ownAcks[slotTerm{a.Slot, a.Term}] = a.Commit
	if top, ok := m.ackTop[a.Slot]; !ok || a.Term > top.Term {
		m.ackTop[a.Slot] = a
	}
}

func (m *Machine) recordPromise(t uint64) {
	if !m.promised || t > m.promise {
		m.promised, m.promise = true, t
	}
}

func (m *Machine) refresh() {
	if m.dirty {
		m.v = evaluate(m.cfg.Room, m.cfg.Root, &m.cfg.Membership, m.set)
		m.dirty = false
	}
}

func (m *Machine) drive() []Action {
	m.refresh()
	out := m.reportOrder(nil)
	out = m.ack(out)
	out = m.suspect(out)
	out = m.hubSeal(out)
	out = m.tentativeSeal(out)
	return out
}

// reportOrder emits the changes of the canonical chain, certificates and
// evidence since the last call. It runs at every drive, so its cost is
// that of the change (forkPoint), not of the chain.
func (m *Machine) reportOrder(out []Action) []Action {
	v := m.v
	for _, e := range v.evidence {
		k := e
		k.First, k.Second = "", ""
		if !m.evidence[k] {
			m.evidence[k] = true
			out = append(out, EquivocationFound{Evidence: e})
		}
	}
	if fp := forkPoint(m.canon, v.chain); fp < len(m.canon) || fp < len(v.chain) {
		r := Reorg{
			ForkPoint: m.cfg.Root,
			Undone:    slices.Clone(m.canon[fp:]),
			Added:     slices.Clone(v.chain[fp:]),
			Tip:       m.cfg.Root,
		}
		if fp > 0 {
			r.ForkPoint = v.chain[fp-1]
		}
		if len(v.chain) > 0 {
			r.Tip = v.chain[len(v.chain)-1]
		}
		r.BeyondHorizon = len(r.Undone) > m.cfg.Params.Horizon
		out = append(out, OrderChanged{Reorg: r})
		if len(r.Undone) > 0 {
			rb := RetainBranch{Commits: r.Undone, Deadline: m.now + m.cfg.Params.RetainTicks}
			m.retained = append(m.retained, rb)
			out = append(out, rb)
		}
		m.canon = append(m.canon[:fp], v.chain[fp:]...)
	}
	if v.certLen < m.certDone {
		m.certDone = v.certLen // only after proven ack equivocation
	}
	for ; m.certDone < v.certLen; m.certDone++ {
		c := v.chain[m.certDone]
		out = append(out, Certified{Commit: c, Term: v.certified[c]})
	}
	return out
}

// forkPoint returns the length of the common prefix of two canonical
// chains, in O(log n): both are paths from the root down the commit tree
// (each commit's slot is its one parent), so equal commits at index i mean
// equal prefixes up to i, and the first index where they differ is found
// by bisection. Unchanged chains (equal length and tip) cost O(1), and
// reportOrder's work is proportional to the change, not to the chain.
func forkPoint(a, b []EventID) int {
	n := min(len(a), len(b))
	if n > 0 && a[n-1] == b[n-1] {
		return n
	}
	lo, hi := 0, n // a[:lo] == b[:lo]; a[hi-1] != b[hi-1] unless hi == 0
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if a[mid] == b[mid] {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// closed reports whether slot already has a certified child.
func (m *Machine) closed(slot EventID) bool {
	for _, c := range m.v.children[slot] {
		if _, ok := m.v.certified[c]; ok {
			return true
		}
	}
	return false
}

// ack votes for valid hub seals (rules A1-A5).
func (m *Machine) ack(out []Action) []Action {
	v, self := m.v, m.cfg.Self
	// Only the certified frontier can be acked: a hub seal needs a
	// certified slot, and every other certified slot is closed.
	for _, s := range v.hubSeals[v.frontier] {
		k := slotTerm{s.slot, s.term}
		if !v.elect[s.slot].servers[self] || m.closed(s.slot) {
			continue
		}
		if m.promised && s.term <= m.promise {
			continue // A2: the Paxos promise
		}
		if _, done := m.ownAcks[k]; done {
			continue // A1: one ack per slot and term
		}
		if len(v.sealed[k]) > 1 {
			continue // A3: the hub equivocated in this slot and term
		}
		if top, ok := m.ackTop[s.slot]; ok && top.Term > s.term {
			continue // A4: never ack below an earlier ack
		}
		a := Ack{Slot: s.slot, Commit: s.commit, Term: s.term}
		m.recordAck(a)
		out = append(out, SendAck{Ack: a})
	}
	return out
}

// suspect votes to end the current term when the frontier slot has waited
// SealTimeout for a certificate, or at once if the hub equivocated (rule H4).
func (m *Machine) suspect(out []Action) []Action {
	v, t := m.v, m.v.term
	f := v.frontier
	e := v.elect[f]
	if !e.servers[m.cfg.Self] || (m.promised && m.promise >= t) {
		m.stuck.on = false
		return out
	}
	faulty := v.isExcluded(e.hub(t), t)
	if !faulty && (len(v.children[f]) == 0 || m.closed(f)) {
		m.stuck.on = false
		return out
	}
	if waited := m.stuck.arm(t, f, m.now); !faulty && waited < m.cfg.Params.SealTimeout {
		return out
	}
	s := Suspect{Term: t}
	for _, slot := range sortedKeys(m.ackTop) {
		if !m.closed(slot) {
			s.Reports = append(s.Reports, m.ackTop[slot])
		}
	}
	m.recordPromise(t)
	m.stuck.on = false
	return append(out, SendSuspect{Suspect: s})
}

// justification returns the IDs of every suspect(t-1) vote from e's servers
// and their reports, or false if they are fewer than a quorum.
func (m *Machine) justification(e *electorate, t uint64) ([]EventID, [][]AckReport, bool) {
	if t == 0 {
		return nil, nil, true
	}
	var ids []EventID
	for s, id := range m.v.suspects[t-1] {
		if e.servers[s] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	reports, ok := m.v.justify(m.set, e, t, ids)
	return ids, reports, ok
}

// hubSeal seals, as the term's hub, a commit for the certified frontier
// (rules H5-H7): the commit the Paxos rule (S5) forces, else the canonical
// child, else the first child seen.
func (m *Machine) hubSeal(out []Action) []Action {
	v, t, f := m.v, m.v.term, m.v.frontier
	e := v.elect[f]
	if e.hub(t) != m.cfg.Self || m.closed(f) || len(v.children[f]) == 0 {
		return out
	}
	k := slotTerm{f, t}
	prev, sealed := m.ownSeals[k]
	if sealed && !prev.tentative {
		return out
	}
	ids, reports, ok := m.justification(e, t)
	if !ok {
		return out
	}
	forced, free, ok := v.constraint(e, f, reports)
	if !ok {
		return out // H3: wait for more suspect votes
	}
	c := forced
	if free {
		c = m.freeChoice(f)
	}
	if c == "" || !slices.Contains(v.children[f], c) || (sealed && prev.commit != c) {
		return out
	}
	s := Seal{Slot: f, Commit: c, Term: t, Justification: ids}
	m.ownSeals[k] = ownSeal{c, false}
	return append(out, SendSeal{Seal: s})
}

// freeChoice picks the commit for slot when no ack constrains it: the
// canonical child if the chain continues there, else the first child seen.
func (m *Machine) freeChoice(slot EventID) EventID {
	v := m.v
	if i := slices.Index(v.chain, slot); i >= 0 && i+1 < len(v.chain) {
		return v.chain[i+1]
	} else if slot == m.cfg.Root && len(v.chain) > 0 {
		return v.chain[0]
	}
	var first EventID
	var seq uint64
	for _, c := range v.children[slot] {
		if r := m.set.commits[c]; first == "" || r.seq < seq {
			first, seq = c, r.seq
		}
	}
	return first
}

// tentativeSeal seals the canonical tip's first child tentatively once the
// tip has waited TentativeTimeout + rank*TentativeStep (rules T1-T3).
func (m *Machine) tentativeSeal(out []Action) []Action {
	v, t := m.v, m.v.term
	tip := m.cfg.Root
	if len(v.chain) > 0 {
		tip = v.chain[len(v.chain)-1]
	}
	e := v.elect[tip]
	rank, isCand := e.rank(m.cfg.Self, t)
	if !isCand || len(v.children[tip]) == 0 || (rank == 0 && v.isCertified(tip, m.cfg.Root)) {
		m.tentative.on = false
		return out
	}
	if _, sealed := m.ownSeals[slotTerm{tip, t}]; sealed {
		return out
	}
	p := m.cfg.Params
	if m.tentative.arm(t, tip, m.now) < p.TentativeTimeout+uint64(rank)*p.TentativeStep {
		return out
	}
	ids, _, ok := m.justification(e, t)
	if !ok {
		return out
	}
	c := m.freeChoice(tip)
	m.ownSeals[slotTerm{tip, t}] = ownSeal{c, true}
	return append(out, SendSeal{Seal: Seal{Slot: tip, Commit: c, Term: t, Tentative: true, Rank: rank, Justification: ids}})
}

// Now returns the machine's logical time in ticks.
func (m *Machine) Now() uint64 { return m.now }

// Canonical returns the canonical commit chain, oldest first.
func (m *Machine) Canonical() []EventID { m.refresh(); return slices.Clone(m.v.chain) }

// CertifiedLen returns how many leading commits of Canonical are certified.
func (m *Machine) CertifiedLen() int { m.refresh(); return m.v.certLen }

// IsCertified reports whether commit id is certified in this event set.
func (m *Machine) IsCertified(id EventID) bool {
	m.refresh()
	_, ok := m.v.certified[id]
	return ok
}

// Term returns the current term.
func (m *Machine) Term() uint64 { m.refresh(); return m.v.term }

// Evidence returns the equivocation evidence in the event set.
func (m *Machine) Evidence() []Evidence { m.refresh(); return slices.Clone(m.v.evidence) }

// Has reports whether the event set holds id.
func (m *Machine) Has(id EventID) bool { return m.set.has(id) }
