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

	metrics gaterMetrics

	mu      sync.Mutex
	blocked map[peer.ID]*blockRecord
}

// NewGater returns a gater enforcing policy (nil means [AllowAll]). When
// dialPrefixes is not empty, outbound dials go only to IP addresses inside
// those prefixes.
func NewGater(policy PeerPolicy, dialPrefixes []netip.Prefix) *Gater {
	if policy == nil {
		policy = AllowAll
	}
	return &Gater{policy: policy, prefixes: dialPrefixes, now: time.Now, blocked: make(map[peer.ID]*blockRecord),
		metrics: gaterMetrics{streams: newStreamRefusals()}}
}

// Block refuses every connection to or from id until the given duration has
// passed (a duration of zero or less lifts a block set this way). It is the
// operator's and the node's block (an isolation, say), separate from the
// misbehaviour blocks of [Gater.Punish]: neither lifts the other. Existing
// connections are not closed by the gater; the caller closes them.
func (g *Gater) Block(id peer.ID, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	r := g.record(id, now)
	r.until = now.Add(d)
	g.drop(id, r, now)
}

// Blocked reports whether id is currently blocked, by [Gater.Block] or by
// [Gater.Punish].
func (g *Gater) Blocked(id peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.blocked[id]
	if !ok {
		return false
	}
	now := g.now()
	g.drop(id, r, now)
	return r.until.After(now) || r.penaltyUntil.After(now)
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

// Misbehaviour blocks back off exponentially: the k-th block of a peer in a
// row lasts base << (k-1), at most base << maxBlockShift (64 x base: 10 min
// grows to 10 h 40 min with the default BlockDuration). A peer that stays
// unblocked for the longest block (base << maxBlockShift) after its last
// one ends starts again from base.
const maxBlockShift = 6

// maxBlockRecords bounds the gater's records: when a new peer would exceed
// it, records that no longer matter are swept, and if none can go, the one
// whose block ends first is dropped.
const maxBlockRecords = 1 << 16

// blockRecord is a peer's blocks: the one of Block, and the current or last
// one of Punish with its count.
type blockRecord struct {
	until        time.Time     // end of the Block block
	penaltyUntil time.Time     // end of the current or last misbehaviour block
	strikes      int           // misbehaviour blocks in a row
	base         time.Duration // base duration of the last misbehaviour block
}

// forgetAt is when r no longer matters: both blocks over, and the clean
// period after the last misbehaviour block over too.
func (r *blockRecord) forgetAt() time.Time {
	end := r.until
	if r.strikes > 0 {
		if clean := r.penaltyUntil.Add(r.base << maxBlockShift); clean.After(end) {
			end = clean
		}
	}
	return end
}

// Punish blocks id for misbehaviour, for base doubled once per earlier
// misbehaviour block of id in a row (see maxBlockShift), and returns the
// block's duration and its number in the row (1 for a first offender).
// When id is already under a misbehaviour block, nothing changes and it
// returns 0, 0: a burst of offences that arrive before the peer is gone is
// one strike. Like [Gater.Block], it does not close connections.
func (g *Gater) Punish(id peer.ID, base time.Duration) (time.Duration, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	r := g.record(id, now)
	if r.penaltyUntil.After(now) {
		return 0, 0
	}
	if r.strikes > 0 && !now.Before(r.penaltyUntil.Add(r.base<<maxBlockShift)) {
		r.strikes = 0 // clean for long enough
	}
	r.strikes++
	g.metrics.blocks.Add(1)
	r.base = base
	d := base << min(r.strikes-1, maxBlockShift)
	r.penaltyUntil = now.Add(d)
	return d, r.strikes
}

// blockedCount returns how many peers are blocked now (O(records)).
func (g *Gater) blockedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	n := 0
	for _, r := range g.blocked {
		if r.until.After(now) || r.penaltyUntil.After(now) {
			n++
		}
	}
	return n
}

// record returns id's record, creating it. The caller holds g.mu.
func (g *Gater) record(id peer.ID, now time.Time) *blockRecord {
	if r, ok := g.blocked[id]; ok {
		return r
	}
	if len(g.blocked) >= maxBlockRecords {
		for p, r := range g.blocked {
			g.drop(p, r, now)
		}
		if len(g.blocked) >= maxBlockRecords {
			var first peer.ID
			var end time.Time
			for p, r := range g.blocked {
				if e := r.forgetAt(); first == "" || e.Before(end) {
					first, end = p, e
				}
			}
			delete(g.blocked, first)
		}
	}
	r := &blockRecord{}
	g.blocked[id] = r
	return r
}

// drop deletes id's record once it no longer matters. The caller holds g.mu.
func (g *Gater) drop(id peer.ID, r *blockRecord, now time.Time) {
	if !r.forgetAt().After(now) {
		delete(g.blocked, id)
	}
}
