package p2p

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultListenAddrs are loopback-only: a server listens on public interfaces
// only when its configuration says so.
var DefaultListenAddrs = []string{
	"/ip4/127.0.0.1/tcp/0",
	"/ip4/127.0.0.1/udp/0/quic-v1",
}

// HostConfig configures a server's libp2p host.
type HostConfig struct {
	// Key is the server's Ed25519 identity key; the peer ID derives from it.
	Key ed25519.PrivateKey
	// ListenAddrs are multiaddrs to listen on (TCP and QUIC); nil means
	// [DefaultListenAddrs].
	ListenAddrs []string
	// Policy decides which servers may connect; nil means [AllowAll].
	Policy PeerPolicy
	// DialPrefixes, when not empty, restrict outbound dials to these IP
	// prefixes.
	DialPrefixes []netip.Prefix
	// Limits are the resource manager limits; the zero value means
	// [DefaultLimits].
	Limits Limits
	// Registerer, if set, receives the resource manager's metrics (the
	// libp2p_rcmgr_* series: connections, streams by protocol, memory,
	// file descriptors, blocked resources, limits; libp2p keeps these
	// process-wide, so hosts of one process share them) and the gater's
	// (rhizome_p2p_blocks_total, rhizome_p2p_blocked_peers,
	// rhizome_p2p_streams_refused_total{reason}, which the mesh on this
	// host counts). Nil disables them.
	Registerer prometheus.Registerer
}

// NewHost starts a libp2p host for a server: TCP with Noise and yamux, QUIC
// (whose handshake is TLS 1.3 by the QUIC specification), no relay, no NAT
// port mapping, identity = the server key, the [Gater] and the resource
// manager from cfg.Limits (with its metrics on cfg.Registerer, if set). The
// returned gater is the one installed in the
// host, so the caller can block misbehaving peers. The caller closes the host.
func NewHost(cfg HostConfig) (host.Host, *Gater, error) {
	priv, err := PrivKey(cfg.Key)
	if err != nil {
		return nil, nil, err
	}
	addrs := cfg.ListenAddrs
	if addrs == nil {
		addrs = DefaultListenAddrs
	}
	limits := cfg.Limits
	if limits == (Limits{}) {
		limits = DefaultLimits
	}
	rm, err := limits.ResourceManager(cfg.Registerer)
	if err != nil {
		return nil, nil, err
	}
	gater := NewGater(cfg.Policy, cfg.DialPrefixes)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(gaterCollector{gater}); err != nil {
			_ = rm.Close()
			return nil, nil, fmt.Errorf("p2p: register metrics: %w", err)
		}
	}
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(addrs...),
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ConnectionGater(gater),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.UserAgent("rhizome"),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		_ = rm.Close()
		return nil, nil, fmt.Errorf("p2p: new host: %w", err)
	}
	return h, gater, nil
}
