package p2p

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// dialCheckInterval is how often the dialer looks for wanted peers that are
// not connected.
const dialCheckInterval = 500 * time.Millisecond

// maxConcurrentDials bounds dials in flight.
const maxConcurrentDials = 8

// dialer keeps the wanted peers connected: bootstrap peers, the servers of
// joined rooms (with addresses learned from room state) and peers found by
// mDNS. A failed dial backs off exponentially (BackoffMin doubling to
// BackoffMax, with up to 50 % jitter); a successful connection resets the
// backoff, and a lost one is redialed after BackoffMin.
type dialer struct {
	m *Mesh

	mu     sync.Mutex
	peers  map[peer.ID]*dialState
	wake   chan struct{}
	active int
}

type dialState struct {
	backoff  time.Duration
	next     time.Time
	dialing  bool
	attempts int
}

func newDialer(m *Mesh) *dialer {
	return &dialer{m: m, peers: make(map[peer.ID]*dialState), wake: make(chan struct{}, 1)}
}

func (d *dialer) start() { d.m.goFunc(d.loop) }

// want adds a peer to the set kept connected and remembers its addresses.
func (d *dialer) want(pi peer.AddrInfo) {
	if pi.ID == d.m.h.ID() || pi.ID == "" {
		return
	}
	if len(pi.Addrs) > 0 {
		d.m.h.Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.PermanentAddrTTL)
	}
	d.mu.Lock()
	if _, ok := d.peers[pi.ID]; !ok {
		d.peers[pi.ID] = &dialState{}
	}
	d.mu.Unlock()
	d.poke()
}

// forget removes a peer from the wanted set (blocked peers, servers no
// longer in any room).
func (d *dialer) forget(p peer.ID) {
	d.mu.Lock()
	delete(d.peers, p)
	d.mu.Unlock()
}

func (d *dialer) connected(p peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.peers[p]; st != nil {
		st.backoff, st.attempts = 0, 0
	}
}

func (d *dialer) disconnected(p peer.ID) {
	d.mu.Lock()
	if st := d.peers[p]; st != nil {
		st.next = time.Now().Add(d.m.cfg.BackoffMin)
	}
	d.mu.Unlock()
	d.poke()
}

func (d *dialer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dialer) loop() {
	t := time.NewTicker(dialCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-d.m.ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
		d.round()
	}
}

func (d *dialer) round() {
	now := time.Now()
	net := d.m.h.Network()
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, st := range d.peers {
		if d.active >= maxConcurrentDials {
			return
		}
		if st.dialing || now.Before(st.next) || net.Connectedness(p) == network.Connected || d.m.blocked(p) {
			continue
		}
		st.dialing = true
		st.attempts++
		d.active++
		d.m.goFunc(func() { d.dial(p) })
	}
}

func (d *dialer) dial(p peer.ID) {
	ctx, cancel := context.WithTimeout(d.m.ctx, d.m.cfg.RequestTimeout)
	err := d.m.h.Connect(ctx, peer.AddrInfo{ID: p})
	cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active--
	st := d.peers[p]
	if st == nil {
		return
	}
	st.dialing = false
	if err == nil {
		st.backoff = 0
		return
	}
	cfg := d.m.cfg
	st.backoff = min(max(2*st.backoff, cfg.BackoffMin), cfg.BackoffMax)
	jitter := time.Duration(rand.Int64N(int64(st.backoff)/2 + 1))
	st.next = time.Now().Add(st.backoff + jitter)
	if st.attempts <= 3 || st.attempts%10 == 0 {
		d.m.log.Debug("dial failed", "peer", p.ShortString(), "attempt", st.attempts, "retry_in", st.backoff+jitter, "err", err)
	}
}

// AddPeer asks the mesh to keep a connection to a server, for example a
// server of a joined room whose addresses the room state names. The
// addresses are remembered permanently; dialing retries with backoff.
func (m *Mesh) AddPeer(pi peer.AddrInfo) { m.dial.want(pi) }

// RemovePeer stops keeping a connection to a server (existing connections
// stay until they close).
func (m *Mesh) RemovePeer(p peer.ID) { m.dial.forget(p) }
