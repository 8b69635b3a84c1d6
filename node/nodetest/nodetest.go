// Package nodetest is the test kit of node-level tests: it starts real
// nodes (badger stores in temporary folders, the client API on a loopback
// port) whose libp2p hosts are on a mocknet (Net) or on loopback TCP, with
// a clock of the test's (Clock), and talks to them as devices do (Client,
// Stream).
package nodetest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/p2p"
)

// Options says how Start makes a node. The zero value is a node named
// a.test in a temporary folder, on loopback TCP, on real time.
type Options struct {
	// Dir is the data folder (a fresh temporary folder if empty).
	Dir string
	// Name is the server name ("a.test" if empty).
	Name string
	// Bootstrap are the peers to connect to (PeerAddrs of other nodes).
	Bootstrap []string
	// Net, if not nil, puts the node's libp2p host on that mocknet, linked
	// to every host already there; else the host listens on loopback TCP.
	Net *Net
	// Clock is the node's clock (time.Now if nil); a *Clock's Now fits.
	Clock func() time.Time
	// HeadsInterval is the mesh's heads-exchange period (500 ms if 0).
	HeadsInterval time.Duration
	// Tick, if not 0, is the consensus tick (with the default parameters).
	Tick time.Duration
	// Config, if not nil, changes the configuration before the node is
	// made (node.LoopbackConfig).
	Config func(c *node.Config)
	// Log receives the node's log (discarded if nil).
	Log *slog.Logger
}

// New makes a node as o says, not started.
func New(t testing.TB, o Options) *node.Node {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Name == "" {
		o.Name = "a.test"
	}
	cfg := node.LoopbackConfig(o.Dir, o.Name, o.Bootstrap...)
	if o.Config != nil {
		o.Config(&cfg)
	}
	heads := o.HeadsInterval
	if heads == 0 {
		heads = 500 * time.Millisecond
	}
	opts := []node.Option{node.WithHeadsInterval(heads)}
	if o.Net != nil {
		opts = append(opts, node.WithHost(o.Net.newHost))
	}
	if o.Clock != nil {
		opts = append(opts, node.WithClock(o.Clock))
	}
	if o.Tick != 0 {
		opts = append(opts, node.WithOrdering(o.Tick, consensus.DefaultParams()))
	}
	n, err := node.New(cfg, o.Log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Start makes and starts a node as o says; the test's cleanup stops it.
func Start(t testing.TB, o Options) *node.Node {
	t.Helper()
	n := New(t, o)
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Stop(t, n) }) // a second Stop is a no-op
	return n
}

// Stop stops n within 10 s, failing the test on an error.
func Stop(t testing.TB, n *node.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// Net is a mocknet for the nodes of one test: every host Start adds is
// linked to every host already there, so they connect without loopback
// TCP. A node restarted on the same Net (the same key) gets its address
// back.
type Net struct {
	mn mocknet.Mocknet

	mu    sync.Mutex
	addrs map[peer.ID]ma.Multiaddr
}

// NewNet returns an empty mocknet, closed at the end of the test.
func NewNet(t testing.TB) *Net {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	return &Net{mn: mn, addrs: map[peer.ID]ma.Multiaddr{}}
}

// Host adds a host with key to the mocknet, linked to every host there: a
// hostile or bare server of a test, next to the kit's nodes.
func (nt *Net) Host(key ed25519.PrivateKey) (host.Host, error) { return nt.newHost(key) }

// newHost adds a host with the node's key and links it to the others.
func (nt *Net) newHost(key ed25519.PrivateKey) (host.Host, error) {
	priv, err := p2p.PrivKey(key)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	nt.mu.Lock()
	addr, ok := nt.addrs[id]
	if !ok {
		addr = ma.StringCast(fmt.Sprintf("/ip6/100::%x/tcp/4242", len(nt.addrs)+1))
		nt.addrs[id] = addr
	}
	nt.mu.Unlock()
	h, err := nt.mn.AddPeer(priv, addr)
	if err != nil {
		return nil, err
	}
	for _, p := range nt.mn.Peers() {
		if p != h.ID() {
			if _, err := nt.mn.LinkPeers(h.ID(), p); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// Clock is a clock a test moves: it runs with real time from an offset
// that Advance grows, so that nodes on it still tick while a test can jump
// past an expiry or a grace period.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock d ahead.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// Eventually polls check (which returns "" when satisfied, else what is
// missing) until it succeeds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitUntil polls cond every 20 ms until it holds, failing after timeout.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
