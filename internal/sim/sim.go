// Package sim is a seeded, deterministic discrete-event simulator of a
// Rhizome room: N servers running the real per-room engines (package room,
// driven as the node drives them) on real signed events with real
// internal/roomevent content, and M clients with real MLS devices, on a
// network with latency, loss, duplication, reordering, partitions,
// flapping links, crashes and restarts, withheld branches, equivocating
// hubs and forged votes. The same scenario and seed always give the same
// [Report].
//
// It uses math/rand/v2 with an explicit seed, no clock, no goroutines, and
// iterates maps only where the order cannot matter.
package sim

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
)

// Report is what one run measured. It marshals to JSON.
type Report struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	// EndTick is the tick the run stopped at; HealAt the tick the last
	// fault ended (the scripted phase's end at the latest).
	EndTick uint64 `json:"end_tick"`
	HealAt  uint64 `json:"heal_at"`
	// Converged says whether all honest servers ended with one chain, all
	// certified. Heals counts the healthy periods that followed a fault (a
	// partition, crash, flapping link, withheld sending or equivocating
	// seal ended); ConvergeTicks is the longest time, over those periods,
	// from the period's start until the honest servers' chains last
	// conflicted (some chain not a prefix of another), 0 if they never did.
	Converged     bool   `json:"converged"`
	Heals         int    `json:"heals"`
	ConvergeTicks uint64 `json:"converge_ticks"`
	FinalChainLen int    `json:"final_chain_len"`
	FinalTerm     uint64 `json:"final_term"`
	// Forks counts slots with more than one sealed commit in the union of
	// all events; Reorgs the canonical-chain changes that undid commits.
	Forks         int `json:"forks"`
	Reorgs        int `json:"reorgs"`
	MaxReorgDepth int `json:"max_reorg_depth"`
	BeyondHorizon int `json:"beyond_horizon"`
	// Changes proposed by clients, how many were certified, the commits
	// beyond one per change (re-proposals), and the slowest certification.
	Changes          int    `json:"changes"`
	ChangesCertified int    `json:"changes_certified"`
	ExtraCommits     int    `json:"extra_commits"`
	MaxCertifyTicks  uint64 `json:"max_certify_ticks"`
	// LastCertifiedAt is the tick the last change was certified.
	LastCertifiedAt uint64 `json:"last_certified_at"`
	// MaxCertifyAfterHeal is the slowest certification of a change, counted
	// from its proposal or the last heal, whichever is later, among changes
	// certified while no fault was active.
	MaxCertifyAfterHeal uint64 `json:"max_certify_after_heal"`
	// MaxCertifyConnected is the slowest certification of a change counted
	// only while its client's home server was in a connected majority (up,
	// sending, no flapping link, in a partition group with a quorum of such
	// servers): the clock starts when the change is proposed or the server
	// joins such a majority, and restarts if it leaves it.
	MaxCertifyConnected uint64 `json:"max_certify_connected"`
	// Application messages: sent, re-sent in the canonical epoch after
	// their epoch lost, and lost (some honest server has no copy in a
	// canonical epoch at the end; must be zero).
	MessagesSent   int `json:"messages_sent"`
	MessagesResent int `json:"messages_resent"`
	MessagesLost   int `json:"messages_lost"`
	// Network counters.
	PacketsSent       int `json:"packets_sent"`
	PacketsDropped    int `json:"packets_dropped"`
	PacketsDuplicated int `json:"packets_duplicated"`
	// Adversarial counters.
	ForgedInjected        int `json:"forged_injected"`
	ForgedRejected        int `json:"forged_rejected"`
	VotesRejected         int `json:"votes_rejected"`
	EquivocatingSeals     int `json:"equivocating_seals"`
	EquivocationsDetected int `json:"equivocations_detected"`
	// Secret retention: losing branches retained and released on deadline.
	RetainedBranches int `json:"retained_branches"`
	ReleasedBranches int `json:"released_branches"`
	// HeldPastDeadline counts branches a machine kept past their deadline
	// (must be zero).
	HeldPastDeadline int `json:"held_past_deadline"`
	// Violations lists every broken invariant; empty in a correct run.
	Violations []string `json:"violations,omitempty"`
}

type world struct {
	sc      Scenario
	rng     *rand.Rand
	mlsRand *rand.ChaCha8 // every MLS secret and signature key of the run
	net     *network
	now     uint64
	servers []*server
	clients []*client
	create  *dag.Event
	room    dag.RoomID
	order   orderInputs
	rep     Report

	// commits and messages are the simulator's records of what it made,
	// by event ID (the checks read change IDs, slots and message IDs).
	commits    map[dag.EventID]*commitInfo
	messages   map[dag.EventID]msgRef
	certBySlot map[dag.EventID]dag.EventID
	faulty     bool
	connected  []bool // servers in a connected majority this tick

	// Healthy-period tracking for convergence (see observe).
	equivAt     uint64 // tick of the latest equivocating seal
	afterFault  bool
	inPeriod    bool
	periodStart uint64
	periodSplit bool
	lastSplit   uint64
}

// tickLength is the simulated length of one tick (the node's DefaultTick):
// the engines' clock, and the events' timestamps, advance by it.
const tickLength = 10 * time.Millisecond

// ms is the simulated time in unix milliseconds; time is the same as a
// time.Time. Tick 0 is the unix epoch.
func (w *world) ms() int64 { return int64(w.now) * tickLength.Milliseconds() }

func (w *world) time() time.Time { return time.UnixMilli(w.ms()) }

// Run simulates sc with seed and checks the invariants at quiescence.
func Run(sc Scenario, seed uint64) Report { return run(sc, seed).rep }

func run(sc Scenario, seed uint64) *world {
	defer shareVerifications()()
	w := &world{
		sc:         sc,
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		mlsRand:    rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "sim-mls/%d", seed))),
		commits:    map[dag.EventID]*commitInfo{},
		messages:   map[dag.EventID]msgRef{},
		certBySlot: map[dag.EventID]dag.EventID{},
		rep:        Report{Scenario: sc.Name, Seed: seed},
	}
	w.net = &network{
		rng:    rand.New(rand.NewPCG(seed^0x5bd1e995, seed)),
		group:  make([]int, sc.Servers),
		latMin: sc.LatencyMin, latMax: sc.LatencyMax,
		loss: sc.LossPermille, dup: sc.DupPermille,
	}
	create, err := createEvent(sc.Servers)
	if err != nil {
		panic(fmt.Sprintf("sim: %v", err)) // programmer error: the sim builds it
	}
	w.create, w.room, w.order = create, create.RoomID(), orderInputsOf(create, sc.Servers)
	for i := range sc.Servers {
		w.servers = append(w.servers, newServer(w, i))
	}
	for i := range sc.Clients {
		c := &client{w: w, idx: i, home: i % sc.Servers, changesLeft: sc.MaxChanges}
		if c.dev, err = w.newDevice(i, c.home); err != nil {
			panic(fmt.Sprintf("sim: device of client %d: %v", i, err)) // the sim builds it
		}
		c.nextCommitAt = 1 + c.gap(sc.CommitEvery)
		c.nextMsgAt = 1 + c.gap(sc.MessageEvery)
		w.clients = append(w.clients, c)
	}
	for _, s := range w.servers {
		s.start()
	}
	w.setup()
	w.loop()
	w.finish()
	return w
}

// setup makes the group's first commit: the creator (client 0, at server
// 0) adds every other client's device and user, carrying the epoch-0
// GroupInfo.
func (w *world) setup() {
	if len(w.clients) == 0 {
		return
	}
	s := w.servers[0]
	ev, err := w.makeCommit(w.clients[0], s, w.create.ID(), "", nil)
	if err != nil {
		panic(fmt.Sprintf("sim: the first commit: %v", err)) // the sim builds it
	}
	s.submit(ev)
}

// clientAt returns a client homed at server i, or nil.
func (w *world) clientAt(i int) *client {
	for _, c := range w.clients {
		if c.home == i {
			return c
		}
	}
	return nil
}

func (w *world) loadOn() bool { return w.now < w.sc.Ticks }

func (w *world) violate(format string, args ...any) {
	if len(w.rep.Violations) < 20 {
		w.rep.Violations = append(w.rep.Violations, fmt.Sprintf("t=%d: ", w.now)+fmt.Sprintf(format, args...))
	}
}

func (w *world) loop() {
	stable := uint64(0)
	for w.now = 1; w.now <= w.sc.Ticks+w.sc.Settle; w.now++ {
		w.script()
		w.connectedMajority()
		for _, c := range w.clients {
			c.trackConnected()
		}
		for {
			d, ok := w.net.due(w.now)
			if !ok {
				break
			}
			w.deliver(d)
		}
		for _, s := range w.servers {
			if s.up {
				s.tick()
			}
		}
		for i, s := range w.servers {
			if s.up && w.sc.SyncEvery > 0 && (w.now+uint64(i)*7)%w.sc.SyncEvery == 0 && len(w.servers) > 1 {
				peer := (i + 1 + w.rng.IntN(len(w.servers)-1)) % len(w.servers)
				s.pull(peer)
			}
		}
		for _, c := range w.clients {
			c.tick()
		}
		w.observe()
		if w.now >= w.sc.Ticks && w.now%10 == 0 {
			if w.quiescent() {
				stable += 10
				if stable >= 100 {
					break
				}
			} else {
				stable = 0
			}
		}
	}
	w.rep.EndTick = w.now
}

func (w *world) deliver(d delivery) {
	s := w.servers[d.to]
	if !s.up {
		w.net.dropped++
		return
	}
	if !w.net.linkUp(d.from, d.to, w.now) {
		w.net.dropped++
		return
	}
	if d.p.syncFrom >= 0 {
		s.serve(d.p)
		return
	}
	s.receiveAll(d.p.events, d.from)
}

// script applies the steps due now, the forced heal at the end of the
// scripted phase, and tracks when the last fault ended.
func (w *world) script() {
	for _, st := range w.sc.Steps {
		if st.At == w.now {
			w.apply(st)
		}
	}
	for _, s := range w.servers {
		if s.withholdUntil == w.now && len(s.held) > 0 {
			s.release()
		}
	}
	if w.now == w.sc.Ticks {
		w.net.noFaults = true
		w.apply(Step{Op: OpHeal})
		for _, s := range w.servers {
			if !s.up {
				s.start()
			}
			if s.withholdUntil > w.now {
				s.withholdUntil = w.now
				s.release()
			}
		}
	}
	faulty := false
	for i, s := range w.servers {
		faulty = faulty || !s.up || w.net.group[i] != 0 || s.withholdUntil > w.now
	}
	for _, f := range w.net.flaps {
		faulty = faulty || w.now < f.until
	}
	if w.faulty && !faulty {
		w.rep.HealAt = w.now
	}
	w.faulty = faulty
}

func (w *world) apply(st Step) {
	switch st.Op {
	case OpPartition:
		for i := range w.net.group {
			w.net.group[i] = 1000 + i
		}
		for g, members := range st.Groups {
			for _, i := range members {
				w.net.group[i] = g + 1
			}
		}
	case OpHeal:
		clear(w.net.group)
		w.net.flaps = nil
	case OpCrash:
		w.servers[st.Server].crash()
	case OpRestart:
		if !w.servers[st.Server].up {
			w.servers[st.Server].start()
		}
	case OpFlap:
		w.net.flaps = append(w.net.flaps, flap{a: st.Server, b: st.Peer, period: max(st.Period, 1), until: st.Until, from: w.now})
	case OpWithhold:
		w.servers[st.Server].withholdUntil = st.Until
	case OpEquivocate:
		w.servers[st.Server].equivocate = true
	case OpForge:
		w.forge()
	}
}

// forge injects votes that every server must reject: validly signed by a
// key outside the room (the engine refuses them), and claiming a member's
// origin under the outsider's signature (dag.Validate refuses them).
func (w *world) forge() {
	_, outsiderKey := serverKey(-1)
	root := cid(w.create.ID())
	ack, _ := (&consensus.Ack{Slot: root, Commit: root, Term: 0}).Marshal()
	sus, _ := (&consensus.Suspect{Term: 0}).Marshal()
	sign := func(k dag.Kind, content []byte) *dag.Event {
		ev, err := dag.NewSigned(outsiderKey, w.room, k, []dag.EventID{w.create.ID()}, w.ms(), content)
		if err != nil {
			panic(fmt.Sprintf("sim: sign forgery: %v", err)) // programmer error
		}
		return ev
	}
	member := w.servers[0]
	forged := []*dag.Event{
		sign(dag.KindAck, ack),
		sign(dag.KindSuspect, sus),
		impersonate(sign(dag.KindSuspect, sus), member.id, false),
		impersonate(sign(dag.KindAck, ack), member.id, true),
	}
	for _, s := range w.servers {
		if !s.up {
			continue
		}
		for _, ev := range forged {
			w.rep.ForgedInjected++
			s.receiveForged(ev)
		}
	}
}

// impersonate rewrites the origin of ev's encoding to origin, keeping the
// outsider's signature (and flipping one of its bits if flip), and decodes
// the result with the real decoder: a forgery only Verify can catch.
func impersonate(ev *dag.Event, origin dag.ServerID, flip bool) *dag.Event {
	raw := bytes.Clone(ev.Bytes())
	i := bytes.Index(raw, ev.Origin[:])
	if i < 0 {
		panic("sim: origin not found in encoding")
	}
	copy(raw[i:], origin[:])
	if flip {
		raw[len(raw)-1] ^= 1
	}
	d, err := dag.Decode(raw)
	if err != nil {
		panic(fmt.Sprintf("sim: decode forgery: %v", err))
	}
	return d
}
