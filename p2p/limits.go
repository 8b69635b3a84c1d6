package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits are the resource manager limits of a server's host. The zero value
// is not usable; start from [DefaultLimits].
//
// Why these numbers: a Rhizome server federates with the servers of its
// users' rooms, typically tens and at most a few hundred, not with an open
// swarm of thousands. So connection limits are low, per-peer limits are tight
// (a single misbehaving server cannot take more than a slice of the budget),
// and the memory budget is a fixed share rather than libp2p's default of one
// eighth of the machine.
type Limits struct {
	// Memory is the total memory budget of libp2p buffers (bytes).
	Memory int64
	// FD is the number of file descriptors libp2p may use.
	FD int
	// Conns, ConnsInbound cap all connections and the inbound ones.
	Conns, ConnsInbound int
	// PeerConns caps connections to one peer (TCP plus QUIC plus a redial).
	PeerConns int
	// PeerStreams caps concurrent streams with one peer over all protocols,
	// per direction, whether their protocol is negotiated yet or not.
	PeerStreams int
	// TransientStreams caps the streams whose protocol is not negotiated
	// yet, in total, per direction (libp2p gives them 10 s to negotiate).
	TransientStreams int
	// SyncStreams caps concurrent sync streams in total, per direction;
	// SyncPeerStreams per peer and direction.
	SyncStreams, SyncPeerStreams int
	// KeyPackageStreams caps concurrent KeyPackage directory streams in
	// total, per direction; KeyPackagePeerStreams per peer and direction.
	KeyPackageStreams, KeyPackagePeerStreams int
	// InviteStreams caps concurrent invite notice streams in total, per
	// direction; InvitePeerStreams per peer and direction.
	InviteStreams, InvitePeerStreams int
}

// DefaultLimits are the limits [NewHost] uses when none are given.
//
//	memory 256 MiB, 1024 file descriptors
//	512 connections (256 inbound), 8 per peer
//	64 streams per peer and direction; 512 not yet negotiated, per direction
//	sync: 256 inbound and 256 outbound streams in total, 8 per peer and direction
//	KeyPackage directory: 64 inbound and 64 outbound in total, 4 per peer and direction
//	invite notices: 64 inbound and 64 outbound in total, 4 per peer and direction
//
// 8 sync streams per peer matches the client side: a server runs at most
// PullWorkers (default 8) pulls at a time, each one stream per request, and
// the server side refuses more than its own per-peer concurrency
// (ServePeerConcurrency, 4) with an explicit busy status before the
// resource manager has to reset streams.
//
// Why no sybil set can take every sync stream, although 32 identities at 8
// streams each would fill the 256: the resource manager counts a stream in
// the protocol's scope from the moment its protocol is negotiated, and the
// sync handler resets the stream of a peer that participates in none of the
// joined rooms before reading anything, so a stranger's stream holds its
// slot for microseconds, not for as long as the stranger likes (the stream
// hold test: 80 strangers at 8 idle streams and 80 more with requests never
// got the count near the limit). Room servers get RequestReadTimeout (5 s)
// for their request frame and RequestTimeout (20 s) for the exchange; a
// room would need 32 hostile servers to fill the budget, for at most 20 s
// per stream. Inbound and outbound are budgeted separately: before, one
// 256 for both directions let held inbound streams stop the server's own
// pulls (its catch-up); now the pulls always have their 256.
//
// The directory protocol serves strangers by design (any server may fetch
// KeyPackages of our users), so it cannot refuse them; its budget is small
// and separate, each peer holds at most 2 directory streams at once
// (dirPeerConcurrency, answered busy above that), each for at most 5 s
// before its request is in. A sybil set can keep the directory busy; it
// cannot reach sync or gossip through it.
//
// Connections: inbound ones are capped at half the total, so peers dialing
// us can never take the connections this server needs to dial its room
// servers.
//
// Streams before their protocol is negotiated are in libp2p's transient
// scope for up to 10 s, which the handlers cannot shorten. 64 streams per
// peer (an honest server uses about 20: 8 sync, 4 directory, 4 invite,
// gossip, identify, ping) against 512 transient ones means it takes 8
// identities, renewing their streams every 10 s, to fill that scope; one
// peer alone cannot (docs/security.md, "Known gaps").
var DefaultLimits = Limits{
	Memory:                256 << 20,
	FD:                    1024,
	Conns:                 512,
	ConnsInbound:          256,
	PeerConns:             8,
	PeerStreams:           64,
	TransientStreams:      512,
	SyncStreams:           256,
	SyncPeerStreams:       8,
	KeyPackageStreams:     64,
	KeyPackagePeerStreams: 4,
	InviteStreams:         64,
	InvitePeerStreams:     4,
}

// ResourceManager builds the libp2p resource manager for these limits: the
// libp2p defaults for its own services (identify, ping, ...), scaled to the
// memory and FD budget, with Rhizome's protocols and the system, transient
// and per-peer scopes set explicitly. When reg is not nil, the manager's
// metrics are registered there; otherwise they are off.
func (l Limits) ResourceManager(reg prometheus.Registerer) (network.ResourceManager, error) {
	if l.Memory <= 0 || l.FD <= 0 || l.Conns <= 0 || l.PeerConns <= 0 || l.PeerStreams <= 0 || l.TransientStreams <= 0 ||
		l.SyncStreams <= 0 || l.SyncPeerStreams <= 0 || l.KeyPackageStreams <= 0 || l.KeyPackagePeerStreams <= 0 ||
		l.InviteStreams <= 0 || l.InvitePeerStreams <= 0 {
		return nil, fmt.Errorf("p2p: resource limits must all be positive: %+v", l)
	}
	cfg := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&cfg)
	protoLimit := func(id protocol.ID, total, perPeer int) {
		cfg.AddProtocolLimit(id, rcmgr.BaseLimit{
			Streams: 2 * total, StreamsInbound: total, StreamsOutbound: total, Memory: int64(total) * MaxResponseSize,
		}, rcmgr.BaseLimitIncrease{})
		cfg.AddProtocolPeerLimit(id, rcmgr.BaseLimit{
			Streams: 2 * perPeer, StreamsInbound: perPeer, StreamsOutbound: perPeer, Memory: int64(perPeer) * MaxResponseSize,
		}, rcmgr.BaseLimitIncrease{})
	}
	protoLimit(SyncProtocol, l.SyncStreams, l.SyncPeerStreams)
	protoLimit(KeyPackageProtocol, l.KeyPackageStreams, l.KeyPackagePeerStreams)
	protoLimit(InviteProtocol, l.InviteStreams, l.InvitePeerStreams)
	scaled := cfg.Scale(l.Memory, l.FD)

	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:         rcmgr.LimitVal(l.Conns),
			ConnsInbound:  rcmgr.LimitVal(l.ConnsInbound),
			ConnsOutbound: rcmgr.LimitVal(l.Conns),
			FD:            rcmgr.LimitVal(l.FD),
			Memory:        rcmgr.LimitVal64(l.Memory),
		},
		Transient: rcmgr.ResourceLimits{
			Streams:         rcmgr.LimitVal(2 * l.TransientStreams),
			StreamsInbound:  rcmgr.LimitVal(l.TransientStreams),
			StreamsOutbound: rcmgr.LimitVal(l.TransientStreams),
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns:           rcmgr.LimitVal(l.PeerConns),
			ConnsInbound:    rcmgr.LimitVal(l.PeerConns),
			ConnsOutbound:   rcmgr.LimitVal(l.PeerConns),
			Streams:         rcmgr.LimitVal(2 * l.PeerStreams),
			StreamsInbound:  rcmgr.LimitVal(l.PeerStreams),
			StreamsOutbound: rcmgr.LimitVal(l.PeerStreams),
		},
	}
	var opts []rcmgr.Option
	if reg != nil {
		rcmgr.MustRegisterWith(reg)
	} else {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(scaled)), opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	return rm, nil
}
