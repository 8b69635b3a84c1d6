package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Every stream the mesh accepts has a deadline (docs/security.md, "Streams
// and connections"):
//
//   - sync and KeyPackage directory: the request frame must arrive within
//     RequestReadTimeout (default 5 s) of the stream's opening, and the
//     whole exchange must be over within RequestTimeout (default 20 s);
//     then the stream is reset.
//   - gossip: pubsub's one long-lived stream per peer is gossipsub's own;
//     the peer filter decides whom it talks to.
//   - identify and ping: libp2p's own timeouts (5 s and 10 s); a stream
//     whose protocol is never negotiated: libp2p's negotiation timeout
//     (10 s).
//
// The deadlines are enforced by a timer that resets the stream, not by
// stream deadlines: not every transport honours those (mocknet's pipes do
// not), one timer covers both the wait for the request and a peer that
// reads the answer slowly, and a reset by the timer is always counted
// (a deadline passing would surface as an ordinary read or write error).

// errIdleStream is readRequest's error when a peer does not send its
// request frame within RequestReadTimeout of opening the stream.
var errIdleStream = errors.New("p2p: no request within the read timeout")

// StreamRefusal is why the mesh reset an inbound stream without answering
// it. [Mesh.StreamRefusals] counts them.
type StreamRefusal uint8

// Stream refusals.
const (
	// RefuseStranger: a sync stream from a peer that participates in none
	// of the joined rooms, reset before anything is read.
	RefuseStranger StreamRefusal = iota + 1
	// RefuseBlocked: a stream from a peer blocked for misbehaviour.
	RefuseBlocked
	// RefuseIdle: a stream whose request frame did not arrive within
	// RequestReadTimeout, or whose exchange outlasted RequestTimeout.
	RefuseIdle
)

var streamRefusalNames = [...]string{"", "stranger", "blocked", "idle"}

// String returns the refusal's name (for logs and metric labels).
func (r StreamRefusal) String() string {
	if r > 0 && int(r) < len(streamRefusalNames) {
		return streamRefusalNames[r]
	}
	return fmt.Sprintf("refusal(%d)", uint8(r))
}

// streamRefusals counts refused streams by reason, and rate-limits their
// logging to one line per peer and minute: a sybil set opening streams must
// not flood the log either.
type streamRefusals struct {
	counts [len(streamRefusalNames)]atomic.Uint64
	logs   *peerLimiter
}

func newStreamRefusals() *streamRefusals {
	return &streamRefusals{logs: newPeerLimiter(Rate{PerSecond: 1.0 / 60, Burst: 1}, time.Now)}
}

// StreamRefusals returns how many inbound streams the mesh reset without
// answering, by reason.
func (m *Mesh) StreamRefusals() map[StreamRefusal]uint64 {
	out := make(map[StreamRefusal]uint64, len(streamRefusalNames)-1)
	for r := RefuseStranger; int(r) < len(streamRefusalNames); r++ {
		out[r] = m.streams.counts[r].Load()
	}
	return out
}

// refuseStream resets s and records why.
func (m *Mesh) refuseStream(s network.Stream, why StreamRefusal) {
	_ = s.Reset()
	m.streams.counts[why].Add(1)
	p := s.Conn().RemotePeer()
	if m.streams.logs.allow(p) {
		m.log.Info("stream refused", "peer", p.ShortString(), "protocol", string(s.Protocol()), "reason", why.String())
	}
}

// participatesAny reports whether p participates in at least one joined
// room: only such peers may hold sync streams. O(joined rooms).
func (m *Mesh) participatesAny(p peer.ID) bool {
	sid, ok := serverID(p)
	if !ok {
		return false
	}
	for _, id := range m.Rooms() {
		if m.cfg.ACL.Participates(id, sid) {
			return true
		}
	}
	return false
}

// watchdog resets an accepted stream whose time is up: first
// RequestReadTimeout for the request frame, then the rest of RequestTimeout
// for the whole exchange.
type watchdog struct {
	s       network.Stream
	start   time.Time
	total   time.Duration
	t       *time.Timer
	expired atomic.Bool
}

// guard starts the watchdog of an accepted stream.
func (m *Mesh) guard(s network.Stream) *watchdog {
	w := &watchdog{s: s, start: time.Now(), total: m.cfg.RequestTimeout}
	w.t = time.AfterFunc(m.cfg.RequestReadTimeout, func() {
		w.expired.Store(true)
		_ = s.Reset()
	})
	return w
}

// readRequest reads the stream's request frame of at most limit bytes. A
// frame that does not arrive in time fails with errIdleStream; after it,
// the watchdog gives the exchange the rest of RequestTimeout.
func (w *watchdog) readRequest(limit int) ([]byte, error) {
	raw, err := readFrame(bufio.NewReader(w.s), limit)
	if w.expired.Load() {
		return nil, errIdleStream
	}
	if err == nil {
		w.t.Reset(w.total - time.Since(w.start))
	}
	return raw, err
}

// stop ends the watchdog and reports whether it had already reset the
// stream.
func (w *watchdog) stop() bool {
	w.t.Stop()
	return w.expired.Load()
}

// peerSlots bounds concurrent uses per peer, waiting for a slot (the
// requesting side's counterpart of [semaphore]). Peers without waiters or
// holders have no entry.
type peerSlots struct {
	n int

	mu    sync.Mutex
	peers map[peer.ID]*slotQueue
}

type slotQueue struct {
	ch    chan struct{}
	users int // holders and waiters
}

func newPeerSlots(n int) *peerSlots {
	return &peerSlots{n: n, peers: make(map[peer.ID]*slotQueue)}
}

// acquire waits for one of p's slots and returns its release, or ctx's
// error.
func (ps *peerSlots) acquire(ctx context.Context, p peer.ID) (func(), error) {
	ps.mu.Lock()
	q := ps.peers[p]
	if q == nil {
		q = &slotQueue{ch: make(chan struct{}, ps.n)}
		ps.peers[p] = q
	}
	q.users++
	ps.mu.Unlock()
	select {
	case q.ch <- struct{}{}:
		return func() {
			<-q.ch
			ps.leave(p, q)
		}, nil
	case <-ctx.Done():
		ps.leave(p, q)
		return nil, ctx.Err()
	}
}

func (ps *peerSlots) leave(p peer.ID, q *slotQueue) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if q.users--; q.users == 0 {
		delete(ps.peers, p)
	}
}
