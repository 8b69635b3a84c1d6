package p2p

import (
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// PeerPolicy decides which servers may connect at all. The node implements it
// from its configuration (an allowlist for closed federations, a denylist for
// open ones); [AllowAll] admits every Rhizome server.
type PeerPolicy interface {
	// AllowPeer reports whether the server with this peer ID may connect.
	AllowPeer(id peer.ID) bool
}

// PolicyFunc adapts a function to [PeerPolicy].
type PolicyFunc func(id peer.ID) bool

// AllowPeer calls f(id).
func (f PolicyFunc) AllowPeer(id peer.ID) bool { return f(id) }

// AllowAll is the open-federation policy: every Ed25519-keyed peer may connect
// (the gater still refuses peers it has blocked for misbehaviour).
var AllowAll PeerPolicy = PolicyFunc(func(peer.ID) bool { return true })

// Gater is the host's connection gater. It admits a connection only when all
// of these hold:
//
//   - the remote peer ID embeds an Ed25519 key (peer ID = server identity);
//   - the [PeerPolicy] allows the peer;
//   - the peer is not blocked for misbehaviour (see [Gater.Block]);
//   - for outbound dials, the address lies in one of the allowed prefixes, if
//     any are configured (tests use this to stay on loopback).
//
// Inbound connections are checked after the security handshake, when the
// peer's identity is known (InterceptSecured).
type Gater struct {
	policy   PeerPolicy
	prefixes []netip.Prefix
	now      func() time.Time

	mu      sync.Mutex
	blocked map[peer.ID]time.Time // peer -> end of block
}

// NewGater returns a gater enforcing policy (nil means [AllowAll]). When
// dialPrefixes is not empty, outbound dials go only to IP addresses inside
// those prefixes.
func NewGater(policy PeerPolicy, dialPrefixes []netip.Prefix) *Gater {
	if policy == nil {
		policy = AllowAll
	}
	return &Gater{policy: policy, prefixes: dialPrefixes, now: time.Now, blocked: make(map[peer.ID]time.Time)}
}

// Block refuses every connection to or from id until the given duration has
// passed. Existing connections are not closed by the gater; the caller closes
// them.
func (g *Gater) Block(id peer.ID, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.blocked[id] = g.now().Add(d)
}

// Blocked reports whether id is currently blocked.
func (g *Gater) Blocked(id peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.blocked[id]
	if !ok {
		return false
	}
	if g.now().After(until) {
		delete(g.blocked, id)
		return false
	}
	return true
}

// AllowPeer reports whether the gater admits id (Ed25519 key, policy, not
// blocked).
func (g *Gater) AllowPeer(id peer.ID) bool {
	if _, err := ServerKey(id); err != nil {
		return false
	}
	return !g.Blocked(id) && g.policy.AllowPeer(id)
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.AllowPeer(p) }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptAddrDial(p peer.ID, addr ma.Multiaddr) bool {
	if !g.AllowPeer(p) {
		return false
	}
	return g.allowAddr(addr)
}

func (g *Gater) allowAddr(addr ma.Multiaddr) bool {
	if len(g.prefixes) == 0 {
		return true
	}
	ip, err := manet.ToIP(addr)
	if err != nil {
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range g.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// InterceptAccept implements connmgr.ConnectionGater. The remote identity is
// not known yet, so inbound connections are judged in InterceptSecured.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.AllowPeer(p)
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
