package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/p2p"
	engine "github.com/rhizome-chat/rhizome/room"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// logBatch is how many arrival-log entries are processed per transaction.
const logBatch = 256

// roomInfo is what the node keeps in memory per room. The state is
// immutable (roomstate.State), so readers take the pointer under the read
// lock and use it without locking.
type roomInfo struct {
	state     *roomstate.State      // nil until the create event is processed
	via       map[dag.ServerID]bool // servers vouching for the room before its state is known
	processed uint64                // arrival-log position processed
	view      orderView             // published canonical order (zero root until created)

	eng *engine.Engine // the room's engine; used under writeMu only
}

// rooms owns the rooms' state and the ingest path. Every write (a local
// submission or the processing of newly stored events) runs under writeMu:
// one writer at a time, so that a candidate event is authorized against the
// exact state it will be applied to, and tips are not raced. A background
// goroutine processes rooms poked by the mesh (events from peers).
type rooms struct {
	log     *slog.Logger
	store   dag.Store
	feed    *feed.Feed
	key     ed25519.PrivateKey
	self    dag.ServerID
	metrics *Metrics
	mesh    *p2p.Mesh               // set once the mesh is started
	invites atomic.Pointer[inviter] // set while invite notices are sent (noticeChanges)
	om      *orderMetrics

	writeMu sync.Mutex

	mu sync.RWMutex // guards m and writers
	m  map[dag.RoomID]*roomInfo
	// writers are, per room, the servers of every room state the node
	// accepted (Writer). The set only grows while the node runs, and it
	// lives outside roomInfo so that a reload keeps it.
	writers map[dag.RoomID]map[dag.ServerID]bool
	// epochs caches the servers of each room's epochs for WritesAt.
	epochs epochCache

	pokeMu sync.Mutex
	dirty  map[dag.RoomID]bool
	poke   chan struct{}

	params consensus.Params // ordering parameters of every room
	tick   time.Duration    // length of one consensus tick
	now    func() time.Time // the node's clock

	outMu   sync.Mutex
	outbox  []*dag.Event // durable events waiting for gossip, in order
	outWake chan struct{}
	pubMu   sync.Mutex // one flusher at a time keeps the gossip order

}

func newRooms(log *slog.Logger, store dag.Store, f *feed.Feed, key ed25519.PrivateKey, m *Metrics) *rooms {
	self, _ := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
	return &rooms{
		log: log.With("sys", "rooms"), store: store, feed: f, key: key, self: self, metrics: m,
		m: map[dag.RoomID]*roomInfo{}, writers: map[dag.RoomID]map[dag.ServerID]bool{}, dirty: map[dag.RoomID]bool{}, poke: make(chan struct{}, 1),
		outWake: make(chan struct{}, 1),
		params:  consensus.DefaultParams(), tick: DefaultTick, now: time.Now, om: newOrderMetrics(m.Registry),
	}
}

// load rebuilds every joined room's state and ordering machine from the
// delivery feed (which records the feed events and the order records,
// see restoreRoom), then processes what was stored but not yet processed (a
// crash between the store's Put and the feed append).
func (rs *rooms) load() error {
	recs, err := rs.feed.Rooms()
	if err != nil {
		return err
	}
	feeds, err := rs.feedByRoom(dag.RoomID{})
	if err != nil {
		return fmt.Errorf("node: read feed: %w", err)
	}
	rs.writeMu.Lock()
	defer rs.writeMu.Unlock()
	for id, rec := range recs {
		info := &roomInfo{via: map[dag.ServerID]bool{}}
		for _, v := range rec.Via {
			if sid, err := parseServerID(v); err == nil {
				info.via[sid] = true
			}
		}
		if info.processed, err = rs.feed.Processed(id); err != nil {
			return err
		}
		if info.processed > 0 {
			if at, err := rs.store.Log(id, info.processed-1, 1); err != nil || len(at) == 0 || at[0].Seq != info.processed {
				return fmt.Errorf("node: room %v: the store's arrival log does not reach position %d processed before (%v): the events folder does not match the local folder", id, info.processed, err)
			}
		}
		recsOut, err := rs.restoreRoom(info, id, feeds[id])
		if err != nil {
			return err
		}
		if len(recsOut) > 0 {
			if _, err := rs.feed.Append(id, info.processed, recsOut); err != nil {
				return err
			}
		}
		rs.mu.Lock()
		rs.m[id] = info
		rs.mu.Unlock()
		rs.publishView(info)
	}
	rs.metrics.Rooms.Set(float64(len(recs)))
	for id := range recs {
		if _, err := rs.processLocked(id, dag.EventID{}); err != nil {
			return err
		}
	}
	return nil
}

func parseServerID(s string) (dag.ServerID, error) {
	var id dag.ServerID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("node: server ID %q is not 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// Participates implements p2p.RoomACL: a server takes part in a room when
// the room's state lists it, or, before the create event is known, when it
// vouched for the room.
func (rs *rooms) Participates(room dag.RoomID, server dag.ServerID) bool {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	info := rs.m[room]
	if info == nil {
		return false
	}
	if info.state == nil {
		return info.via[server]
	}
	_, ok := info.state.Server(roomstate.ServerID(server))
	return ok
}

// Writer implements p2p.RoomACL: events of server may be stored in room
// when server is a server of the room in a room state the node accepted:
// the create event's initial state or the state after an authorized
// commit on any branch (room.Engine.Servers). This is the union over the
// states seen, the cheap first filter; WritesAt (writesat.go) then holds an
// event to the servers at its parents. The union is rebuilt on a restart
// from the restored room.
func (rs *rooms) Writer(room dag.RoomID, server dag.ServerID) bool {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return rs.m[room] != nil && rs.writers[room][server]
}

// Settle implements p2p.RoomACL: it processes the room's stored events that
// are not processed yet, so that Writer and Participates reflect them. The
// mesh calls it from its pull workers; nothing that holds writeMu waits for
// them (the mesh's calls under writeMu, JoinRoom and Publish's queue, do
// not wait for pulls).
func (rs *rooms) Settle(room dag.RoomID) {
	rs.writeMu.Lock()
	rs.settleLocked(room)
	rs.writeMu.Unlock()
}

// settleLocked processes room's stored events not processed yet and
// reports whether that worked; on a failure the background loop retries.
// The caller holds writeMu.
func (rs *rooms) settleLocked(room dag.RoomID) bool {
	if _, err := rs.processLocked(room, dag.EventID{}); err != nil {
		rs.log.Error("process room", "room", room, "err", err)
		rs.pokeRoom(room)
		return false
	}
	return true
}

// addWriters records the servers of st as writers of room.
func (rs *rooms) addWriters(room dag.RoomID, st *roomstate.State) {
	if st == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	w := rs.writers[room]
	if w == nil {
		w = map[dag.ServerID]bool{}
		rs.writers[room] = w
	}
	for _, s := range st.Servers() {
		w[dag.ServerID(s.ID)] = true
	}
}

// addWriterIDs counts servers as writers of room.
func (rs *rooms) addWriterIDs(room dag.RoomID, ids []dag.ServerID) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	w := rs.writers[room]
	if w == nil {
		w = map[dag.ServerID]bool{}
		rs.writers[room] = w
	}
	for _, id := range ids {
		w[id] = true
	}
}

// state returns the room's current state (nil if unknown or not yet
// created) and whether the room is joined.
func (rs *rooms) state(room dag.RoomID) (*roomstate.State, bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	info := rs.m[room]
	if info == nil {
		return nil, false
	}
	return info.state, true
}

// list returns the joined rooms in ID order.
func (rs *rooms) list() []dag.RoomID {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	out := make([]dag.RoomID, 0, len(rs.m))
	for id := range rs.m {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b dag.RoomID) int { return dag.EventID(a).Compare(dag.EventID(b)) })
	return out
}

// ServersOfDomain implements accounts.RoomIndex: it returns the servers that rooms' states list for domain.
func (rs *rooms) ServersOfDomain(domain string) []dag.ServerID {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	seen := map[dag.ServerID]bool{}
	var out []dag.ServerID
	for _, info := range rs.m {
		if info.state == nil {
			continue
		}
		for _, s := range info.state.Servers() {
			if s.Domain == domain && !seen[dag.ServerID(s.ID)] {
				seen[dag.ServerID(s.ID)] = true
				out = append(out, dag.ServerID(s.ID))
			}
		}
	}
	return out
}

// join records a room whose create event the caller has verified (see
// joins): durably with rec, in memory with rec's via servers, stores the
// create event and joins the room's gossip topic (which starts pulling its
// events). A room already joined is left as it is. If the topic cannot be
// joined, the room is forgotten again.
func (rs *rooms) join(room dag.RoomID, rec feed.RoomRecord, create *dag.Event) error {
	if _, joined := rs.state(room); joined {
		return nil
	}
	isNew, err := rs.feed.AddRoom(room, rec)
	if err != nil {
		return err
	}
	var via []dag.ServerID
	for _, v := range rec.Via {
		if sid, err := parseServerID(v); err == nil && sid != rs.self {
			via = append(via, sid)
		}
	}
	rs.mu.Lock()
	info := rs.m[room]
	if info == nil {
		info = &roomInfo{via: map[dag.ServerID]bool{}}
		rs.m[room] = info
	}
	for _, v := range via {
		info.via[v] = true
	}
	n := len(rs.m)
	rs.mu.Unlock()
	rs.metrics.Rooms.Set(float64(n))
	if isNew {
		rs.log.Info("joined room", "room", room, "how", rec.How, "via", rec.Via)
	}
	if res, err := rs.store.Put(create); err != nil || (res.Status != dag.StatusStored && res.Status != dag.StatusDuplicate) {
		return errors.Join(fmt.Errorf("node: store create event of room %v: %v (%v)", room, err, res.Status), rs.forget(room))
	}
	if rs.mesh != nil {
		if err := rs.mesh.JoinRoom(room); err != nil {
			return errors.Join(fmt.Errorf("node: join room %v: %w", room, err), rs.forget(room))
		}
		for _, v := range via {
			if pid, err := p2p.PeerID(v.PublicKey()); err == nil {
				rs.mesh.AddPeer(peerAddrInfo(rs.mesh, pid))
			}
		}
	}
	rs.pokeRoom(room)
	return nil
}

// forget drops a room from memory and from the node-local database (its
// record, processed position and feed entries) and leaves its gossip
// topic. The DAG store keeps its events; purge removes them too. The
// caller must not hold writeMu.
func (rs *rooms) forget(room dag.RoomID) error {
	rs.writeMu.Lock()
	rs.mu.Lock()
	delete(rs.m, room)
	delete(rs.writers, room)
	n := len(rs.m)
	rs.mu.Unlock()
	rs.epochs.drop(room)
	err := rs.feed.RemoveRoom(room)
	rs.writeMu.Unlock()
	rs.metrics.Rooms.Set(float64(n))
	// Outside writeMu: leaving waits for the room's gossip reader, which
	// may be in the ACL's Settle, which takes writeMu.
	if rs.mesh != nil {
		rs.mesh.LeaveRoom(room)
	}
	rs.outMu.Lock()
	rs.outbox = slices.DeleteFunc(rs.outbox, func(ev *dag.Event) bool { return ev.RoomID() == room })
	rs.outMu.Unlock()
	return err
}

// purge forgets a room and deletes all its events from the DAG store.
func (rs *rooms) purge(room dag.RoomID) error {
	if err := rs.forget(room); err != nil {
		return err
	}
	if err := rs.store.PurgeRoom(room); err != nil {
		return fmt.Errorf("node: purge events of room %v: %w", room, err)
	}
	return nil
}

// pokeRoom asks the background goroutine to process the room's newly stored
// events. It never blocks (the mesh calls it from its goroutines).
func (rs *rooms) pokeRoom(room dag.RoomID) {
	rs.pokeMu.Lock()
	rs.dirty[room] = true
	rs.pokeMu.Unlock()
	select {
	case rs.poke <- struct{}{}:
	default:
	}
}

// run processes poked rooms until ctx is done.
func (rs *rooms) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-rs.poke:
		case <-rs.outWake:
			rs.flushOutbox()
			continue
		}
		rs.pokeMu.Lock()
		dirty := rs.dirty
		rs.dirty = map[dag.RoomID]bool{}
		rs.pokeMu.Unlock()
		for room := range dirty {
			rs.writeMu.Lock()
			_, err := rs.processLocked(room, dag.EventID{})
			rs.writeMu.Unlock()
			if err != nil {
				rs.log.Error("process room", "room", room, "err", err)
				// Retry later rather than lose the events: they are in the
				// store and the position was not advanced.
				time.AfterFunc(time.Second, func() { rs.pokeRoom(room) })
			}
		}
	}
}

// processLocked steps the room's events stored since the last processed
// position into its engine, in arrival order, carries out the engine's
// Ready and appends the feed events to the delivery feed, atomically
// with the new position. It returns the feed position of event want (a
// local submission) if this call appended it, else 0. The caller holds
// writeMu.
func (rs *rooms) processLocked(room dag.RoomID, want dag.EventID) (wantSeq uint64, err error) {
	rs.mu.RLock()
	info := rs.m[room]
	rs.mu.RUnlock()
	if info == nil {
		return 0, nil // not joined: the mesh stores only joined rooms' events
	}
	for {
		entries, err := rs.store.Log(room, info.processed, logBatch)
		if err != nil {
			return 0, fmt.Errorf("node: read log of room %v: %w", room, err)
		}
		if len(entries) == 0 {
			return wantSeq, nil
		}
		evs := make([]*dag.Event, 0, len(entries))
		for _, e := range entries {
			ev, err := rs.store.Get(e.ID)
			if err != nil {
				rs.reloadLocked(room)
				return 0, fmt.Errorf("node: read event %v: %w", e.ID, err)
			}
			evs = append(evs, ev)
		}
		var accepted []feed.Entry
		if info.eng == nil {
			// The room's first event is its create event; anything before
			// it is refused.
			for len(evs) > 0 && info.eng == nil {
				ev := evs[0]
				evs = evs[1:]
				eng, err := engine.New(ev, rs.engineConfig())
				if err != nil {
					var re *engine.RejectError
					if !errors.As(err, &re) {
						return 0, err
					}
					rs.metrics.EventsRejected.WithLabelValues(string(re.Reason)).Inc()
					rs.log.Info("event not accepted", "room", room, "event", ev.ID(), "kind", ev.Kind, "origin", ev.Origin, "err", err)
					continue
				}
				info.eng = eng
			}
		}
		if info.eng != nil {
			info.eng.Step(evs...)
			out, _, err := rs.drain(info)
			if err != nil {
				rs.reloadLocked(room)
				return 0, err
			}
			accepted = out
		}
		// The room's state became visible (drain publishes it) before the
		// feed entries it covers: a stream that reads an entry filters it
		// by the state, and a reader added by this batch (the commit with
		// its Welcome) must not have that entry skipped for being read a
		// moment early.
		last := entries[len(entries)-1].Seq
		top, err := rs.feed.Append(room, last, accepted)
		if err != nil {
			rs.reloadLocked(room)
			return 0, err
		}
		for i, fe := range accepted {
			if fe.Order == nil && fe.Event == want && !want.IsZero() {
				wantSeq = top - uint64(len(accepted)-1-i)
			}
		}
		rs.mu.Lock()
		info.processed = last
		rs.mu.Unlock()
	}
}

// submit builds, authorizes, signs and stores a local event of kind with
// content in room, processes it into the feed and publishes it. It returns
// once the event is durable: that is the acknowledgement to the client.
// For a create event room is zero. The cursor is the event's position in
// the delivery feed (0 if processing is deferred to the background loop).
func (rs *rooms) submit(ctx context.Context, room dag.RoomID, kind dag.Kind, content []byte) (*dag.Event, uint64, error) {
	rs.writeMu.Lock()
	ev, cursor, err := rs.submitLocked(room, kind, content)
	rs.writeMu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	rs.metrics.EventsStored.WithLabelValues("local").Inc()
	// The event is durable; gossip is best effort, sync repairs. The
	// outbox keeps the event ahead of the votes it caused.
	rs.flushOutbox()
	return ev, cursor, nil
}

func (rs *rooms) submitLocked(room dag.RoomID, kind dag.Kind, content []byte) (*dag.Event, uint64, error) {
	var prev []dag.EventID
	if kind != dag.KindCreate {
		st, joined := rs.state(room)
		if !joined || st == nil {
			return nil, 0, apierror.RoomUnknown(room)
		}
		refs, err := rs.refs(room, kind, content)
		if err != nil {
			return nil, 0, err
		}
		if prev, err = dag.MergeParents(rs.store, room, refs...); err != nil {
			return nil, 0, err
		}
		prev = rs.parents(room, kind, content, prev)
	}
	ev, err := dag.NewSigned(rs.key, room, kind, prev, rs.now().UnixMilli(), content)
	if err != nil {
		var re *dag.RejectError
		if errors.As(err, &re) {
			return nil, 0, &engine.RejectError{Reason: engine.Reason(re.Reason.String()), Err: err}
		}
		return nil, 0, err
	}
	if err := rs.check(room, ev); err != nil {
		return nil, 0, err
	}
	if kind == dag.KindCreate {
		// Record the room before its first event, so a crash in between
		// leaves a joined room that replays, never an orphan in the store.
		if err := rs.joinLocal(ev.RoomID()); err != nil {
			return nil, 0, err
		}
	}
	res, err := rs.store.Put(ev)
	if err != nil {
		return nil, 0, fmt.Errorf("node: store event: %w", err)
	}
	if res.Status != dag.StatusStored && res.Status != dag.StatusDuplicate {
		return nil, 0, fmt.Errorf("node: store event %v: status %v", ev.ID(), res.Status)
	}
	rs.queuePublish(ev)
	seq, err := rs.processLocked(ev.RoomID(), ev.ID())
	if err != nil {
		// Durable but not yet in the feed: the background loop retries.
		rs.log.Error("process after submit", "room", ev.RoomID(), "err", err)
		rs.pokeRoom(ev.RoomID())
		return ev, 0, nil
	}
	// The event's own feed position, not that of the order line it may
	// have caused: a client resuming from it must still see that line.
	return ev, seq, nil
}

// check authorizes a local event before it is stored: the room's engine
// decides (CheckLocal; its Step reuses the decision); a create event is
// checked for its initial state. A commit off the canonical tip and a
// message or proposal outside the tip's epoch are answered 409 with the
// tip, so that the client catches up (docs/api.md, "Ordering").
func (rs *rooms) check(id dag.RoomID, ev *dag.Event) error {
	if ev.Kind == dag.KindCreate {
		_, err := engine.InitialState(ev)
		return err
	}
	rs.mu.RLock()
	info := rs.m[id]
	rs.mu.RUnlock()
	if info == nil || info.eng == nil {
		return apierror.RoomUnknown(id)
	}
	err := info.eng.CheckLocal(ev)
	var re *engine.RejectError
	if !errors.As(err, &re) {
		return err
	}
	tip := info.eng.Tip()
	switch re.Reason {
	case engine.ReasonStaleParent:
		c, _ := roomevent.DecodeCommit(ev.Content) // CheckLocal decoded it
		return apierror.New(http.StatusConflict, clientapi.CodeStaleParent,
			"parent %v is not the canonical tip of room %v on this server; the tip is %v: apply the commits up to it (GET /v1/rooms/%v/order) and build the commit on %v",
			c.Parent, id, tip, id, tip)
	case engine.ReasonStaleEpoch:
		return apierror.New(http.StatusConflict, clientapi.CodeStaleEpoch,
			"the epoch is not the canonical epoch of room %v on this server; it is %v: apply the commits up to it (GET /v1/rooms/%v/order) and encrypt again in %v",
			id, tip, id, tip)
	}
	return err
}

// refs are the events room's engine requires among the parents of a
// local event of kind with content (rule R: the commit it names, and a
// commit's proposals by reference; and the pending state events a commit
// is to adopt).
func (rs *rooms) refs(id dag.RoomID, kind dag.Kind, content []byte) ([]dag.EventID, error) {
	rs.mu.RLock()
	info := rs.m[id]
	rs.mu.RUnlock()
	if info == nil || info.eng == nil {
		return nil, apierror.RoomUnknown(id)
	}
	return info.eng.Refs(kind, content)
}

// parents trims the parents chosen for a local event (room.Engine.Parents:
// a commit leaves out tips that are state events it would adopt but that
// do not apply).
func (rs *rooms) parents(id dag.RoomID, kind dag.Kind, content []byte, prev []dag.EventID) []dag.EventID {
	rs.mu.RLock()
	info := rs.m[id]
	rs.mu.RUnlock()
	if info == nil || info.eng == nil {
		return prev
	}
	return info.eng.Parents(kind, content, prev)
}

// joinLocal records a room this node creates (no via servers).
func (rs *rooms) joinLocal(room dag.RoomID) error {
	if _, err := rs.feed.AddRoom(room, feed.RoomRecord{How: feed.JoinedCreated, Since: rs.now().UnixMilli()}); err != nil {
		return err
	}
	rs.mu.Lock()
	if rs.m[room] == nil {
		rs.m[room] = &roomInfo{via: map[dag.ServerID]bool{}}
	}
	n := len(rs.m)
	rs.mu.Unlock()
	rs.metrics.Rooms.Set(float64(n))
	if rs.mesh != nil {
		if err := rs.mesh.JoinRoom(room); err != nil {
			return fmt.Errorf("node: join room %v: %w", room, err)
		}
	}
	return nil
}

// ShareRoom implements accounts.RoomIndex: it reports whether a and b both take part (any role but banned or
// knocking) in a room whose state this node holds.
func (rs *rooms) ShareRoom(a, b roomstate.URI) bool {
	in := func(st *roomstate.State, u roomstate.URI) bool {
		r := st.RoleOf(u)
		return r != roomstate.RoleNone && r != roomstate.RoleBanned && r != roomstate.RoleKnocking
	}
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for _, info := range rs.m {
		if info.state != nil && in(info.state, a) && in(info.state, b) {
			return true
		}
	}
	return false
}

// summary returns a room's state (nil before its create event is
// processed) and its arrival-log position processed so far.
func (rs *rooms) summary(room dag.RoomID) (st *roomstate.State, processed uint64) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if info := rs.m[room]; info != nil {
		return info.state, info.processed
	}
	return nil, 0
}
