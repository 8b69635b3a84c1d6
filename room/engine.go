package room

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Config configures an engine.
type Config struct {
	// Self is this server.
	Self dag.ServerID
	// Params are the ordering machine's parameters (consensus.DefaultParams
	// when zero).
	Params consensus.Params
	// TickLength is the wall-clock length of one Tick, used to turn the
	// machine's retention deadlines (in ticks) into unix milliseconds for
	// the order records.
	TickLength time.Duration
	// Now is the time at New or Restore; Tick moves it on.
	Now time.Time
}

// Vote is an ordering vote the host must sign as a DAG event of Kind with
// Content, step back into the engine, persist and only then publish. The
// host may step its signed votes in before they are durable, to collect
// the votes they cause in turn and persist them all at once, as long as
// none is published before it is durable; stepping a vote the engine
// already holds again (when it comes back through the arrival log) is a
// no-op.
type Vote struct {
	Kind    dag.Kind
	Content []byte
}

// Entry is one entry of the delivery feed: an accepted event, or (Order
// not nil) a change of the canonical chain.
type Entry struct {
	Event dag.EventID
	Kind  dag.Kind
	Order *OrderRecord
}

// Rejection is an event the engine did not accept.
type Rejection struct {
	Event  dag.EventID
	Kind   dag.Kind
	Origin dag.ServerID
	Err    *RejectError
}

// Ready is everything the host must do after Step, Check or Tick, in
// order: append Entries to the feed, sign, persist (one batch) and publish
// Votes and step them back in, account for Rejected; then Advance.
type Ready struct {
	Entries  []Entry
	Votes    []Vote
	Rejected []Rejection
	// Released lists losing branches whose retention ended.
	Released [][]dag.EventID
	// Evidence is proof of equivocation the machine found.
	Evidence []consensus.Evidence
	// StateChanged reports that the canonical room state or chain changed
	// (the host republishes what readers see).
	StateChanged bool
	// NewServers are servers that appear for the first time in a room
	// state the engine accepted (on any branch): from now on they may write
	// to the room (their events are admitted for storage).
	NewServers []dag.ServerID
}

// Empty reports whether the Ready holds nothing to do.
func (r *Ready) Empty() bool {
	return len(r.Entries) == 0 && len(r.Votes) == 0 && len(r.Rejected) == 0 && len(r.Released) == 0 &&
		len(r.Evidence) == 0 && !r.StateChanged && len(r.NewServers) == 0
}

// Engine is one room's acceptance and ordering core. It is not safe for
// concurrent use: the host drives it from one goroutine (or under a lock).
type Engine struct {
	cfg  Config
	room dag.RoomID
	m    *consensus.Machine
	b    *branchState

	certLen     int   // certified prefix of b.chain as last reported
	retainUntil int64 // deadline (unix ms) of the last RetainBranch not yet reported

	// version counts changes of the state entries and the chain; a Check
	// made at the current version stands for the Step of the same event.
	version uint64
	checked map[dag.EventID]checkResult

	servers map[dag.ServerID]bool // every server of every accepted state

	// groups are the public group states of the accepted commits' epochs
	// (MLS external observer), oldest first in groupOrder; creator is who
	// made the room, whose first commit bootstraps them.
	groups     map[dag.EventID]*mls.PublicGroup
	groupOrder []dag.EventID
	keptBy     map[dag.EventID]string // the device whose commit made each kept epoch
	// propEvents are, per kept epoch, the accepted proposal events by
	// their ProposalRef (rule R: a commit names them among its parents).
	propEvents map[dag.EventID]map[string]dag.EventID
	creator    struct {
		origin dag.ServerID
		client string
	}

	ready Ready
}

type checkResult struct {
	version uint64
	acc     accepted
}

// accepted is the outcome of authorizing one event.
type accepted struct {
	entry *StateEntry      // state-changing events
	input *consensus.Event // commits and votes, for the machine
	after *roomstate.State // commits and state events: the state after it
	// group is the public group state of epoch groupAt after the event
	// (a commit's own epoch, or a proposal's epoch with it recorded).
	group   *mls.PublicGroup
	groupAt dag.EventID
	// committer is the device whose commit starts epoch groupAt (commits
	// only; a proposal leaves it as it was).
	committer string
	// propRef is a proposal's ProposalRef in epoch groupAt.
	propRef []byte
}

// New starts the engine of the room that create (an authorized create
// event) begins.
func New(create *dag.Event, cfg Config) (*Engine, error) {
	initial, err := InitialState(create)
	if err != nil {
		return nil, err
	}
	if cfg.Params == (consensus.Params{}) {
		cfg.Params = consensus.DefaultParams()
	}
	room := create.RoomID()
	m, err := consensus.New(consensus.Config{
		Room:       room.CreateID().Bytes(),
		Root:       cid(create.ID()),
		Self:       consensus.ServerID(cfg.Self),
		Membership: membershipOf(initial, create.ID()),
		Params:     cfg.Params,
	})
	if err != nil {
		return nil, fmt.Errorf("room: ordering machine of room %v: %w", room, err)
	}
	e := &Engine{cfg: cfg, room: room, m: m, b: newBranchState(create.ID(), initial),
		checked: map[dag.EventID]checkResult{}, servers: map[dag.ServerID]bool{}, groups: map[dag.EventID]*mls.PublicGroup{}, keptBy: map[dag.EventID]string{},
		propEvents: map[dag.EventID]map[string]dag.EventID{}}
	cc, err := roomevent.DecodeCreate(create.Content)
	if err != nil { // InitialState decoded it
		return nil, rejectErr(ReasonMalformedContent, err)
	}
	e.creator.origin, e.creator.client = create.Origin, cc.Creator.Client
	e.ready.Entries = append(e.ready.Entries, Entry{Event: create.ID(), Kind: dag.KindCreate})
	e.ready.StateChanged = true
	e.noteServers(initial)
	return e, nil
}

// noteServers adds the servers of st not seen before to Ready.NewServers.
func (e *Engine) noteServers(st *roomstate.State) {
	if st == nil {
		return
	}
	for _, s := range st.Servers() {
		id := dag.ServerID(s.ID)
		if !e.servers[id] {
			e.servers[id] = true
			e.ready.NewServers = append(e.ready.NewServers, id)
		}
	}
}

// Servers returns every server of every room state the engine accepted,
// sorted: the servers that may write to the room.
func (e *Engine) Servers() []dag.ServerID {
	return sortServers(slices.Collect(maps.Keys(e.servers)))
}

// sortServers sorts ids by their bytes and returns them.
func sortServers(ids []dag.ServerID) []dag.ServerID {
	slices.SortFunc(ids, func(a, b dag.ServerID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// cid converts a DAG event ID to the consensus package's ID.
func cid(id dag.EventID) consensus.EventID { return consensus.EventID(id.Bytes()) }

// did converts a consensus event ID back; the machine only returns IDs the
// engine gave it, so a failure is a programming error reported as zero.
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

func isVote(k dag.Kind) bool { return k == dag.KindSeal || k == dag.KindAck || k == dag.KindSuspect }

// Room returns the room's ID.
func (e *Engine) Room() dag.RoomID { return e.room }

// Root returns the room's create event ID.
func (e *Engine) Root() dag.EventID { return e.b.root }

// State returns the room state of the canonical branch.
func (e *Engine) State() *roomstate.State { return e.b.current() }

// StateAt returns the room state of the epoch that commit epoch (or the
// create event) starts, on epoch's branch.
func (e *Engine) StateAt(epoch dag.EventID) (*roomstate.State, error) { return e.b.stateAt(epoch) }

// Tip returns the last canonical commit, or the create event.
func (e *Engine) Tip() dag.EventID { return e.b.tip() }

// Certified returns the last certified commit, or the create event.
func (e *Engine) Certified() dag.EventID {
	if e.certLen == 0 {
		return e.b.root
	}
	return e.b.chain[e.certLen-1]
}

// Chain returns a copy of the canonical chain of commits, oldest first.
func (e *Engine) Chain() []dag.EventID { return slices.Clone(e.b.chain) }

// CertifiedLen returns the length of the chain's certified prefix.
func (e *Engine) CertifiedLen() int { return e.certLen }

// Known reports whether id is the create event or an accepted commit.
func (e *Engine) Known(id dag.EventID) bool { return e.b.known(id) }

// Now returns the engine's time (the last Tick's).
func (e *Engine) Now() time.Time { return e.cfg.Now }

// FindEntry returns the newest of the last n state entries for which
// match is true.
func (e *Engine) FindEntry(n int, match func(*StateEntry) bool) (StateEntry, bool) {
	es := e.b.entries
	for i := len(es) - 1; i >= max(0, len(es)-n); i-- {
		if match(&es[i]) {
			return es[i], true
		}
	}
	return StateEntry{}, false
}

// HasReady reports whether Ready holds work.
func (e *Engine) HasReady() bool { return !e.ready.Empty() }

// Ready returns what the host must do now. It stays the same until
// Advance.
func (e *Engine) Ready() Ready { return e.ready }

// Advance tells the engine that the host has done everything in the last
// Ready.
func (e *Engine) Advance() { e.ready = Ready{} }

// Check authorizes a candidate event of this server (a local submission)
// against the state it would be accepted in, without accepting it. If the
// host stores it and steps it in before anything else changes the room,
// Step reuses this decision instead of authorizing again.
func (e *Engine) Check(ev *dag.Event) error {
	acc, err := e.authorizeEvent(ev)
	if err != nil {
		return err
	}
	if len(e.checked) > 64 {
		clear(e.checked) // checks not followed by their Step
	}
	e.checked[ev.ID()] = checkResult{version: e.version, acc: acc}
	return nil
}

// CheckLocal is Check for an event a client of this server submits, with
// the rules that hold only for those: a commit must build on the canonical
// tip (another commit already holds any other slot here, so the client
// rebuilds on the tip: ReasonStaleParent, checked first), and a message or
// proposal must be in the tip's epoch (a member who joined since could
// never decrypt it, so it would be acknowledged and yet lost for them:
// ReasonStaleEpoch, checked after authorization). Events of other servers
// are not held to these rules: during a partition each side writes in its
// own epochs.
func (e *Engine) CheckLocal(ev *dag.Event) error {
	tip := e.Tip()
	if ev.Kind == dag.KindCommit {
		c, err := roomevent.DecodeCommit(ev.Content)
		if err != nil {
			return rejectErr(ReasonMalformedContent, err)
		}
		if c.Parent != tip {
			return reject(ReasonStaleParent, "parent %v is not the canonical tip %v", c.Parent, tip)
		}
	}
	if err := e.Check(ev); err != nil {
		return err
	}
	if ev.Kind == dag.KindState {
		if err := e.checkAdoptable(ev); err != nil {
			delete(e.checked, ev.ID())
			return err
		}
	}
	if ev.Kind == dag.KindMessage || ev.Kind == dag.KindProposal {
		epoch, err := epochOf(ev)
		if err != nil {
			return err
		}
		if epoch != tip {
			delete(e.checked, ev.ID())
			return reject(ReasonStaleEpoch, "epoch %v is not the canonical tip's %v", epoch, tip)
		}
	}
	return nil
}

// checkAdoptable holds a local state event to what the next commit on the
// canonical tip will hold it to when it adopts it: it must apply to the
// tip's state with the pending state events the tip's next commit adopts
// (Refs). A state event that does not is refused now (ReasonRoomState and
// the other reasons of authorize), rather than accepted and never taking
// effect.
func (e *Engine) checkAdoptable(ev *dag.Event) error {
	entry, err := stateEntryOf(ev)
	if err != nil {
		return err
	}
	st, _, err := e.adoptPending(e.Tip(), MaxRefs)
	if err != nil {
		return err
	}
	_, err = adoptState(st, entry)
	return err
}

// Step accepts stored events of the room, in arrival order. A run of
// consecutive commits and votes goes to the ordering machine at once (one
// evaluation, no votes on intermediate states), before the next event
// whose authorization reads the canonical state.
func (e *Engine) Step(evs ...*dag.Event) {
	var run []consensus.Event
	var runEntries []Entry
	flush := func() {
		e.stepRun(run, runEntries)
		run, runEntries = nil, nil
	}
	for _, ev := range evs {
		if ev.Kind != dag.KindCommit && !isVote(ev.Kind) {
			flush()
		}
		if isVote(ev.Kind) && e.m.Has(cid(ev.ID())) {
			continue // an own vote stepped in before it was stored (see Ready.Votes)
		}
		if ev.RoomID() != e.room {
			e.rejected(ev, reject(ReasonNoState, "event %v is of room %v, not %v", ev.ID(), ev.RoomID(), e.room))
			continue
		}
		acc, err := e.accept(ev)
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) {
				re = rejectErr(ReasonMalformedContent, err)
			}
			e.rejected(ev, re)
			continue
		}
		entry := Entry{Event: ev.ID(), Kind: ev.Kind}
		if acc.input != nil {
			run, runEntries = append(run, *acc.input), append(runEntries, entry)
			continue
		}
		e.ready.Entries = append(e.ready.Entries, entry)
	}
	flush()
}

func (e *Engine) rejected(ev *dag.Event, re *RejectError) {
	e.ready.Rejected = append(e.ready.Rejected, Rejection{Event: ev.ID(), Kind: ev.Kind, Origin: ev.Origin, Err: re})
}

// accept authorizes ev (or takes its Check) and records its state entry.
func (e *Engine) accept(ev *dag.Event) (accepted, error) {
	var acc accepted
	if c, ok := e.checked[ev.ID()]; ok && c.version == e.version {
		acc = c.acc
	} else {
		var err error
		if acc, err = e.authorizeEvent(ev); err != nil {
			return acc, err
		}
	}
	delete(e.checked, ev.ID())
	if acc.entry != nil {
		e.b.appendEntry(*acc.entry)
		if acc.entry.Kind == dag.KindCommit && acc.after != nil {
			e.b.remember(ev.ID(), acc.after)
		}
		e.version++
		e.ready.StateChanged = true
	}
	e.noteServers(acc.after)
	if acc.group != nil {
		e.keepGroup(acc.groupAt, acc.group, acc.committer)
	}
	if acc.propRef != nil {
		e.noteProposal(acc.groupAt, ev.ID(), acc.propRef)
	}
	return acc, nil
}

// keepGroup records the public group state of epoch id (started by
// committer's commit; "" keeps the epoch's committer), dropping one beyond
// observerWindow (never the canonical tip's): the oldest of the committer
// that holds the most. Any member device can make commits on the tip
// without limit, each valid; a flood of them must evict its own states,
// not those of other devices' commits that may yet become canonical.
func (e *Engine) keepGroup(id dag.EventID, pg *mls.PublicGroup, committer string) {
	if _, ok := e.groups[id]; !ok {
		e.groupOrder = append(e.groupOrder, id)
	}
	e.groups[id] = pg
	if committer != "" {
		e.keptBy[id] = committer
	}
	e.version++
	for len(e.groupOrder) > observerWindow {
		i := e.evictable()
		old := e.groupOrder[i]
		e.groupOrder = slices.Delete(e.groupOrder, i, i+1)
		delete(e.groups, old)
		delete(e.keptBy, old)
		delete(e.propEvents, old)
		e.b.forget(old)
	}
}

// evictable returns the index in groupOrder of the oldest kept state of
// the committer that holds the most (ties: the one whose oldest is
// oldest), the canonical tip's aside.
func (e *Engine) evictable() int {
	tip := e.b.tip()
	count := map[string]int{}
	first := map[string]int{}
	for i, id := range e.groupOrder {
		if id == tip {
			continue
		}
		by := e.keptBy[id]
		if _, ok := first[by]; !ok {
			first[by] = i
		}
		count[by]++
	}
	best := ""
	found := false
	for by, n := range count {
		if !found || n > count[best] || (n == count[best] && first[by] < first[best]) {
			best, found = by, true
		}
	}
	return first[best]
}

// authorizeEvent decides on one event without changing the engine:
//
//   - create: a room has one (a second is refused);
//   - commit: against the state of its parent's epoch on the parent's
//     branch with the state events it adopts applied (those among its DAG
//     parents that no commit of the parent's branch adopted, ascending by
//     ID; one that does not apply fails it: ReasonAdoptedState); the
//     parent must be an accepted commit or the create event;
//   - proposal, message: against the state of their epoch, which must be
//     an accepted commit or the create event;
//   - state: only what is a function of the event (stateEntryOf); it
//     takes effect with the commit that adopts it;
//   - votes: their content decodes; who may vote is the machine's to
//     decide (rule M3: the servers of any membership it has seen), not the
//     room state, since a server added by a commit votes on the next slot
//     and its votes can arrive in the same batch as the commit.
func (e *Engine) authorizeEvent(ev *dag.Event) (accepted, error) {
	switch ev.Kind {
	case dag.KindCreate:
		return accepted{}, reject(ReasonDuplicateCreate, "room %v already has its create event", e.room)
	case dag.KindCommit:
		c, err := roomevent.DecodeCommit(ev.Content)
		if err != nil {
			return accepted{}, rejectErr(ReasonMalformedContent, err)
		}
		if err := e.checkParent(ev, c.Parent, "commit's parent"); err != nil {
			return accepted{}, err
		}
		if err := e.observable(c.Parent); err != nil {
			return accepted{}, err
		}
		ps, err := e.b.stateAt(c.Parent)
		if err != nil {
			return accepted{}, err
		}
		adopted := e.b.adoptable(ev, c.Parent)
		if ps, err = adoptStates(ps, adopted); err != nil {
			return accepted{}, err
		}
		after, err := authorize(ps, ev)
		if err != nil {
			return accepted{}, err
		}
		pg, err := e.observeCommit(ev, c, ps)
		if err != nil {
			return accepted{}, err
		}
		acc := e.commitInput(ev, c, after, adopted)
		acc.group, acc.groupAt, acc.committer = pg, ev.ID(), c.Sender.Client
		return acc, nil
	case dag.KindState:
		entry, err := stateEntryOf(ev)
		if err != nil {
			return accepted{}, err
		}
		return accepted{entry: entry}, nil
	case dag.KindProposal, dag.KindMessage:
		epoch, err := epochOf(ev)
		if err != nil {
			return accepted{}, err
		}
		if err := e.checkParent(ev, epoch, "epoch"); err != nil {
			return accepted{}, err
		}
		if err := e.observable(epoch); err != nil {
			return accepted{}, err
		}
		st, err := e.b.stateAt(epoch)
		if err != nil {
			return accepted{}, err
		}
		if _, err := authorize(st, ev); err != nil {
			return accepted{}, err
		}
		if ev.Kind == dag.KindMessage {
			c, _ := roomevent.DecodeMessage(ev.Content)
			return accepted{}, e.observeMessage(epoch, c)
		}
		c, _ := roomevent.DecodeProposal(ev.Content)
		pg, ref, err := e.observeProposal(ev, epoch, c, st)
		if err != nil {
			return accepted{}, err
		}
		return accepted{group: pg, groupAt: epoch, propRef: ref}, nil
	case dag.KindSeal, dag.KindAck, dag.KindSuspect:
		in, err := voteInput(ev)
		if err != nil {
			return accepted{}, rejectErr(ReasonMalformedVote, err)
		}
		return accepted{input: &in}, nil
	}
	return accepted{}, reject(ReasonMalformedContent, "unknown kind %v", ev.Kind)
}

// observable checks, before the state of epoch is computed, that epoch is
// an accepted commit whose public group state is kept, or the create
// event: events naming any other epoch are refused at the cost of a map
// lookup.
func (e *Engine) observable(epoch dag.EventID) error {
	if !e.b.known(epoch) {
		return reject(ReasonUnknownEpoch, "epoch %v is not an accepted commit or the create event of the room", epoch)
	}
	if _, ok := e.groups[epoch]; !ok && epoch != e.b.root {
		return reject(ReasonMLSEpochGone, "no public group state is kept for epoch %v", epoch)
	}
	return nil
}

// stateEntryOf checks a standalone state event for what is a function of
// the event alone (its content decodes, it leaves the servers alone, the
// device signature verifies) and returns its state entry. It changes no
// state: a commit adopts it (adoptStates), and only then is it held to the
// room state, on that commit's branch.
func stateEntryOf(ev *dag.Event) (*StateEntry, error) {
	c, err := roomevent.DecodeState(ev.Content)
	if err != nil {
		return nil, rejectErr(ReasonMalformedContent, err)
	}
	if changesServers(c.Changes) {
		// The servers of an epoch must not depend on which state events
		// arrived before an event naming it (ServersAt, the electorate).
		return nil, reject(ReasonServersByCommit, "a standalone state event may not change the room's servers; a commit does")
	}
	if err := c.Verify(ev.RoomID()); err != nil {
		return nil, rejectErr(ReasonBadClientSignature, err)
	}
	return &StateEntry{ID: ev.ID(), Kind: dag.KindState, Actor: actorOf(ev, c.Sender), Changes: c.Changes}, nil
}

// commitInput is the machine input and state entry of an authorized
// commit with the state after it and the state events it adopts.
func (e *Engine) commitInput(ev *dag.Event, c *roomevent.Commit, after *roomstate.State, adopted []StateEntry) accepted {
	cc := &consensus.Commit{Parent: cid(c.Parent)}
	if changesServers(c.Changes) && after != nil {
		// Rule M1: the commit installs the server set it leaves behind, for
		// the votes on its children; the commit's ID seeds the hub order.
		m := membershipOf(after, ev.ID())
		cc.Membership = &m
	}
	entry := &StateEntry{ID: ev.ID(), Kind: dag.KindCommit, Parent: c.Parent, Actor: actorOf(ev, c.Sender), Changes: c.Changes, Adopted: adopted}
	return accepted{entry: entry, input: &consensus.Event{ID: cid(ev.ID()), From: consensus.ServerID(ev.Origin), Commit: cc}, after: after}
}

// epochOf returns the epoch a proposal or message names.
func epochOf(ev *dag.Event) (dag.EventID, error) {
	if ev.Kind == dag.KindMessage {
		c, err := roomevent.DecodeMessage(ev.Content)
		if err != nil {
			return dag.EventID{}, rejectErr(ReasonMalformedContent, err)
		}
		return c.Epoch, nil
	}
	c, err := roomevent.DecodeProposal(ev.Content)
	if err != nil {
		return dag.EventID{}, rejectErr(ReasonMalformedContent, err)
	}
	return c.Epoch, nil
}

// voteInput decodes a seal, ack or suspect event into the machine's input.
func voteInput(ev *dag.Event) (consensus.Event, error) {
	out := consensus.Event{ID: cid(ev.ID()), From: consensus.ServerID(ev.Origin)}
	switch ev.Kind {
	case dag.KindSeal:
		s, err := consensus.ParseSeal(ev.Content)
		if err != nil {
			return out, err
		}
		out.Seal = &s
	case dag.KindAck:
		a, err := consensus.ParseAck(ev.Content)
		if err != nil {
			return out, err
		}
		out.Ack = &a
	case dag.KindSuspect:
		s, err := consensus.ParseSuspect(ev.Content)
		if err != nil {
			return out, err
		}
		out.Suspect = &s
	default:
		return out, fmt.Errorf("room: %v is not a vote", ev.Kind)
	}
	return out, nil
}

// stepRun hands a run of consecutive commits and votes to the machine at
// once and turns its actions into Ready. Events the machine refuses leave
// the run's feed entries.
func (e *Engine) stepRun(run []consensus.Event, runEntries []Entry) {
	if len(run) == 0 {
		return
	}
	acts, errs := e.m.StepBatch(run)
	bad := map[dag.EventID]*RejectError{}
	for _, err := range errs {
		var re *consensus.RejectError
		if errors.As(err, &re) {
			bad[did(re.ID)] = rejectErr(Reason("vote-"+re.Reason.String()), err)
		}
	}
	for i, en := range runEntries {
		if re, ok := bad[en.Event]; ok {
			e.ready.Rejected = append(e.ready.Rejected, Rejection{Event: en.Event, Kind: en.Kind, Origin: dag.ServerID(run[i].From), Err: re})
			continue
		}
		e.ready.Entries = append(e.ready.Entries, en)
	}
	e.perform(acts)
}

// Tick advances the machine by one tick at time now and turns what is due
// (suspecting a silent hub, sealing tentatively, releasing branches) into
// Ready.
func (e *Engine) Tick(now time.Time) {
	e.cfg.Now = now
	e.perform(e.m.Tick())
}

// perform turns the machine's actions into Ready: votes to cast,
// retention deadlines for the next order record, released branches,
// evidence; then reports the change of the chain, if any.
func (e *Engine) perform(acts []consensus.Action) {
	if len(acts) == 0 {
		// The machine reports every change of its chain as an action, so
		// without actions there is nothing to report.
		return
	}
	for _, a := range acts {
		var v Vote
		var err error
		switch a := a.(type) {
		case consensus.SendSeal:
			v.Kind = dag.KindSeal
			v.Content, err = a.Seal.Marshal()
		case consensus.SendAck:
			v.Kind = dag.KindAck
			v.Content, err = a.Ack.Marshal()
		case consensus.SendSuspect:
			v.Kind = dag.KindSuspect
			v.Content, err = a.Suspect.Marshal()
		case consensus.RetainBranch:
			ticks := time.Duration(a.Deadline - e.m.Now())
			e.retainUntil = e.cfg.Now.Add(ticks * e.cfg.TickLength).UnixMilli()
			continue
		case consensus.ReleaseBranch:
			e.ready.Released = append(e.ready.Released, dids(a.Commits))
			continue
		case consensus.EquivocationFound:
			e.ready.Evidence = append(e.ready.Evidence, a.Evidence)
			continue
		default:
			// OrderChanged and Certified: report derives them from the
			// machine's chain, so restarts and batches report the same.
			continue
		}
		if err != nil {
			// The machine's own votes always encode; not voting is safe
			// (the machine keeps its promise anyway).
			continue
		}
		e.ready.Votes = append(e.ready.Votes, v)
	}
	if rec := e.report(); rec != nil {
		e.ready.Entries = append(e.ready.Entries, Entry{Order: rec})
		e.ready.StateChanged = true
		e.noteServers(e.b.current())
	}
}
