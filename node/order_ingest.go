package node

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/feed"
	engine "github.com/rhizome-chat/rhizome/room"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// DefaultTick is the length of one consensus tick: the node ticks every
// room's engine at this interval. With consensus.DefaultParams a frontier
// waits 1.5 s for its hub before suspecting it, a minority side seals
// tentatively after 4 to 8 s, and a losing branch's secrets are kept for
// 30 s (docs/consensus.md, section 5).
const DefaultTick = 10 * time.Millisecond

// publishTimeout bounds the gossip of one queued event.
const publishTimeout = 5 * time.Second

// isVote reports whether kind is one of the ordering layer's votes.
func isVote(k dag.Kind) bool { return k == dag.KindSeal || k == dag.KindAck || k == dag.KindSuspect }

// engineConfig is the configuration of a room engine on this node.
func (rs *rooms) engineConfig() engine.Config {
	return engine.Config{Self: rs.self, Params: rs.params, TickLength: rs.tick, Now: rs.now()}
}

// drain carries out what the room's engine is ready with, until it is
// ready with nothing: the votes are signed on the room's oldest tips,
// stored with one PutAll (one fsync for all of them) and queued for gossip
// (they come back through the arrival log, as every stored event does);
// rejections are logged and counted; writers and the published view are
// updated. It returns the feed entries (feed events and order
// records) and whether votes were stored. The caller holds writeMu.
func (rs *rooms) drain(info *roomInfo) ([]feed.Entry, bool, error) {
	e := info.eng
	var accepted []feed.Entry
	var votes []*dag.Event // signed, stepped in, stored at the end
	voted := false
	cert0 := e.CertifiedLen()
	defer func() {
		if n := e.CertifiedLen() - cert0; n > 0 {
			rs.om.certified.Add(float64(n))
		}
	}()
	for e.HasReady() {
		rd := e.Ready()
		for _, en := range rd.Entries {
			accepted = append(accepted, feed.Entry{Room: e.Room(), Event: en.Event, Kind: en.Kind, Order: en.Order})
			if en.Order != nil && len(en.Order.Undone) > 0 {
				rs.om.reorgs.Inc()
				rs.om.undone.Add(float64(len(en.Order.Undone)))
			}
		}
		for _, rj := range rd.Rejected {
			rs.metrics.EventsRejected.WithLabelValues(string(rj.Err.Reason)).Inc()
			rs.log.Info("event not accepted", "room", e.Room(), "event", rj.Event, "kind", rj.Kind, "origin", rj.Origin, "reason", rj.Err.Reason, "err", rj.Err.Err)
		}
		if len(rd.NewServers) > 0 {
			rs.addWriterIDs(e.Room(), rd.NewServers)
		}
		for _, c := range rd.Released {
			rs.log.Debug("losing branch released", "room", e.Room(), "commits", len(c))
		}
		for _, ev := range rd.Evidence {
			rs.log.Warn("equivocation", "room", e.Room(), "server", dag.ServerID(ev.Server), "kind", ev.Kind, "term", ev.Term)
		}
		if rd.StateChanged {
			rs.publishView(info)
		}
		e.Advance()
		if len(rd.Votes) > 0 {
			evs, err := rs.signVotes(e.Room(), rd.Votes, votes)
			if err != nil {
				rs.log.Error("sign votes", "room", e.Room(), "votes", len(rd.Votes), "err", err)
				continue
			}
			// Stepped in at once, so that the votes they cause (a hub's
			// own ack of its seal) are persisted together with them.
			votes = append(votes, evs...)
			e.Step(evs...)
		}
	}
	if len(votes) > 0 {
		if err := rs.storeVotes(e.Room(), votes); err != nil {
			// Not voting is safe; the machine keeps its promise anyway. The
			// engine holds votes that were never stored: rebuild it.
			rs.log.Error("persist votes", "room", e.Room(), "votes", len(votes), "err", err)
			return accepted, false, err
		}
		voted = true
	}
	return accepted, voted, nil
}

// orderMetrics are the ordering layer's Prometheus metrics.
type orderMetrics struct {
	votesPerPut prometheus.Histogram
	votes       *prometheus.CounterVec
	reorgs      prometheus.Counter
	undone      prometheus.Counter
	certified   prometheus.Counter
}

func newOrderMetrics(reg *prometheus.Registry) *orderMetrics {
	m := &orderMetrics{
		votesPerPut: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "rhizome", Name: "votes_per_put", Help: "Ordering votes stored together in one durable batch (one fsync).",
			Buckets: []float64{1, 2, 3, 4, 8, 16},
		}),
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
	reg.MustRegister(m.votesPerPut, m.votes, m.reorgs, m.undone, m.certified)
	return m
}

// signVotes signs the votes as events of room, each on the one before it,
// the first on the last of prev or, without prev, on the room's oldest
// tips (dag.MergeParents).
func (rs *rooms) signVotes(room dag.RoomID, votes []engine.Vote, prev []*dag.Event) ([]*dag.Event, error) {
	var parents []dag.EventID
	if len(prev) > 0 {
		parents = []dag.EventID{prev[len(prev)-1].ID()}
	} else {
		var err error
		if parents, err = dag.MergeParents(rs.store, room); err != nil {
			return nil, err
		}
	}
	evs := make([]*dag.Event, 0, len(votes))
	now := rs.now().UnixMilli()
	for _, v := range votes {
		ev, err := dag.NewSigned(rs.key, room, v.Kind, parents, now, v.Content)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
		parents = []dag.EventID{ev.ID()}
	}
	return evs, nil
}

// storeVotes stores signed votes with one PutAll (one fsync for all) and
// then queues them for gossip: persist before send. The ingest path gives
// them their feed entries when it reaches them in the arrival log (the
// engine takes them again as no-ops).
func (rs *rooms) storeVotes(room dag.RoomID, evs []*dag.Event) error {
	res, errs := rs.store.PutAll(evs)
	for i, r := range res {
		if errs[i] != nil {
			return fmt.Errorf("node: store vote %v: %w", evs[i].ID(), errs[i])
		}
		if r.Status != dag.StatusStored && r.Status != dag.StatusDuplicate {
			return fmt.Errorf("node: store vote %v: status %v", evs[i].ID(), r.Status)
		}
	}
	rs.om.votesPerPut.Observe(float64(len(evs)))
	for _, ev := range evs {
		rs.metrics.EventsStored.WithLabelValues("vote").Inc()
		rs.om.votes.WithLabelValues(ev.Kind.String()).Inc()
		rs.queuePublish(ev)
	}
	rs.pokeRoom(room)
	return nil
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
	now := rs.now()
	for _, room := range rs.list() {
		rs.mu.RLock()
		info := rs.m[room]
		rs.mu.RUnlock()
		if info == nil || info.eng == nil {
			continue
		}
		info.eng.Tick(now)
		if !info.eng.HasReady() {
			continue
		}
		accepted, _, err := rs.drain(info)
		if err != nil {
			rs.reloadLocked(room)
			continue
		}
		if len(accepted) == 0 {
			continue
		}
		if _, err := rs.feed.Append(room, info.processed, accepted); err != nil {
			rs.log.Error("append order record", "room", room, "err", err)
			rs.reloadLocked(room)
			continue
		}
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
	if info.eng == nil {
		return
	}
	e := info.eng
	st := e.State()
	rs.addWriters(e.Room(), st)
	rs.mu.Lock()
	old := info.state
	info.state = st
	info.view = orderView{root: e.Root(), chain: e.Chain(), certLen: e.CertifiedLen()}
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
