package sim

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
)

// server is one simulated node: a real consensus.Machine, its persisted
// events in a real dag.MemStore (which survives crashes: the machine is
// rebuilt from the store's arrival log), and the faults the script gives it.
type server struct {
	w     *world
	idx   int
	id    consensus.ServerID
	key   ed25519.PrivateKey
	up    bool
	m     *consensus.Machine
	store *dag.MemStore
	// stored counts the events in store's arrival log (its last Seq).
	stored uint64
	// votes holds the payloads of this server's stored votes, rebuilt
	// from the store at start.
	votes map[string]bool

	copies   map[string][]consensus.EventID // message ID -> epochs of its copies
	certSeen map[consensus.EventID]bool     // finality this server reported (persisted)

	// retained are the losing branches whose secrets this server keeps,
	// with their deadlines (persisted by the node, so they survive crashes;
	// after a crash the node itself deletes them on deadline).
	retained    []retention
	incarnation int

	equivocate    bool
	withholdUntil uint64
	held          []delivery

	chainCache []consensus.EventID
	chainSet   map[consensus.EventID]bool
	chainOK    bool
	chainVer   int // bumped whenever the canonical chain changes
}

func (s *server) config() consensus.Config {
	return consensus.Config{
		Room: []byte(roomID), Root: s.w.root, Self: s.id,
		Membership: s.w.membership, Params: s.w.sc.Params,
	}
}

func (s *server) start() {
	m, err := consensus.New(s.config())
	if err != nil {
		panic(fmt.Sprintf("sim: config: %v", err)) // programmer error: the sim builds the config
	}
	s.m, s.up, s.chainOK = m, true, false
	s.incarnation++
	// Everything the machine and the vote index know is rebuilt from the
	// store's arrival log, the only state that survives the crash.
	var inputs []consensus.Event
	clear(s.votes)
	s.stored = uint64(len(s.log()))
	for _, ev := range s.ordering() {
		if ev.Origin == s.id && ev.Kind != kindCommit {
			s.votes[voteKey(ev.Kind, ev.Payload)] = true
		}
		in, err := ev.toInput()
		if err != nil {
			panic(fmt.Sprintf("sim: persisted event does not decode: %v", err))
		}
		inputs = append(inputs, in)
	}
	acts, errs := m.Restore(inputs)
	if len(errs) > 0 {
		s.w.violate("server %d: restore rejected persisted events: %v", s.idx, errs[0])
	}
	s.handle(acts)
}

func (s *server) crash() {
	s.up, s.m, s.chainOK = false, nil, false
}

// chain returns the canonical chain and its set, cached until the next
// persisted event (the chain is a function of the event set).
func (s *server) chain() ([]consensus.EventID, map[consensus.EventID]bool) {
	if !s.chainOK {
		if c := s.m.Canonical(); s.chainSet == nil || !slices.Equal(c, s.chainCache) {
			s.chainCache = c
			s.chainSet = map[consensus.EventID]bool{s.w.root: true}
			for _, c := range s.chainCache {
				s.chainSet[c] = true
			}
			s.chainVer++
		}
		s.chainOK = true
	}
	return s.chainCache, s.chainSet
}

func (s *server) tip() consensus.EventID {
	c, _ := s.chain()
	if len(c) == 0 {
		return s.w.root
	}
	return c[len(c)-1]
}

// ordering returns the stored ordering events (not the create event, not
// messages) in arrival order, read from the store's log.
func (s *server) ordering() []*event {
	var out []*event
	for _, le := range s.log() {
		ev := s.lookup(le.ID)
		if ev.Kind != kindMessage && ev.Kind != dag.KindCreate {
			out = append(out, ev)
		}
	}
	return out
}

// log returns the store's whole arrival log of the room.
func (s *server) log() []dag.LogEntry {
	log, err := s.store.Log(s.w.room, 0, math.MaxInt)
	if err != nil {
		panic(fmt.Sprintf("sim: log: %v", err)) // MemStore fails only when closed
	}
	return log
}

// lookup returns a stored event, or nil if the store does not hold it.
func (s *server) lookup(id dag.EventID) *event {
	ev, err := s.store.Get(id)
	if err != nil {
		return nil
	}
	return s.w.wrap(ev)
}

func (s *server) has(id consensus.EventID) bool {
	ok, _ := s.store.Has(toDagID(id))
	return ok
}

// put stores ev and returns the events stored by this call in store order:
// ev itself unless it waits for parents (or was stored before), then the
// pending events it released. Events whose parents have not arrived wait
// in the store, which releases them when the parents come.
func (s *server) put(ev *event) []*event {
	res, err := s.store.Put(ev.ev)
	if err != nil {
		s.w.violate("server %d: store rejected event %v: %v", s.idx, res.ID, err)
		return nil
	}
	var out []*event
	if res.Status == dag.StatusStored {
		out = append(out, ev)
	}
	for _, id := range res.Released {
		out = append(out, s.lookup(id))
	}
	s.stored += uint64(len(out))
	return out
}

// note updates the bookkeeping for a newly stored event.
func (s *server) note(ev *event) {
	if ev.Kind == kindMessage {
		msg, _, _ := cutAttempt(ev.Payload)
		s.copies[msg] = append(s.copies[msg], ev.Parent)
		return // messages do not change the chain
	}
	s.chainOK = false
}

// receiveAll stores a batch of events from the network and steps the
// ordering events the store now holds as one batch: an event whose parents
// have not arrived waits in the store until they do, and is stepped in the
// batch that releases it.
//
// Honest deliveries are not signature-checked here: every event on the
// simulated network was signed by its origin's real key through
// newEvent, and one Ed25519 verification per delivery (most events reach
// every server, many twice through sync) would cost more CPU than the rest
// of the sweep. Forged events only enter through receiveForged, which
// verifies them as a node must.
//
// from is the sending server, or -1 for a local event. When an event must
// wait for parents, the server asks the sender for what it lacks at once,
// as a node fetches an event's missing parents from the peer that sent it.
func (s *server) receiveAll(evs []*event, from int) {
	var batch []consensus.Event
	waiting := false
	for _, ev := range evs {
		if s.has(ev.ID) {
			continue
		}
		stored := s.put(ev)
		waiting = waiting || len(stored) == 0
		for _, e := range stored {
			s.note(e)
			if e.Kind == kindMessage {
				continue
			}
			in, err := e.toInput()
			if err != nil {
				s.w.violate("server %d: stored event does not decode: %v", s.idx, err)
				continue
			}
			batch = append(batch, in)
		}
	}
	if waiting && from >= 0 {
		s.pull(from)
	}
	var acts []consensus.Action
	var errs []error
	switch len(batch) {
	case 0:
		return
	case 1:
		a, err := s.m.Step(batch[0])
		acts = a
		if err != nil {
			errs = append(errs, err)
		}
	default:
		acts, errs = s.m.StepBatch(batch)
	}
	for _, err := range errs {
		var rej *consensus.RejectError
		if !errors.As(err, &rej) {
			s.w.violate("server %d: untyped Step error: %v", s.idx, err)
			continue
		}
		// Honest events never break the stateless rules the machine
		// checks; a rejected stored event would break restart.
		s.w.violate("server %d: machine rejected a stored event: %v", s.idx, err)
		s.w.rep.VotesRejected++
	}
	s.handle(acts)
}

// receive stores and steps one event from the network or a local client.
func (s *server) receive(ev *event) { s.receiveAll([]*event{ev}, -1) }

// receiveForged is the attacker's path: it validates the event as a node
// does (dag.Validate: fields, real Ed25519 signature, room context), lets
// the machine judge it, and stores it only if both accept.
func (s *server) receiveForged(ev *event) {
	if s.has(ev.ID) {
		return
	}
	if err := dag.Validate(ev.ev, s.store); err != nil {
		s.w.rep.ForgedRejected++
		return
	}
	in, err := ev.toInput()
	if err != nil {
		s.w.rep.VotesRejected++
		return
	}
	acts, err := s.m.Step(in)
	if err != nil {
		var rej *consensus.RejectError
		if !errors.As(err, &rej) {
			s.w.violate("server %d: untyped Step error: %v", s.idx, err)
		}
		s.w.rep.VotesRejected++
		return
	}
	for _, e := range s.put(ev) {
		s.note(e)
	}
	s.handle(acts)
}

// handle performs actions in order, persisting each vote before sending it.
func (s *server) handle(acts []consensus.Action) {
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		switch a := a.(type) {
		case consensus.SendSeal:
			acts = append(acts, s.vote(kindSeal, a.Seal.Marshal)...)
			if s.equivocate && !a.Seal.Tentative {
				s.equivocateOn(a.Seal)
			}
		case consensus.SendAck:
			acts = append(acts, s.vote(kindAck, a.Ack.Marshal)...)
		case consensus.SendSuspect:
			acts = append(acts, s.vote(kindSuspect, a.Suspect.Marshal)...)
		case consensus.OrderChanged:
			s.w.reorg(s, a.Reorg)
		case consensus.Certified:
			s.w.certified(s, a.Commit)
		case consensus.RetainBranch:
			s.w.rep.RetainedBranches++
			s.retained = append(s.retained, retention{first: a.Commits[0], deadline: a.Deadline, incarnation: s.incarnation})
		case consensus.ReleaseBranch:
			s.w.rep.ReleasedBranches++
			s.retained = slices.DeleteFunc(s.retained, func(r retention) bool {
				return r.incarnation == s.incarnation && r.first == a.Commits[0]
			})
		case consensus.EquivocationFound:
			s.w.rep.EquivocationsDetected++
		}
	}
}

type retention struct {
	first       consensus.EventID
	deadline    uint64 // in the machine's ticks
	incarnation int
}

// checkRetention enforces "no retained secret outlives its deadline": the
// current machine must have released every branch whose deadline passed;
// branches of an earlier incarnation are deleted by the node on deadline.
func (s *server) checkRetention() {
	if !s.up {
		return
	}
	now := s.m.Now()
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

func (s *server) vote(k kind, marshal func() ([]byte, error)) []consensus.Action {
	payload, err := marshal()
	if err != nil {
		s.w.violate("server %d: machine produced an unencodable vote: %v", s.idx, err)
		return nil
	}
	// A vote is a function of its payload: one the machine repeats (after
	// a restart, say) is the event already stored, not a new one.
	vk := voteKey(k, payload)
	if s.votes[vk] {
		return nil
	}
	ev := s.w.newEvent(k, s, s.key, "", payload)
	in, _ := ev.toInput()
	acts, err := s.m.Step(in)
	if err != nil {
		s.w.violate("server %d: own vote rejected: %v", s.idx, err)
		return nil
	}
	s.votes[vk] = true
	for _, e := range s.put(ev) {
		s.note(e)
	}
	s.broadcast(ev)
	return acts
}

func voteKey(k kind, payload []byte) string { return string(append([]byte{byte(k)}, payload...)) }

// equivocateOn makes a Byzantine hub seal a second commit for the same slot
// and term, sending each seal to a different half of the servers.
func (s *server) equivocateOn(real consensus.Seal) {
	twin := s.w.newEvent(kindCommit, s, s.key, real.Slot, fmt.Appendf(nil, "byz/%d/%x", s.w.now, real.Commit))
	s.receive(twin)
	s.broadcast(twin)
	fake := real
	fake.Commit = twin.ID
	payload, err := fake.Marshal()
	if err != nil {
		s.w.violate("server %d: twin seal: %v", s.idx, err)
		return
	}
	sealB := s.w.newEvent(kindSeal, s, s.key, "", payload)
	s.w.rep.EquivocatingSeals++
	s.w.equivAt = s.w.now
	for j := range s.w.servers {
		if j != s.idx && j%2 == 1 {
			s.sendTo(j, packet{events: []*event{sealB}, syncFrom: -1})
		}
	}
	// The real seal went to everyone; the odd half now holds both, which is
	// the evidence. The even half learns the twin only through sync from
	// the odd half once the evidence spreads.
}

func (s *server) broadcast(ev *event) {
	for j := range s.w.servers {
		if j != s.idx {
			s.sendTo(j, packet{events: []*event{ev}, syncFrom: -1})
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
	evs := make([]*event, len(missing))
	for i, le := range missing {
		evs[i] = s.lookup(le.ID)
	}
	s.sendTo(p.syncFrom, packet{events: evs, syncFrom: -1})
}

// messageCopies returns, per message ID, the epochs of this server's copies.
func (s *server) messageCopies() map[string][]consensus.EventID { return s.copies }

func cutAttempt(payload []byte) (string, string, bool) {
	i := slices.Index(payload, '#')
	if i < 0 {
		return string(payload), "", false
	}
	return string(payload[:i]), string(payload[i+1:]), true
}
