package p2p

import (
	"context"
	"errors"
	"fmt"
	"sync"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/rhizome-chat/rhizome/dag"
)

// errStranger is returned to pubsub for a stream it may not open.
var errStranger = errors.New("p2p: peer shares no joined room")

// pubsubHost is the host gossipsub runs on: the mesh's host, except that
// pubsub's streams are opened and accepted only with peers that take part
// in some room this server joined. A stranger therefore gets nothing of
// pubsub: no hello (which lists every topic this server joined), no
// subscription announcements, no messages; and it cannot send any.
//
// A refused peer is remembered (refusals); when it later takes part in a
// joined room, [Mesh.RefreshPeers] closes the connection to it, so that
// pubsub meets it afresh on the next connection.
type pubsubHost struct {
	host.Host
	m *Mesh
}

// NewStream opens a pubsub stream to a peer that shares a joined room.
func (h *pubsubHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if !h.m.sharesRoom(p) {
		h.m.refused.add(p, nil)
		return nil, fmt.Errorf("%w: %s", errStranger, p.ShortString())
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err == nil && s.Conn().IsClosed() {
		// A stream opened while its connection closes (RefreshPeers
		// closes connections) would outlive it on some transports.
		_ = s.Reset()
		return nil, fmt.Errorf("p2p: pubsub stream to %s: %w", p.ShortString(), network.ErrReset)
	}
	return s, err
}

// SetStreamHandler registers pubsub's handler behind the same check.
func (h *pubsubHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.guard(handler))
}

// SetStreamHandlerMatch registers pubsub's handler behind the same check.
func (h *pubsubHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, h.guard(handler))
}

func (h *pubsubHost) guard(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if s.Conn().IsClosed() {
			_ = s.Reset() // as in NewStream
			return
		}
		p := s.Conn().RemotePeer()
		if !h.m.sharesRoom(p) {
			h.m.refused.add(p, nil)
			_ = s.Reset()
			// An honest server sharing no room opens one per connection;
			// a stream of them past foreignRate is an attack and ends in
			// a block.
			if !h.m.foreignLimit.allow(p) {
				h.m.offend(p, OffenseUnsolicited, fmt.Errorf("%w: pubsub streams from a peer that shares no room", errStranger))
			}
			return
		}
		handler(s)
	}
}

// sharesRoom reports whether p takes part in a room this server joined (or
// is joining) and is not blocked.
func (m *Mesh) sharesRoom(p peer.ID) bool {
	if m.blocked(p) {
		return false
	}
	m.mu.RLock()
	rooms := make([]dag.RoomID, 0, len(m.topics))
	for _, id := range m.topics {
		rooms = append(rooms, id)
	}
	m.mu.RUnlock()
	for _, id := range rooms {
		if m.participates(id, p) {
			return true
		}
	}
	return false
}

// subscriptionFilter keeps pubsub's subscription state to the rooms this
// server joined, and to the peers that take part in them: a subscription
// from any other peer is ignored (pubsub never counts it as a subscriber,
// so no message or announcement of the room goes to it on that account).
type subscriptionFilter struct{ m *Mesh }

// CanSubscribe allows the topics of joined rooms (JoinRoom registers the
// topic before joining it).
func (f subscriptionFilter) CanSubscribe(topic string) bool {
	_, ok := f.m.topicRoom(topic)
	return ok
}

// FilterIncomingSubscriptions keeps the subscriptions of p to joined rooms
// in which p takes part. A subscription ignored because p does not take
// part in the room is remembered, so that RefreshPeers reconnects p once
// it does (pubsub learns subscriptions only when announced).
func (f subscriptionFilter) FilterIncomingSubscriptions(p peer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	out := make([]*pb.RPC_SubOpts, 0, len(subs))
	for _, s := range subs {
		room, ok := f.m.topicRoom(s.GetTopicid())
		if !ok {
			continue
		}
		if !f.m.participates(room, p) {
			f.m.refused.add(p, &room)
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func (m *Mesh) topicRoom(topic string) (dag.RoomID, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.topics[topic]
	return id, ok
}

// refusals are the connected peers that pubsub was kept from: a refused
// stream (any shared room would let it in) or an ignored subscription to
// a joined room. Entries go when the peer disconnects or is reconnected,
// so the set is bounded by the connected peers and the joined rooms.
type refusals struct {
	mu    sync.Mutex
	peers map[peer.ID]*refusal
}

type refusal struct {
	stream bool
	rooms  map[dag.RoomID]bool
}

func newRefusals() *refusals { return &refusals{peers: map[peer.ID]*refusal{}} }

// add records a refused stream (room nil) or an ignored subscription.
func (r *refusals) add(p peer.ID, room *dag.RoomID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.peers[p]
	if e == nil {
		e = &refusal{rooms: map[dag.RoomID]bool{}}
		r.peers[p] = e
	}
	if room == nil {
		e.stream = true
	} else {
		e.rooms[*room] = true
	}
}

func (r *refusals) forget(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.peers, p)
}

// snapshot returns a copy of the refusals.
func (r *refusals) snapshot() map[peer.ID]refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[peer.ID]refusal, len(r.peers))
	for p, e := range r.peers {
		rooms := make(map[dag.RoomID]bool, len(e.rooms))
		for id := range e.rooms {
			rooms[id] = true
		}
		out[p] = refusal{stream: e.stream, rooms: rooms}
	}
	return out
}

// RefreshPeers asks the mesh to re-check the peers that pubsub was kept
// from (it returns at once; the check runs on the mesh's goroutine). A
// peer that now takes part in a room this server joined is disconnected
// and dialed again, so that pubsub exchanges hellos and subscriptions with
// it afresh. The node calls it when a room's server list changes; JoinRoom
// and every heads round call it too.
func (m *Mesh) RefreshPeers() {
	select {
	case m.refresh <- struct{}{}:
	default:
	}
}

func (m *Mesh) refreshLoop() {
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.refresh:
			m.refreshRefused()
		}
	}
}

// refreshRefused reconnects the refused peers that are now let in. A peer
// is reconnected once per change: after the reconnection pubsub meets it
// without refusal, so it is not recorded again.
func (m *Mesh) refreshRefused() {
	for p, e := range m.refused.snapshot() {
		if m.h.Network().Connectedness(p) != network.Connected {
			m.refused.forget(p)
			continue
		}
		now := e.stream && m.sharesRoom(p)
		for room := range e.rooms {
			now = now || (m.participates(room, p) && !m.blocked(p))
		}
		if !now {
			continue
		}
		m.refused.forget(p)
		m.log.Info("reconnecting a peer that now shares a room, for gossip", "peer", p.ShortString())
		addrs := m.h.Peerstore().Addrs(p)
		_ = m.h.Network().ClosePeer(p)
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.RequestTimeout)
		if err := m.h.Connect(ctx, peer.AddrInfo{ID: p, Addrs: addrs}); err != nil {
			m.log.Debug("reconnect", "peer", p.ShortString(), "err", err)
		}
		cancel()
		// Closing the connection cut the pulls running against p (a
		// room joined a moment ago starts with one), and the reconnection
		// may not show as a new connection when another was open: pull
		// every shared room again, so nothing waits for the heads round.
		for _, room := range m.Rooms() {
			if m.participates(room, p) {
				m.pulls.schedule(room, p, nil)
			}
		}
	}
}
