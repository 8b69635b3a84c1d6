package node

import (
	"crypto/ed25519"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/rhizome-chat/rhizome/consensus"
)

// Option changes a part of the node that its Config does not name: the
// clock, the libp2p host and the protocol periods. The daemon uses none;
// the test kit (package nodetest) puts nodes on a mocknet with a clock of
// its own.
type Option func(*Node)

// WithClock makes now the node's clock, in place of time.Now: the
// timestamps of the events it signs and of its account, token and room
// records, the rate and claim limits, the expiry of registration tokens,
// the awaiting rooms' grace period and the ticks of the room engines read
// it. Timers (tick and sweep periods, timeouts, connection deadlines) stay
// on real time.
func WithClock(now func() time.Time) Option { return func(n *Node) { n.now = now } }

// WithHost makes the node's libp2p host with newHost instead of
// p2p.NewHost (a mocknet host, say); such a host has no connection gater,
// so Isolate does not work on it.
func WithHost(newHost func(key ed25519.PrivateKey) (host.Host, error)) Option {
	return func(n *Node) { n.newHost = newHost }
}

// WithHeadsInterval sets the period of the mesh's heads exchange (the
// mesh's default if 0).
func WithHeadsInterval(d time.Duration) Option { return func(n *Node) { n.headsInterval = d } }

// WithOrdering sets the consensus tick length and parameters of every
// room engine (DefaultTick, or ordering.tick_ms, and
// consensus.DefaultParams otherwise).
func WithOrdering(tick time.Duration, params consensus.Params) Option {
	return func(n *Node) { n.tick, n.orderParams = tick, params }
}
