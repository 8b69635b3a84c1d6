package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
)

// Errors returned by [Mesh] methods.
var (
	ErrClosed     = errors.New("p2p: mesh closed")
	ErrNotJoined  = errors.New("p2p: room not joined")
	ErrNoStore    = errors.New("p2p: config needs a host, a store and an ACL")
	ErrWrongRoom  = errors.New("p2p: event belongs to another room")
	ErrNoDirector = errors.New("p2p: no KeyPackage source configured")
)

// Config configures a [Mesh]. Host, Store and ACL are required; every other
// zero field takes the default named in its comment.
type Config struct {
	// Host is the server's libp2p host (from [NewHost], or a mocknet host in
	// tests). The mesh does not close it.
	Host host.Host
	// Gater is the host's gater; peers that misbehave past the block
	// threshold or fall below gossipsub's graylist threshold are blocked
	// there (docs/security.md). Nil means a gater of the mesh's own, which
	// the mesh enforces itself (mocknet hosts have none).
	Gater *Gater
	// Store receives every event that arrives (gossip or sync) and serves
	// sync requests.
	Store dag.Store
	// ACL answers which servers participate in which room.
	ACL RoomACL
	// KeyPackages, if set, serves the KeyPackage directory protocol for
	// this server's users.
	KeyPackages KeyPackageSource
	// Logger receives the mesh's logs; nil discards them.
	Logger *slog.Logger
	// OnEvent, if set, is called once for every event newly stored in the
	// store through the mesh (including pending events released by it and
	// events this server publishes). It must not block for long.
	OnEvent func(room dag.RoomID, id dag.EventID)
	// OnInvite, if set, serves the invite notice protocol: it is called
	// for each notice taken (within a per-peer rate and a bound on the
	// notices in progress), on its own goroutine, with from the notifier.
	// It must verify the invitation itself; ctx ends when the mesh closes.
	OnInvite func(ctx context.Context, from dag.ServerID, notice InviteNotice)

	// Bootstrap peers are dialed at start and kept connected.
	Bootstrap []peer.AddrInfo
	// MDNS enables LAN discovery (default off).
	MDNS bool
	// MDNSService is the mDNS service name (default "rhizome").
	MDNSService string

	// HeadsInterval is the period of the heads exchange (default 30 s).
	HeadsInterval time.Duration
	// HeadsFanout is how many connected participants of each room get a
	// heads exchange per period (default 3).
	HeadsFanout int
	// PullWorkers bounds concurrent pulls (default 8).
	PullWorkers int
	// RequestTimeout bounds one request/response (default 20 s).
	RequestTimeout time.Duration
	// RequestReadTimeout bounds the wait for the request frame of an
	// accepted sync or directory stream (default 5 s).
	RequestReadTimeout time.Duration
	// SyncRate is the per-peer rate of sync requests served
	// (default 50/s, burst 100).
	SyncRate Rate
	// DirectoryRate is the per-peer rate of KeyPackage requests served
	// (default 5/s, burst 20).
	DirectoryRate Rate
	// OriginRate is the rate of a room's gossip events that the validator
	// lets through from one origin server (default 200/s, burst 1000), and
	// RoomRate that of a room's gossip events from all origins together
	// (default 500/s, burst 2000). Events over either are ignored (not
	// relayed, not stored); sync brings them later.
	OriginRate, RoomRate Rate
	// ServeConcurrency and ServePeerConcurrency bound sync requests being
	// served at once, in total (default 64) and per peer (default 4).
	ServeConcurrency, ServePeerConcurrency int
	// BackoffMin and BackoffMax bound the redial backoff (default 1 s,
	// 60 s).
	BackoffMin, BackoffMax time.Duration
	// BlockDuration is how long a peer over the penalty threshold or
	// below the graylist threshold is refused the first time (default
	// 10 min); each further block in a row doubles it, up to 64 times
	// (see [Gater.Punish]).
	BlockDuration time.Duration
	// GossipParams overrides gossipsub's router parameters (tests, the
	// simulator); nil means pubsub's defaults.
	GossipParams *pubsub.GossipSubParams
}

func (c *Config) setDefaults() {
	setDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setInt := func(i *int, v int) {
		if *i <= 0 {
			*i = v
		}
	}
	setDur(&c.HeadsInterval, 30*time.Second)
	setDur(&c.RequestTimeout, 20*time.Second)
	setDur(&c.RequestReadTimeout, 5*time.Second)
	if c.Gater == nil {
		c.Gater = NewGater(nil, nil)
	}
	setDur(&c.BackoffMin, time.Second)
	setDur(&c.BackoffMax, time.Minute)
	setDur(&c.BlockDuration, 10*time.Minute)
	setInt(&c.HeadsFanout, 3)
	setInt(&c.PullWorkers, 8)
	setInt(&c.ServeConcurrency, 64)
	setInt(&c.ServePeerConcurrency, 4)
	if c.SyncRate.PerSecond <= 0 || c.SyncRate.Burst <= 0 {
		c.SyncRate = Rate{PerSecond: 50, Burst: 100}
	}
	if c.DirectoryRate.PerSecond <= 0 || c.DirectoryRate.Burst <= 0 {
		c.DirectoryRate = Rate{PerSecond: 5, Burst: 20}
	}
	if c.OriginRate.PerSecond <= 0 || c.OriginRate.Burst <= 0 {
		c.OriginRate = defaultOriginRate
	}
	if c.RoomRate.PerSecond <= 0 || c.RoomRate.Burst <= 0 {
		c.RoomRate = defaultRoomRate
	}
	if c.MDNSService == "" {
		c.MDNSService = "rhizome"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Mesh is a server's federation transport: gossip per room for push, the
// sync protocol for pull, the KeyPackage directory, discovery and peer
// scoring, all on one libp2p host.
//
// Goroutines: one per joined room (reading its gossip subscription), the
// pull workers, the heads ticker, the connection-event reader, the peer
// refresher and the dialer. All stop on Close.
type Mesh struct {
	cfg    Config
	h      host.Host
	self   dag.ServerID
	log    *slog.Logger
	ps     *pubsub.PubSub
	ledger *ledger
	pulls  *puller
	dial   *dialer
	// verifier batches the signature checks of concurrent gossip
	// validators.
	verifier *Verifier

	syncLimit *peerLimiter
	dirLimit  *peerLimiter
	invites   *invites
	hintLimit *peerLimiter // hint pulls for gossip of origins not yet writers
	// foreignLimit is the gossip of rooms it does not participate in that a
	// peer may forward before it is scored down (foreignRate).
	foreignLimit *peerLimiter
	serving      *semaphore
	rate         *eventRate
	rejected     rejections
	// refused is pubsub's side of the peers it was kept from (see
	// pubsubHost); refresh is signalled to re-check them.
	refused *refusals
	refresh chan struct{}

	// dirServing holds the directory's slots (directory.go); streams
	// counts the inbound streams reset unanswered (streams.go).
	dirServing *dirSlots
	streams    *streamRefusals

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	closed  bool
	rooms   map[dag.RoomID]*room
	joining map[dag.RoomID]bool
	topics  map[string]dag.RoomID

	scoreMu sync.Mutex
	scores  map[peer.ID]float64
}

type room struct {
	id    dag.RoomID
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	done  chan struct{}
}

// New starts a mesh on cfg.Host. It registers the sync and (if configured)
// KeyPackage protocol handlers, starts gossipsub and the background loops,
// and dials the bootstrap peers.
func New(cfg Config) (*Mesh, error) {
	if cfg.Host == nil || cfg.Store == nil || cfg.ACL == nil {
		return nil, ErrNoStore
	}
	cfg.setDefaults()
	pub, err := ServerKey(cfg.Host.ID())
	if err != nil {
		return nil, fmt.Errorf("p2p: host identity: %w", err)
	}
	self, err := dag.ServerIDFromKey(pub)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mesh{
		cfg:          cfg,
		h:            cfg.Host,
		self:         self,
		log:          cfg.Logger.With("sys", "p2p", "self", cfg.Host.ID().ShortString()),
		ledger:       newLedger(time.Now),
		syncLimit:    newPeerLimiter(cfg.SyncRate, time.Now),
		dirLimit:     newPeerLimiter(cfg.DirectoryRate, time.Now),
		hintLimit:    newPeerLimiter(hintRate, time.Now),
		foreignLimit: newPeerLimiter(foreignRate, time.Now),
		rate:         newEventRate(cfg.OriginRate, cfg.RoomRate, time.Now),
		refused:      newRefusals(),
		refresh:      make(chan struct{}, 1),
		serving:      newSemaphore(cfg.ServeConcurrency, cfg.ServePeerConcurrency),
		ctx:          ctx,
		cancel:       cancel,
		rooms:        make(map[dag.RoomID]*room),
		joining:      make(map[dag.RoomID]bool),
		topics:       make(map[string]dag.RoomID),
		scores:       make(map[peer.ID]float64),
		verifier:     NewVerifier(0),
	}
	m.dirServing = newDirSlots()
	m.streams = cfg.Gater.metrics.streams
	m.ps, err = m.newPubSub(ctx)
	if err != nil {
		cancel()
		m.verifier.Close()
		return nil, err
	}
	// Subscribe to connection events before anything can connect, so no
	// connection goes unnoticed.
	sub, err := m.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		cancel()
		m.verifier.Close()
		return nil, fmt.Errorf("p2p: subscribe to connection events: %w", err)
	}
	m.pulls = newPuller(m, cfg.PullWorkers)
	m.dial = newDialer(m)
	m.h.SetStreamHandler(SyncProtocol, m.handleSync)
	if cfg.KeyPackages != nil {
		m.h.SetStreamHandler(KeyPackageProtocol, m.handleDirectory)
	}
	if cfg.OnInvite != nil {
		m.invites = newInvites()
		m.h.SetStreamHandler(InviteProtocol, m.handleInvite)
	}
	m.goFunc(func() { m.connectionEvents(sub) })
	m.goFunc(m.headsLoop)
	m.goFunc(m.refreshLoop)
	m.pulls.start()
	m.dial.start()
	for _, pi := range cfg.Bootstrap {
		m.dial.want(pi)
	}
	if cfg.MDNS {
		if err := m.startMDNS(); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

func (m *Mesh) goFunc(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// Close stops every goroutine of the mesh, leaves all rooms and removes the
// protocol handlers. It does not close the host or the store.
func (m *Mesh) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	rooms := m.rooms
	m.rooms = map[dag.RoomID]*room{}
	m.mu.Unlock()

	m.h.RemoveStreamHandler(SyncProtocol)
	m.h.RemoveStreamHandler(KeyPackageProtocol)
	m.h.RemoveStreamHandler(InviteProtocol)
	for _, r := range rooms {
		r.stop()
	}
	m.cancel()
	m.wg.Wait()
	m.verifier.Close() // a validator still running verifies on its own goroutine
	return nil
}

// Host returns the mesh's libp2p host.
func (m *Mesh) Host() host.Host { return m.h }

// Self returns this server's identity.
func (m *Mesh) Self() dag.ServerID { return m.self }

// JoinRoom subscribes to the room's gossip topic and starts pulling the room
// from connected participants. Joining a joined room is a no-op.
func (m *Mesh) JoinRoom(id dag.RoomID) error {
	// m.mu is not held while calling into pubsub: pubsub's event loop calls
	// back into the mesh (peer filter, validator) and would deadlock.
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if _, ok := m.rooms[id]; ok || m.joining[id] {
		m.mu.Unlock()
		return nil
	}
	m.joining[id] = true
	m.topics[TopicName(id)] = id
	m.mu.Unlock()

	r, err := m.joinTopic(id)

	m.mu.Lock()
	delete(m.joining, id)
	if err != nil || m.closed {
		delete(m.topics, TopicName(id))
		m.mu.Unlock()
		if err == nil {
			r.stop()
			return ErrClosed
		}
		return err
	}
	m.rooms[id] = r
	m.goFunc(func() { m.readRoom(r) })
	m.mu.Unlock()

	m.pullParticipants(id)
	m.RefreshPeers()
	// Until the other servers graft this one into the room's gossip mesh
	// (their next heartbeat, once they count it as a participant), what
	// they publish does not reach it: pull again a few times, so that the
	// commit that brought it in and the votes on it do not wait for the
	// heads round.
	for _, d := range joinFollowUps {
		time.AfterFunc(d, func() {
			if m.ctx.Err() == nil && m.joined(id) != nil {
				m.pullParticipants(id)
			}
		})
	}
	return nil
}

// joinFollowUps are the delays after JoinRoom at which a room is pulled
// again from its participants (three timers per join; joins are bounded by
// the node's join limits).
var joinFollowUps = []time.Duration{time.Second, 3 * time.Second, 8 * time.Second}

// pullParticipants schedules a pull of room from every connected peer that
// takes part in it.
func (m *Mesh) pullParticipants(id dag.RoomID) {
	for _, p := range m.h.Network().Peers() {
		if m.participates(id, p) && !m.blocked(p) {
			m.pulls.schedule(id, p, nil)
		}
	}
}

// LeaveRoom unsubscribes from the room's topic. Stored events stay in the
// store.
func (m *Mesh) LeaveRoom(id dag.RoomID) {
	m.mu.Lock()
	r := m.rooms[id]
	delete(m.rooms, id)
	delete(m.topics, TopicName(id))
	m.mu.Unlock()
	if r != nil {
		r.stop()
	}
}

// Rooms returns the joined rooms.
func (m *Mesh) Rooms() []dag.RoomID {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]dag.RoomID, 0, len(m.rooms))
	for id := range m.rooms {
		out = append(out, id)
	}
	return out
}

func (m *Mesh) joined(id dag.RoomID) *room {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rooms[id]
}

// Publish stores ev (it must be signed and of a joined room) and gossips it
// to the room's topic. An event that cannot be gossiped right now (no peers)
// still reaches the others through sync.
func (m *Mesh) Publish(ctx context.Context, ev *dag.Event) error {
	r := m.joined(ev.RoomID())
	if r == nil {
		return fmt.Errorf("%w: %v", ErrNotJoined, ev.RoomID())
	}
	if err := m.store(ev); err != nil {
		return err
	}
	if err := r.topic.Publish(ctx, ev.Bytes()); err != nil {
		return fmt.Errorf("p2p: publish %v: %w", ev.ID(), err)
	}
	return nil
}

// store puts ev and reports newly stored events.
func (m *Mesh) store(ev *dag.Event) error {
	res, err := m.cfg.Store.Put(ev)
	if err != nil {
		return fmt.Errorf("p2p: store %v: %w", ev.ID(), err)
	}
	m.stored(ev.RoomID(), res)
	return nil
}

func (m *Mesh) stored(room dag.RoomID, res dag.PutResult) {
	if m.cfg.OnEvent == nil {
		return
	}
	if res.Status == dag.StatusStored {
		m.cfg.OnEvent(room, res.ID)
	}
	for _, id := range res.Released {
		m.cfg.OnEvent(room, id)
	}
}

// participates reports whether peer p is a participant of room per the ACL.
func (m *Mesh) participates(room dag.RoomID, p peer.ID) bool {
	sid, ok := serverID(p)
	return ok && m.cfg.ACL.Participates(room, sid)
}

func serverID(p peer.ID) (dag.ServerID, bool) {
	pub, err := ServerKey(p)
	if err != nil {
		return dag.ServerID{}, false
	}
	sid, err := dag.ServerIDFromKey(pub)
	return sid, err == nil
}

// offend records an offense of p and blocks p once its penalty crosses the
// threshold.
func (m *Mesh) offend(p peer.ID, o Offense, detail error) {
	penalty := m.ledger.record(p, o)
	m.log.Warn("peer offense", "peer", p.ShortString(), "offense", o.String(), "penalty", penalty, "err", detail)
	if penalty >= blockThreshold {
		m.punish(p, "penalty", penalty)
	}
}

// blocked reports whether p is blocked at the gater (for misbehaviour, see
// graylist.go, or by the node).
func (m *Mesh) blocked(p peer.ID) bool {
	return m.cfg.Gater.Blocked(p)
}

// Penalty returns the local misbehaviour penalty of p (0 for a well-behaved
// peer; see docs/protocol.md, "Peer scoring").
func (m *Mesh) Penalty(p peer.ID) float64 { return m.ledger.penalty(p) }

// Offenses returns how many offenses of kind o p has committed.
func (m *Mesh) Offenses(p peer.ID, o Offense) int { return m.ledger.count(p, o) }

// GossipScore returns p's gossipsub score as last sampled (once a second).
func (m *Mesh) GossipScore(p peer.ID) (float64, bool) {
	m.scoreMu.Lock()
	defer m.scoreMu.Unlock()
	s, ok := m.scores[p]
	return s, ok
}

// connectionEvents reacts to connections: a heads exchange for every shared
// room right after (re)connection, and the dialer's bookkeeping.
func (m *Mesh) connectionEvents(sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-m.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerConnectednessChanged)
			switch ev.Connectedness {
			case network.Connected:
				if m.blocked(ev.Peer) {
					// The gater refuses blocked peers, but a dial
					// racing the block (or a transport without a
					// gater) can still connect: close it again.
					_ = m.h.Network().ClosePeer(ev.Peer)
					continue
				}
				m.dial.connected(ev.Peer)
				for _, id := range m.Rooms() {
					if m.participates(id, ev.Peer) {
						m.pulls.schedule(id, ev.Peer, nil)
					}
				}
			case network.NotConnected:
				m.dial.disconnected(ev.Peer)
				m.refused.forget(ev.Peer)
			}
		}
	}
}

// headsLoop runs the periodic heads exchange: every HeadsInterval, for each
// joined room, a pull from up to HeadsFanout random connected participants.
func (m *Mesh) headsLoop() {
	t := time.NewTicker(m.cfg.HeadsInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.headsRound()
		}
	}
}

func (m *Mesh) headsRound() {
	// Pending events whose parents never came age out (dag.Limits.PendingTTL).
	if n, err := m.cfg.Store.ExpirePending(time.Now()); err != nil {
		m.log.Warn("expire pending events", "err", err)
	} else if n > 0 {
		m.log.Info("pending events expired", "count", n)
	}
	m.RefreshPeers()
	peers := m.h.Network().Peers()
	for _, id := range m.Rooms() {
		var cand []peer.ID
		for _, p := range peers {
			if m.participates(id, p) && !m.blocked(p) {
				cand = append(cand, p)
			}
		}
		shuffle(cand)
		for _, p := range cand[:min(len(cand), m.cfg.HeadsFanout)] {
			m.pulls.schedule(id, p, nil)
		}
	}
}
