package sim

import (
	"cmp"
	"crypto/ed25519"
	"fmt"
	"math"
	"slices"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/room"
)

// logBatch is how many arrival-log entries one Step takes (the node's).
const logBatch = 256

// server is one simulated node: a real room engine driven as the node
// drives it (node/rooms.go processLocked, node/order_ingest.go drain,
// castVotes and tickAll, node/order_restore.go restoreRoom), its events in
// a real dag.MemStore, and its delivery feed. The store, the feed and the
// position of the arrival log processed survive a crash; the engine is
// rebuilt from the feed with room.Restore.
type server struct {
	w     *world
	idx   int
	id    dag.ServerID
	key   ed25519.PrivateKey
	up    bool
	eng   *room.Engine
	store *dag.MemStore
	// stored counts the events in store's arrival log (its last Seq).
	stored uint64

	// Persisted, as the node persists them atomically: the delivery feed
	// (accepted events and order records, in order) and the last arrival-
	// log position processed into it.
	feed      []feedEntry
	processed uint64

	// What a reader of the feed knows, kept up to date as the feed grows
	// (so it survives crashes too): the canonical chain the order records
	// describe, its certified prefix, the commits ever reported certified,
	// and each message's accepted copies by epoch.
	chain    []dag.EventID
	chainSet map[dag.EventID]bool
	certLen  int
	chainVer int // bumped whenever the chain changes
	certSeen map[dag.EventID]bool
	copies   map[string][]dag.EventID

	// writers are the servers whose events the mesh admits (the engine's
	// NewServers and the servers of each state it published).
	writers map[dag.ServerID]bool

	// retained are the losing branches whose secrets this server keeps,
	// with their deadlines (unix ms; persisted by the node, so they
	// survive crashes; after a crash the node itself deletes them on
	// deadline).
	retained    []retention
	incarnation int

	equivocate bool
	twins      []consensus.Seal // seals to equivocate on once processing is done
	twinning   bool

	withholdUntil uint64
	held          []delivery
}

// feedEntry is one entry of a server's delivery feed: an accepted event,
// or an order record.
type feedEntry struct {
	event dag.EventID
	kind  dag.Kind
	order *room.OrderRecord
}

type retention struct {
	first       dag.EventID // the branch's oldest commit
	deadline    int64       // unix ms
	incarnation int
}

func newServer(w *world, i int) *server {
	id, key := serverKey(i)
	s := &server{w: w, idx: i, id: id, key: key, store: dag.NewMemStore(simLimits),
		chainSet: map[dag.EventID]bool{w.create.ID(): true}, certSeen: map[dag.EventID]bool{},
		copies: map[string][]dag.EventID{}}
	if st := s.put(w.create); st != dag.StatusStored {
		panic("sim: store did not take the create event")
	}
	return s
}

func (s *server) config() room.Config {
	return room.Config{Self: s.id, Params: s.w.sc.Params, TickLength: tickLength, Now: s.w.time()}
}

// start brings the server up: the first time its engine starts from the
// create event; after a crash it is restored from the feed.
func (s *server) start() {
	s.up = true
	s.incarnation++
	s.writers = map[dag.ServerID]bool{}
	if len(s.feed) > 0 && !s.restore() {
		s.up = false
		return
	}
	s.process()
}

// restore rebuilds the engine from the persisted feed (its accepted events
// except messages, and its order records) and this server's own votes
// stored after the processed position, as node/order_restore.go does; the
// order records the engine is ready with join the feed.
func (s *server) restore() bool {
	var record []room.Recorded
	for _, fe := range s.feed {
		switch {
		case fe.order != nil:
			record = append(record, room.Recorded{Order: fe.order})
		case fe.kind != dag.KindMessage:
			record = append(record, room.Recorded{Event: s.get(fe.event)})
		}
	}
	var own []*dag.Event
	for _, le := range s.log(s.processed) {
		if ev := s.get(le.ID); ev.Origin == s.id && isVote(ev.Kind) {
			own = append(own, ev)
		}
	}
	eng, err := room.Restore(record, own, s.config())
	if err != nil {
		s.w.violate("server %d: restore: %v", s.idx, err)
		return false
	}
	s.eng = eng
	out, rejected := s.drain()
	s.rejected(rejected)
	var recs []feedEntry
	for _, fe := range out {
		if fe.order != nil {
			recs = append(recs, fe)
		}
	}
	s.appendFeed(recs)
	return true
}

func (s *server) crash() {
	s.up, s.eng, s.writers, s.twins = false, nil, nil, nil
}

// tip is the canonical tip the feed describes (the create event before
// the first commit).
func (s *server) tip() dag.EventID {
	if len(s.chain) == 0 {
		return s.w.create.ID()
	}
	return s.chain[len(s.chain)-1]
}

// log returns the store's arrival log after position after.
func (s *server) log(after uint64) []dag.LogEntry {
	log, err := s.store.Log(s.w.room, after, math.MaxInt)
	if err != nil {
		panic(fmt.Sprintf("sim: log: %v", err)) // MemStore fails only when closed
	}
	return log
}

// get returns a stored event.
func (s *server) get(id dag.EventID) *dag.Event {
	ev, err := s.store.Get(id)
	if err != nil {
		panic(fmt.Sprintf("sim: get %v: %v", id, err)) // the sim reads only stored events
	}
	return ev
}

func (s *server) has(id dag.EventID) bool {
	ok, _ := s.store.Has(id)
	return ok
}

// put stores ev and returns its status, counting the events it stored
// (ev itself unless it waits for parents, and the pending events it
// released). An event whose parents have not arrived waits in the store,
// which releases it when they come.
func (s *server) put(ev *dag.Event) dag.PutStatus {
	res, err := s.store.Put(ev)
	if err != nil {
		s.w.violate("server %d: store rejected event %v: %v", s.idx, res.ID, err)
		return res.Status
	}
	if res.Status == dag.StatusStored {
		s.stored++
	}
	s.stored += uint64(len(res.Released))
	return res.Status
}

// sign makes a local event of kind with content on the events the engine
// requires among its parents (room.Engine.Refs: rule R, and a commit's
// state events to adopt) and the room's oldest tips (dag.MergeParents,
// trimmed by room.Engine.Parents), at the simulated time, as the node does.
func (s *server) sign(kind dag.Kind, content []byte) (*dag.Event, error) {
	var refs []dag.EventID
	if s.eng != nil {
		var err error
		if refs, err = s.eng.Refs(kind, content); err != nil {
			return nil, err
		}
	}
	prev, err := dag.MergeParents(s.store, s.w.room, refs...)
	if err != nil {
		return nil, err
	}
	if s.eng != nil {
		prev = s.eng.Parents(kind, content, prev)
	}
	return dag.NewSigned(s.key, s.w.room, kind, prev, s.w.ms(), content)
}

// submit is a local client's submission (node/rooms.go submitLocked): the
// engine checks it (CheckLocal: a commit on the canonical tip, a message
// in its epoch), the store takes it, it is published, and the arrival log
// is processed (the engine's Step reuses the check).
func (s *server) submit(ev *dag.Event) bool { return s.submitWith(ev, s.eng.CheckLocal) }

// submitWith is submit with the engine check given: an equivocating hub
// submits its twin commit, which is not on its canonical tip, with
// Engine.Check, skipping its own local-submission rules.
func (s *server) submitWith(ev *dag.Event, check func(*dag.Event) error) bool {
	if err := check(ev); err != nil {
		s.w.violate("server %d: honest %v %v refused: %v", s.idx, ev.Kind, ev.ID(), err)
		return false
	}
	if st := s.put(ev); st != dag.StatusStored {
		s.w.violate("server %d: local %v not stored: %v", s.idx, ev.Kind, st)
		return false
	}
	s.broadcast(ev)
	s.process()
	return true
}

// process steps the events stored since the processed position, in
// arrival order, carries out what the engine is ready with, and appends
// the feed entries with the new position (node/rooms.go processLocked).
// Own votes cast on the way are stored and come back through the log.
func (s *server) process() {
	for s.up {
		log, err := s.store.Log(s.w.room, s.processed, logBatch)
		if err != nil {
			panic(fmt.Sprintf("sim: log: %v", err)) // MemStore fails only when closed
		}
		if len(log) == 0 {
			break
		}
		evs := make([]*dag.Event, 0, len(log))
		for _, le := range log {
			evs = append(evs, s.get(le.ID))
		}
		if s.eng == nil {
			// The room's first event is its create event.
			eng, err := room.New(evs[0], s.config())
			if err != nil {
				panic(fmt.Sprintf("sim: engine of the create event: %v", err)) // the sim built it
			}
			s.eng, evs = eng, evs[1:]
		}
		s.eng.Step(evs...)
		out, rejected := s.drain()
		s.rejected(rejected)
		s.appendFeed(out)
		s.processed = log[len(log)-1].Seq
	}
	s.twin()
}

// rejected accounts for events the engine refused: no honest event may be
// refused (a refused stored event would also be missing on restart).
func (s *server) rejected(rs []room.Rejection) {
	for _, rj := range rs {
		s.w.rep.VotesRejected++
		s.w.violate("server %d: the engine refused %v %v of server %x: %v", s.idx, rj.Kind, rj.Event, rj.Origin[:4], rj.Err)
	}
}

// drain carries out what the engine is ready with until it is ready with
// nothing, in the node's order (node/order_ingest.go drain): feed entries,
// rejections, writers, released branches, evidence, the published state;
// then the votes are signed and stepped in at once, so that the votes they
// cause are signed in the same drain, and all are stored with one PutAll
// at the end and only then published. It returns the feed entries and the
// rejections.
func (s *server) drain() ([]feedEntry, []room.Rejection) {
	var feed []feedEntry
	var rejected []room.Rejection
	var votes []*dag.Event // signed, stepped in, stored at the end
	for s.eng.HasReady() {
		rd := s.eng.Ready()
		for _, en := range rd.Entries {
			feed = append(feed, feedEntry{event: en.Event, kind: en.Kind, order: en.Order})
		}
		rejected = append(rejected, rd.Rejected...)
		for _, id := range rd.NewServers {
			s.writers[id] = true
		}
		for _, c := range rd.Released {
			s.w.rep.ReleasedBranches++
			s.retained = slices.DeleteFunc(s.retained, func(r retention) bool {
				return r.incarnation == s.incarnation && len(c) > 0 && r.first == c[0]
			})
		}
		s.w.rep.EquivocationsDetected += len(rd.Evidence)
		if rd.StateChanged {
			for _, srv := range s.eng.State().Servers() {
				s.writers[dag.ServerID(srv.ID)] = true
			}
		}
		s.eng.Advance()
		if len(rd.Votes) > 0 {
			evs := s.signVotes(rd.Votes, votes)
			votes = append(votes, evs...)
			s.eng.Step(evs...)
		}
	}
	if len(votes) > 0 {
		s.storeVotes(votes)
	}
	return feed, rejected
}

// signVotes signs the votes, the first on the room's oldest tips (or on
// the last vote of this drain), each on the one before it
// (node/order_ingest.go signVotes). An equivocating hub remembers its
// seals to seal a twin commit too.
func (s *server) signVotes(votes []room.Vote, prev []*dag.Event) []*dag.Event {
	var parents []dag.EventID
	if len(prev) > 0 {
		parents = []dag.EventID{prev[len(prev)-1].ID()}
	} else {
		var err error
		if parents, err = dag.MergeParents(s.store, s.w.room); err != nil {
			panic(fmt.Sprintf("sim: tips: %v", err)) // MemStore fails only when closed
		}
	}
	evs := make([]*dag.Event, 0, len(votes))
	for _, v := range votes {
		ev, err := dag.NewSigned(s.key, s.w.room, v.Kind, parents, s.w.ms(), v.Content)
		if err != nil {
			s.w.violate("server %d: sign vote: %v", s.idx, err)
			break
		}
		evs = append(evs, ev)
		parents = []dag.EventID{ev.ID()}
		if s.equivocate && v.Kind == dag.KindSeal {
			if seal, err := consensus.ParseSeal(v.Content); err == nil && !seal.Tentative {
				s.twins = append(s.twins, seal)
			}
		}
	}
	return evs
}

// storeVotes stores the votes with one PutAll and then publishes them
// (node/order_ingest.go storeVotes); they come back through the arrival
// log, where the engine, which holds them already, skips them.
func (s *server) storeVotes(evs []*dag.Event) {
	res, errs := s.store.PutAll(evs)
	for i, r := range res {
		if errs[i] != nil || (r.Status != dag.StatusStored && r.Status != dag.StatusDuplicate) {
			s.w.violate("server %d: store vote %v: %v %v", s.idx, evs[i].ID(), r.Status, errs[i])
			return
		}
		if r.Status == dag.StatusStored {
			s.stored++
		}
	}
	for _, ev := range evs {
		s.broadcast(ev)
	}
}

// appendFeed appends entries to the feed and updates what its reader
// knows.
func (s *server) appendFeed(entries []feedEntry) {
	for _, fe := range entries {
		s.feed = append(s.feed, fe)
		switch {
		case fe.order != nil:
			s.applyOrder(fe.order)
		case fe.kind == dag.KindMessage:
			if m, ok := s.w.messages[fe.event]; ok {
				s.copies[m.id] = append(s.copies[m.id], m.epoch)
			}
		}
	}
}

// applyOrder follows an order record: the chain loses Undone and gains
// Applied, and its certified prefix ends at Certified. It checks that no
// certified commit is undone and that the record's tip is the chain's.
func (s *server) applyOrder(rec *room.OrderRecord) {
	w := s.w
	parse := func(ids []string) []dag.EventID {
		out := make([]dag.EventID, 0, len(ids))
		for _, str := range ids {
			id, err := dag.ParseEventID(str)
			if err != nil {
				w.violate("server %d: order record names %q: %v", s.idx, str, err)
				continue
			}
			out = append(out, id)
		}
		return out
	}
	undone := parse(rec.Undone) // newest first
	if len(undone) > len(s.chain) {
		w.violate("server %d: order record undoes %d of %d commits", s.idx, len(undone), len(s.chain))
		undone = undone[:len(s.chain)]
	}
	for _, c := range undone {
		if s.certSeen[c] {
			w.violate("server %d: certified commit %v undone", s.idx, c)
		}
	}
	if n := len(undone); n > 0 {
		w.rep.Reorgs++
		w.rep.MaxReorgDepth = max(w.rep.MaxReorgDepth, n)
		if n > w.sc.Params.Horizon {
			w.rep.BeyondHorizon++
		}
		if rec.RetainUntil > 0 {
			w.rep.RetainedBranches++
			s.retained = append(s.retained, retention{first: undone[n-1], deadline: rec.RetainUntil, incarnation: s.incarnation})
		}
	}
	for _, c := range undone {
		delete(s.chainSet, c)
	}
	applied := parse(rec.Applied)
	for _, c := range applied {
		s.chainSet[c] = true
	}
	s.chain = append(s.chain[:len(s.chain)-len(undone):len(s.chain)-len(undone)], applied...)
	s.chainVer++
	if tip, err := dag.ParseEventID(rec.Tip); err != nil || tip != s.tip() {
		w.violate("server %d: order record's tip %s is not the chain's %v", s.idx, rec.Tip, s.tip())
	}
	old := s.certLen
	s.certLen = 0
	if cert, err := dag.ParseEventID(rec.Certified); err != nil {
		w.violate("server %d: order record's certified commit %q: %v", s.idx, rec.Certified, err)
	} else if cert != w.create.ID() {
		s.certLen = slices.Index(s.chain, cert) + 1
		if s.certLen == 0 {
			w.violate("server %d: order record's certified commit %v is not on the chain", s.idx, cert)
		}
	}
	if s.certLen < old {
		w.violate("server %d: the certified prefix shrank from %d to %d", s.idx, old, s.certLen)
	}
	for _, c := range s.chain[min(old, s.certLen):s.certLen] {
		if !s.certSeen[c] {
			s.certSeen[c] = true
			w.certified(s, c)
		}
	}
}

// tick advances the engine to the simulated time and carries out what is
// due (node/order_ingest.go tickAll), then steps the votes it cast.
func (s *server) tick() {
	s.eng.Tick(s.w.time())
	if s.eng.HasReady() {
		out, rejected := s.drain()
		s.rejected(rejected)
		s.appendFeed(out)
	}
	s.process()
	s.checkRetention()
}

// checkRetention enforces "no retained secret outlives its deadline": the
// current engine must have released every branch whose deadline passed;
// branches of an earlier incarnation are deleted by the node on deadline.
func (s *server) checkRetention() {
	now := s.w.ms()
	s.retained = slices.DeleteFunc(s.retained, func(r retention) bool {
		if r.incarnation != s.incarnation {
			return true // the node deletes these on its own timer
		}
		if r.deadline < now {
			s.w.rep.HeldPastDeadline++
			return true
		}
		return false
	})
}

// receiveAll stores a batch of events from the network and processes the
// arrival log: an event whose parents have not arrived waits in the store
// until they do, and is stepped in the batch that releases it. As the
// node's mesh does, it admits only events of the room's writers.
//
// Honest deliveries are not signature-checked here: every event on the
// simulated network was signed by its origin's real key, and one Ed25519
// verification per delivery (most events reach every server, many twice
// through sync) would cost more CPU than the rest of the sweep. Forged
// events only enter through receiveForged, which verifies them as a node
// must.
//
// from is the sending server. When an event must wait for parents, the
// server asks the sender for what it lacks at once, as a node fetches an
// event's missing parents from the peer that sent it.
func (s *server) receiveAll(evs []*dag.Event, from int) {
	waiting := false
	for _, ev := range evs {
		if s.has(ev.ID()) {
			continue
		}
		if !s.writers[ev.Origin] {
			s.w.violate("server %d: an honest event of non-writer %x", s.idx, ev.Origin[:4])
			continue
		}
		st := s.put(ev)
		waiting = waiting || st == dag.StatusPending || st == dag.StatusAlreadyPending
	}
	if waiting {
		s.pull(from)
	}
	s.process()
}

// receiveForged is the attacker's path. The event is validated as a node
// validates what it receives (dag.Validate: fields, real Ed25519
// signature, room context). The mesh would also refuse an event whose
// origin is no writer of the room; the simulator lets such an event
// through to the engine instead, to show that the engine refuses it too
// (the ordering machine's rule M3). It is stepped before it is stored and
// stored only if the engine accepts it.
func (s *server) receiveForged(ev *dag.Event) {
	if s.has(ev.ID()) {
		return
	}
	if err := dag.Validate(ev, s.store); err != nil {
		s.w.rep.ForgedRejected++
		return
	}
	s.eng.Step(ev)
	out, rejected := s.drain()
	refused := false
	for _, rj := range rejected {
		if rj.Event == ev.ID() {
			refused = true
			s.w.rep.VotesRejected++
			continue
		}
		s.rejected([]room.Rejection{rj})
	}
	if !refused {
		s.w.violate("server %d: the engine accepted a forged %v", s.idx, ev.Kind)
		s.put(ev)
	}
	s.appendFeed(out)
}

// twin makes an equivocating hub seal a second commit for each slot and
// term it sealed: its client's real MLS commit on the slot, published to
// everyone, and a seal of it made outside the engine from the real seal's
// content, sent only to the odd half of the servers. The real seal went
// to everyone, so the odd half holds both, which is the evidence; the
// even half learns the twin seal only through sync from the odd half.
func (s *server) twin() {
	if s.twinning {
		return
	}
	s.twinning = true
	defer func() { s.twinning = false }()
	for len(s.twins) > 0 && s.up {
		real := s.twins[0]
		s.twins = s.twins[1:]
		c := s.w.clientAt(s.idx)
		slot := did(real.Slot)
		if c == nil || !s.w.canAct(c.dev, slot) {
			continue // no device of this server can commit on the slot
		}
		tw, err := s.w.makeCommit(c, s, slot, fmt.Sprintf("byz/%d", s.w.now), nil)
		if err != nil {
			s.w.violate("server %d: twin commit: %v", s.idx, err)
			continue
		}
		if !s.submitWith(tw, s.eng.Check) {
			continue
		}
		fake := real
		fake.Commit = cid(tw.ID())
		content, err := fake.Marshal()
		if err != nil {
			s.w.violate("server %d: twin seal: %v", s.idx, err)
			continue
		}
		sealB, err := s.sign(dag.KindSeal, content)
		if err != nil {
			s.w.violate("server %d: twin seal: %v", s.idx, err)
			continue
		}
		s.w.rep.EquivocatingSeals++
		s.w.equivAt = s.w.now
		for j := range s.w.servers {
			if j != s.idx && j%2 == 1 {
				s.sendTo(j, packet{events: []*dag.Event{sealB}, syncFrom: -1})
			}
		}
	}
}

func (s *server) broadcast(ev *dag.Event) {
	for j := range s.w.servers {
		if j != s.idx {
			s.sendTo(j, packet{events: []*dag.Event{ev}, syncFrom: -1})
		}
	}
}

func (s *server) sendTo(j int, p packet) {
	if s.w.now < s.withholdUntil {
		s.held = append(s.held, delivery{from: s.idx, to: j, p: p})
		return
	}
	s.w.net.send(s.w.now, s.idx, j, p)
}

func (s *server) release() {
	held := s.held
	s.held = nil
	for _, d := range held {
		s.w.net.send(s.w.now, d.from, d.to, d.p)
	}
}

// pull asks one peer for the events this server lacks. The request stands
// for the set of events it has stored now: the first `stored` entries of
// its store's append-only arrival log.
func (s *server) pull(peer int) {
	s.sendTo(peer, packet{syncFrom: s.idx, have: s.stored})
}

// serve answers a pull request with the events the requester had not
// stored when it asked, in this store's arrival order (parents before
// children). It walks back from this store's tips and stops at events the
// requester holds: a store holds an event only with all its ancestors, so
// the walk costs the missing events plus their frontier, not the whole
// log. Reading the requester's store stands in for the request listing
// its heads.
func (s *server) serve(p packet) {
	req := s.w.servers[p.syncFrom]
	held := func(id dag.EventID) bool {
		// Has first: Meta's not-found error formats the ID, which costs
		// more than the lookup.
		if ok, _ := req.store.Has(id); !ok {
			return false
		}
		m, err := req.store.Meta(id)
		return err == nil && m.Seq <= p.have
	}
	stack, err := s.store.Tips(s.w.room)
	if err != nil {
		panic(fmt.Sprintf("sim: tips: %v", err)) // MemStore fails only when closed
	}
	seen := map[dag.EventID]bool{}
	var missing []dag.LogEntry
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] || held(id) {
			continue
		}
		seen[id] = true
		m, err := s.store.Meta(id)
		if err != nil {
			panic(fmt.Sprintf("sim: meta of a stored event: %v", err))
		}
		missing = append(missing, dag.LogEntry{Seq: m.Seq, ID: id})
		parents, err := s.store.Parents(id)
		if err != nil {
			panic(fmt.Sprintf("sim: parents of a stored event: %v", err))
		}
		stack = append(stack, parents...)
	}
	if len(missing) == 0 {
		return
	}
	slices.SortFunc(missing, func(a, b dag.LogEntry) int { return cmp.Compare(a.Seq, b.Seq) })
	evs := make([]*dag.Event, len(missing))
	for i, le := range missing {
		evs[i] = s.get(le.ID)
	}
	s.sendTo(p.syncFrom, packet{events: evs, syncFrom: -1})
}
