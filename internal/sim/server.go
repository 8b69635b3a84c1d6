package sim

import (
	"errors"
	"fmt"
	"slices"

	"github.com/rhizome-chat/rhizome/consensus"
)

// server is one simulated node: a real consensus.Machine, its persisted
// event set (a map plus arrival log, which survives crashes), and the
// faults the script gives it.
type server struct {
	w      *world
	idx    int
	id     consensus.ServerID
	secret []byte
	up     bool
	m      *consensus.Machine

	events   map[consensus.EventID]*event
	log      []consensus.EventID
	pos      map[consensus.EventID]int      // index of each event in log
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
	var inputs []consensus.Event
	for _, id := range s.log {
		ev := s.events[id]
		if ev.Kind == kindMessage {
			continue
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

func (s *server) persist(ev *event) {
	s.events[ev.ID] = ev
	s.pos[ev.ID] = len(s.log)
	s.log = append(s.log, ev.ID)
	if ev.Kind == kindMessage {
		msg, _, _ := cutAttempt(ev.Payload)
		s.copies[msg] = append(s.copies[msg], ev.Parent)
		return // messages do not change the chain
	}
	s.chainOK = false
}

// receiveAll verifies, records and steps a batch of events from the
// network: messages and rejected events are handled one by one, the
// ordering events that pass verification are stepped as one batch.
func (s *server) receiveAll(evs []*event) {
	if len(evs) == 1 {
		s.receive(evs[0])
		return
	}
	var batch []consensus.Event
	var keep []*event
	for _, ev := range evs {
		if !s.verify(ev) {
			continue
		}
		if ev.Kind == kindMessage {
			s.persist(ev)
			continue
		}
		in, err := ev.toInput()
		if err != nil {
			s.w.rep.VotesRejected++
			continue
		}
		batch = append(batch, in)
		keep = append(keep, ev)
	}
	if len(batch) == 0 {
		return
	}
	acts, errs := s.m.StepBatch(batch)
	rejected := map[consensus.EventID]bool{}
	for _, err := range errs {
		var rej *consensus.RejectError
		if !errors.As(err, &rej) {
			s.w.violate("server %d: untyped Step error: %v", s.idx, err)
			continue
		}
		rejected[rej.ID] = true
		s.w.rep.VotesRejected++
	}
	for _, ev := range keep {
		if _, dup := s.events[ev.ID]; !dup && !rejected[ev.ID] {
			s.persist(ev)
		}
	}
	s.handle(acts)
}

// verify checks an event's ID and signature and reports false for a
// duplicate or a forgery.
func (s *server) verify(ev *event) bool {
	if _, dup := s.events[ev.ID]; dup {
		return false
	}
	secret, ok := s.w.keys[ev.Origin]
	if !ok || ev.digest() != ev.ID || sign(secret, ev.ID) != ev.Sig {
		s.w.rep.ForgedRejected++
		return false
	}
	return true
}

// receive verifies, records and steps one event from the network or from a
// local client.
func (s *server) receive(ev *event) {
	if !s.verify(ev) {
		return
	}
	if ev.Kind == kindMessage {
		s.persist(ev)
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
	s.persist(ev)
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
	ev := newEvent(k, s.id, s.secret, "", payload)
	if _, dup := s.events[ev.ID]; dup {
		return nil
	}
	in, _ := ev.toInput()
	acts, err := s.m.Step(in)
	if err != nil {
		s.w.violate("server %d: own vote rejected: %v", s.idx, err)
		return nil
	}
	s.persist(ev)
	s.broadcast(ev)
	return acts
}

// equivocateOn makes a Byzantine hub seal a second commit for the same slot
// and term, sending each seal to a different half of the servers.
func (s *server) equivocateOn(real consensus.Seal) {
	twin := newEvent(kindCommit, s.id, s.secret, real.Slot, fmt.Appendf(nil, "byz/%d/%x", s.w.now, real.Commit))
	s.receive(twin)
	s.broadcast(twin)
	fake := real
	fake.Commit = twin.ID
	payload, err := fake.Marshal()
	if err != nil {
		s.w.violate("server %d: twin seal: %v", s.idx, err)
		return
	}
	sealB := newEvent(kindSeal, s.id, s.secret, "", payload)
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
// for the set of events it holds now: the first len(log) entries of its
// append-only log.
func (s *server) pull(peer int) {
	s.sendTo(peer, packet{syncFrom: s.idx, have: len(s.log)})
}

// serve answers a pull request with the missing events in arrival order.
func (s *server) serve(p packet) {
	req := s.w.servers[p.syncFrom]
	var missing []*event
	for _, id := range s.log {
		if i, ok := req.pos[id]; !ok || i >= p.have {
			missing = append(missing, s.events[id])
		}
	}
	if len(missing) > 0 {
		s.sendTo(p.syncFrom, packet{events: missing, syncFrom: -1})
	}
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
