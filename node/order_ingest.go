package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// publishTimeout bounds the gossip of one queued event.
const publishTimeout = 5 * time.Second

// isVote reports whether kind is one of the ordering layer's votes.
func isVote(k dag.Kind) bool { return k == dag.KindSeal || k == dag.KindAck || k == dag.KindSuspect }

// actorOf is the room-state actor of a client event relayed by its origin.
func actorOf(ev *dag.Event, snd roomevent.Sender) roomstate.Actor {
	return roomstate.Actor{Kind: roomstate.ActorUser, User: roomstate.URI(snd.User), Client: roomstate.ClientID(snd.Client), Server: roomstate.ServerID(ev.Origin)}
}

// voteEvent decodes a stored seal, ack or suspect event for the machine.
func voteEvent(ev *dag.Event) (consensus.Event, error) {
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
		return out, fmt.Errorf("node: %v is not a vote", ev.Kind)
	}
	return out, nil
}

// commitEvent authorizes a commit against the state of its parent's epoch
// and returns its machine input and state entry.
func (rs *rooms) commitEvent(o *roomOrder, ev *dag.Event) (consensus.Event, stateEntry, error) {
	c, err := roomevent.DecodeCommit(ev.Content)
	if err != nil {
		return consensus.Event{}, stateEntry{}, &AuthError{Reason: "malformed-content", Err: err}
	}
	ps, err := o.stateAt(c.Parent)
	if err != nil {
		return consensus.Event{}, stateEntry{}, err
	}
	after, err := authorize(ps, ev, rs.store)
	if err != nil {
		return consensus.Event{}, stateEntry{}, err
	}
	rs.addWriters(o.room, after)
	cc := &consensus.Commit{Parent: cid(c.Parent)}
	if changesServers(c.Changes) {
		// Rule M1: the commit installs the server set it leaves behind, for
		// the votes on its children; the commit's ID seeds the hub order.
		m := membershipOf(after, ev.ID())
		cc.Membership = &m
	}
	e := stateEntry{id: ev.ID(), kind: dag.KindCommit, parent: c.Parent, actor: actorOf(ev, c.Sender), changes: c.Changes}
	return consensus.Event{ID: cid(ev.ID()), From: consensus.ServerID(ev.Origin), Commit: cc}, e, nil
}

// ingest accepts one stored event of a room, in arrival order: it
// authorizes it against the room state (a commit against the state of its
// parent's epoch) and returns its feed entry and, for a commit or a vote,
// the machine input, which the caller steps with the rest of its run
// (stepRun). An *AuthError means the event is not accepted. The caller
// holds writeMu and has stepped every earlier commit and vote before it
// ingests any other kind, whose authorization depends on the canonical
// state.
func (rs *rooms) ingest(info *roomInfo, ev *dag.Event) ([]feedEntry, *consensus.Event, error) {
	room := ev.RoomID()
	out := []feedEntry{{Room: room, Event: ev.ID(), Kind: ev.Kind}}
	if ev.Kind == dag.KindCreate {
		st, err := authorize(nil, ev, rs.store)
		if err != nil {
			return nil, nil, err
		}
		rs.addWriters(room, st)
		if info.ord != nil {
			return nil, nil, authErr("duplicate-create", "room %v already has its create event", room)
		}
		o, err := newRoomOrder(room, ev, st, rs.self, rs.params)
		if err != nil {
			return nil, nil, &AuthError{Reason: "roomstate", Err: err}
		}
		info.ord = o
		return out, nil, nil
	}
	o := info.ord
	if o == nil {
		return nil, nil, authErr("no-state", "room %v has no create event processed", room)
	}
	switch ev.Kind {
	case dag.KindCommit:
		cev, entry, err := rs.commitEvent(o, ev)
		if err != nil {
			return nil, nil, err
		}
		o.appendEntry(entry)
		return out, &cev, nil
	case dag.KindState:
		after, err := authorize(o.current(), ev, rs.store)
		if err != nil {
			return nil, nil, err
		}
		rs.addWriters(room, after)
		c, _ := roomevent.DecodeState(ev.Content) // authorize decoded it
		o.appendEntry(stateEntry{id: ev.ID(), kind: dag.KindState, actor: actorOf(ev, c.Sender), changes: c.Changes})
	case dag.KindSeal, dag.KindAck, dag.KindSuspect:
		// Who may vote is the machine's to decide (rule M3: the servers of
		// any membership it has seen), not the current room state: a
		// server added by a commit votes on the next slot, and its votes
		// can arrive in the same sync batch as the commit, before the
		// commit is canonical here.
		cev, err := voteEvent(ev)
		if err != nil {
			return nil, nil, &AuthError{Reason: "malformed-vote", Err: err}
		}
		return out, &cev, nil
	default:
		if _, err := authorize(o.current(), ev, rs.store); err != nil {
			return nil, nil, err
		}
	}
	return out, nil, nil
}

// stepRun hands a run of consecutive commits and votes to the machine at
// once (StepBatch: one evaluation, no votes on intermediate states, which
// matters when sync delivers a long history) and performs the actions. It
// returns the run's feed entries without the events the machine refused,
// followed by the order record of the change, and the refusal reasons.
func (rs *rooms) stepRun(o *roomOrder, run []consensus.Event, runFeed []feedEntry) ([]feedEntry, []string) {
	if len(run) == 0 {
		return runFeed, nil
	}
	acts, errs := o.m.StepBatch(run)
	var reasons []string
	bad := map[dag.EventID]bool{}
	for _, err := range errs {
		reason := "vote-rejected"
		var re *consensus.RejectError
		if errors.As(err, &re) {
			reason = "vote-" + re.Reason.String()
			bad[did(re.ID)] = true
		}
		reasons = append(reasons, reason)
		rs.log.Info("event not accepted", "room", o.room, "reason", reason, "err", err)
	}
	var feed []feedEntry
	for _, fe := range runFeed {
		if !bad[fe.Event] {
			feed = append(feed, fe)
		}
	}
	return append(feed, rs.perform(o, acts)...), reasons
}

// perform carries out the machine's actions: each vote becomes a signed DAG
// event, made durable before it is queued for gossip and stepped back into
// the machine (whose further actions are performed too). It returns the
// order record for the resulting change of the chain, if any.
func (rs *rooms) perform(o *roomOrder, acts []consensus.Action) []feedEntry {
	if len(acts) == 0 {
		// The machine reports every change of its chain as an action, so
		// without actions there is nothing to report (and no chain to copy
		// for every message).
		return nil
	}
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		var kind dag.Kind
		var content []byte
		var err error
		vote := consensus.Event{From: consensus.ServerID(rs.self)}
		switch a := a.(type) {
		case consensus.SendSeal:
			kind, vote.Seal = dag.KindSeal, &a.Seal
			content, err = a.Seal.Marshal()
		case consensus.SendAck:
			kind, vote.Ack = dag.KindAck, &a.Ack
			content, err = a.Ack.Marshal()
		case consensus.SendSuspect:
			kind, vote.Suspect = dag.KindSuspect, &a.Suspect
			content, err = a.Suspect.Marshal()
		case consensus.RetainBranch:
			ticks := time.Duration(a.Deadline - o.m.Now())
			o.retainUntil = time.Now().Add(ticks * rs.tick).UnixMilli()
			continue
		case consensus.ReleaseBranch:
			rs.log.Debug("losing branch released", "room", o.room, "commits", len(a.Commits))
			continue
		case consensus.EquivocationFound:
			rs.log.Warn("equivocation", "room", o.room, "server", dag.ServerID(a.Evidence.Server), "kind", a.Evidence.Kind, "term", a.Evidence.Term)
			continue
		default:
			// OrderChanged and Certified: report derives them from the
			// machine's chain, so restarts and batches report the same.
			continue
		}
		if err != nil {
			rs.log.Error("encode vote", "room", o.room, "kind", kind, "err", err)
			continue
		}
		ev, err := rs.castVote(o.room, kind, content)
		if err != nil {
			// Not voting is safe; the machine keeps its promise anyway.
			rs.log.Error("persist vote", "room", o.room, "kind", kind, "err", err)
			continue
		}
		vote.ID = cid(ev.ID())
		more, err := o.m.Step(vote)
		if err != nil {
			rs.log.Error("step own vote", "room", o.room, "event", ev.ID(), "err", err)
		}
		acts = append(acts, more...)
	}
	oldCert := o.certLen
	if rec := o.report(); rec != nil {
		if len(rec.Undone) > 0 {
			rs.om.reorgs.Inc()
			rs.om.undone.Add(float64(len(rec.Undone)))
		}
		if o.certLen > oldCert {
			rs.om.certified.Add(float64(o.certLen - oldCert))
		}
		return []feedEntry{{Room: o.room, Order: rec}}
	}
	return nil
}

// orderMetrics are the ordering layer's Prometheus metrics.
type orderMetrics struct {
	votes     *prometheus.CounterVec
	reorgs    prometheus.Counter
	undone    prometheus.Counter
	certified prometheus.Counter
}

func newOrderMetrics(reg *prometheus.Registry) *orderMetrics {
	m := &orderMetrics{
		votes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "votes_cast_total", Help: "Ordering votes this server signed, by kind.",
		}, []string{"kind"}),
		reorgs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "order_reorgs_total", Help: "Changes of a canonical chain that undid commits.",
		}),
		undone: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "order_undone_commits_total", Help: "Commits removed from canonical chains.",
		}),
		certified: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "order_certified_commits_total", Help: "Commits certified (final).",
		}),
	}
	reg.MustRegister(m.votes, m.reorgs, m.undone, m.certified)
	return m
}

// castVote signs a vote event on the room's oldest tips (dag.MergeParents)
// and stores it durably, then queues it for gossip. The ingest path gives
// it its feed entry when it reaches it in the arrival log.
func (rs *rooms) castVote(room dag.RoomID, kind dag.Kind, content []byte) (*dag.Event, error) {
	prev, err := dag.MergeParents(rs.store, room)
	if err != nil {
		return nil, err
	}
	ev, err := dag.NewSigned(rs.key, room, kind, prev, time.Now().UnixMilli(), content)
	if err != nil {
		return nil, err
	}
	res, err := rs.store.Put(ev)
	if err != nil {
		return nil, fmt.Errorf("node: store vote: %w", err)
	}
	if res.Status != dag.StatusStored && res.Status != dag.StatusDuplicate {
		return nil, fmt.Errorf("node: store vote %v: status %v", ev.ID(), res.Status)
	}
	rs.metrics.EventsStored.WithLabelValues("vote").Inc()
	rs.om.votes.WithLabelValues(kind.String()).Inc()
	rs.queuePublish(ev)
	rs.pokeRoom(room)
	return ev, nil
}

// queuePublish queues a durable event for gossip, in order.
func (rs *rooms) queuePublish(ev *dag.Event) {
	rs.outMu.Lock()
	rs.outbox = append(rs.outbox, ev)
	rs.outMu.Unlock()
	select {
	case rs.outWake <- struct{}{}:
	default:
	}
}

// flushOutbox gossips the queued events in order. Gossip is best effort:
// the events are durable and sync repairs what gossip loses.
func (rs *rooms) flushOutbox() {
	rs.pubMu.Lock()
	defer rs.pubMu.Unlock()
	if rs.mesh == nil {
		return
	}
	rs.outMu.Lock()
	evs := rs.outbox
	rs.outbox = nil
	rs.outMu.Unlock()
	for _, ev := range evs {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		if err := rs.mesh.Publish(ctx, ev); err != nil {
			rs.log.Warn("publish", "room", ev.RoomID(), "event", ev.ID(), "kind", ev.Kind, "err", err)
		}
		cancel()
	}
}

// runTicker ticks every room's machine every rs.tick until ctx is done.
func (rs *rooms) runTicker(ctx context.Context) {
	t := time.NewTicker(rs.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rs.tickAll()
		}
	}
}

// tickAll advances every room's machine by one tick and performs what is
// due (suspecting a silent hub, sealing tentatively, releasing branches).
func (rs *rooms) tickAll() {
	rs.writeMu.Lock()
	defer rs.writeMu.Unlock()
	for _, room := range rs.list() {
		rs.mu.RLock()
		info := rs.m[room]
		rs.mu.RUnlock()
		if info == nil || info.ord == nil {
			continue
		}
		acts := info.ord.m.Tick()
		if len(acts) == 0 {
			continue
		}
		feed := rs.perform(info.ord, acts)
		if len(feed) == 0 {
			continue
		}
		rs.publishView(info) // before the feed entries it covers (see processLocked)
		if _, err := rs.db.appendFeed(room, info.processed, feed); err != nil {
			rs.log.Error("append order record", "room", room, "err", err)
			rs.reloadLocked(room)
			continue
		}
		rs.wakeFeed()
	}
}

// orderView is the published canonical order of a room, for the API.
type orderView struct {
	root    dag.EventID
	chain   []dag.EventID // immutable once published
	certLen int
}

func (v orderView) tip() dag.EventID {
	if len(v.chain) == 0 {
		return v.root
	}
	return v.chain[len(v.chain)-1]
}

func (v orderView) certified() dag.EventID {
	if v.certLen == 0 {
		return v.root
	}
	return v.chain[v.certLen-1]
}

// publishView makes the room's state and order visible to readers, counts
// its servers as writers (a restored room's state included), and has the
// mesh re-check the peers it kept from gossip when the state lists a server
// the previous one did not. The caller holds writeMu.
func (rs *rooms) publishView(info *roomInfo) {
	if info.ord == nil {
		return
	}
	o := info.ord
	st := o.current()
	rs.addWriters(o.room, st)
	rs.mu.Lock()
	old := info.state
	info.state = st
	info.view = orderView{root: o.root, chain: slices.Clone(o.chain), certLen: o.certLen}
	rs.mu.Unlock()
	if rs.mesh != nil && serverAdded(old, st) {
		rs.mesh.RefreshPeers()
	}
	rs.noticeChanges(info, old)
}

// serverAdded reports whether next lists a server that prev does not.
func serverAdded(prev, next *roomstate.State) bool {
	if next == nil {
		return false
	}
	for _, s := range next.Servers() {
		if prev == nil {
			return true
		}
		if _, ok := prev.Server(s.ID); !ok {
			return true
		}
	}
	return false
}

// order returns the room's published canonical order; ok is false when the
// room is unknown or not created yet.
func (rs *rooms) order(room dag.RoomID) (orderView, bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	info := rs.m[room]
	if info == nil || info.view.root.IsZero() {
		return orderView{}, false
	}
	return info.view, true
}
