// Package p2ptest is an in-process test kit for package p2p: N Rhizome
// servers, each a real libp2p host on a mocknet (in-memory pipes, real
// streams, real gossipsub), with an in-memory dag store, a shared room ACL
// and helpers to create rooms, send events, partition and heal the network
// and wait for convergence.
//
// It works inside testing/synctest bubbles: all waiting is done with
// time.Sleep and every goroutine stops in [Network.Close].
package p2ptest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
)

// Options configure a [Network].
type Options struct {
	// Seed makes the server keys deterministic (different seeds give
	// different keys).
	Seed uint64
	// Latency is the one-way latency of every link (0 for none).
	Latency time.Duration
	// Logger receives the meshes' logs (nil discards).
	Logger *slog.Logger
	// Configure, if set, adjusts server i's mesh configuration before the
	// mesh starts.
	Configure func(i int, cfg *p2p.Config)
	// StoreLimits are the pending limits of every in-memory store (zero:
	// defaults).
	StoreLimits dag.Limits
	// NewStore, if set, opens server i's store instead of a dag.MemStore
	// (for example a badger store in a temporary directory). The network
	// closes it.
	NewStore func(i int) (dag.Store, error)
}

// Node is one server of a [Network].
type Node struct {
	Index int
	Key   ed25519.PrivateKey
	ID    dag.ServerID
	Host  host.Host
	Store dag.Store
	Mesh  *p2p.Mesh

	mu sync.Mutex
	ts int64
}

// PeerID returns the node's libp2p peer ID.
func (n *Node) PeerID() peer.ID { return n.Host.ID() }

// Network is a set of servers on one mocknet.
type Network struct {
	tb    testing.TB
	MN    mocknet.Mocknet
	ACL   *p2p.MemACL
	Nodes []*Node
	opts  Options

	mu     sync.Mutex
	cut    map[[2]int]bool // unlinked pairs (i < j)
	dead   []network.Conn  // connections closed by Unlink (see settleCuts)
	closed bool
}

// Key returns the deterministic Ed25519 key of server i under seed.
func Key(seed uint64, i int) ed25519.PrivateKey {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	s := sha256.Sum256(append([]byte("rhizome/p2ptest/key"), b[:]...))
	return ed25519.NewKeyFromSeed(s[:])
}

// New builds n servers, links every pair and starts a mesh on each, with
// every server wanting every other one (so meshes dial and redial by
// themselves). The network is closed by t.Cleanup.
func New(tb testing.TB, n int, opts Options) *Network {
	tb.Helper()
	nw := &Network{tb: tb, MN: mocknet.New(), ACL: p2p.NewMemACL(), opts: opts, cut: map[[2]int]bool{}}
	tb.Cleanup(nw.Close)
	nw.MN.SetLinkDefaults(mocknet.LinkOptions{Latency: opts.Latency})
	for i := range n {
		key := Key(opts.Seed, i)
		priv, err := p2p.PrivKey(key)
		if err != nil {
			tb.Fatal(err)
		}
		addr := ma.StringCast(fmt.Sprintf("/ip6/100::%x/tcp/4242", i+1))
		h, err := nw.MN.AddPeer(priv, addr)
		if err != nil {
			tb.Fatalf("p2ptest: add peer %d: %v", i, err)
		}
		sid, err := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
		if err != nil {
			tb.Fatal(err)
		}
		var st dag.Store = dag.NewMemStore(opts.StoreLimits)
		if opts.NewStore != nil {
			if st, err = opts.NewStore(i); err != nil {
				tb.Fatalf("p2ptest: store %d: %v", i, err)
			}
		}
		nw.Nodes = append(nw.Nodes, &Node{Index: i, Key: key, ID: sid, Host: h, Store: st})
	}
	if err := nw.MN.LinkAll(); err != nil {
		tb.Fatalf("p2ptest: link: %v", err)
	}
	for i := range nw.Nodes {
		nw.StartMesh(i)
	}
	return nw
}

// Config returns the mesh configuration of server i (before Configure).
func (nw *Network) Config(i int) p2p.Config {
	node := nw.Nodes[i]
	logger := nw.opts.Logger
	if logger != nil {
		logger = logger.With("node", i)
	}
	cfg := p2p.Config{
		Host:          node.Host,
		Store:         node.Store,
		ACL:           nw.ACL,
		Logger:        logger,
		HeadsInterval: 2 * time.Second,
		BackoffMin:    100 * time.Millisecond,
		BackoffMax:    2 * time.Second,
	}
	for j, other := range nw.Nodes {
		if j != i {
			cfg.Bootstrap = append(cfg.Bootstrap, peer.AddrInfo{ID: other.Host.ID()})
		}
	}
	return cfg
}

// StartMesh starts server i's mesh.
func (nw *Network) StartMesh(i int) {
	nw.tb.Helper()
	cfg := nw.Config(i)
	if nw.opts.Configure != nil {
		nw.opts.Configure(i, &cfg)
	}
	m, err := p2p.New(cfg)
	if err != nil {
		nw.tb.Fatalf("p2ptest: mesh %d: %v", i, err)
	}
	nw.Nodes[i].Mesh = m
}

// Close stops every mesh, the mocknet (hosts included) and the stores. It
// may be called more than once.
func (nw *Network) Close() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.closed {
		return
	}
	nw.closed = true
	for _, n := range nw.Nodes {
		if n.Mesh != nil {
			n.Mesh.Close()
		}
	}
	nw.MN.Close()
	for _, n := range nw.Nodes {
		_ = n.Store.Close()
	}
}

// CreateRoom has server creator sign a create event, makes every server a
// participant and joins every running mesh to the room. Only the creator
// stores the create event; the others get it through sync.
func (nw *Network) CreateRoom(creator int) dag.RoomID {
	nw.tb.Helper()
	n := nw.Nodes[creator]
	ev, err := dag.NewSigned(n.Key, dag.RoomID{}, dag.KindCreate, nil, n.nextTS(), []byte(fmt.Sprintf("room by %d", creator)))
	if err != nil {
		nw.tb.Fatal(err)
	}
	room := ev.RoomID()
	for _, o := range nw.Nodes {
		nw.ACL.Allow(room, o.ID)
	}
	if _, err := n.Store.Put(ev); err != nil {
		nw.tb.Fatal(err)
	}
	for _, o := range nw.Nodes {
		if err := o.Mesh.JoinRoom(room); err != nil {
			nw.tb.Fatal(err)
		}
	}
	return room
}

func (n *Node) nextTS() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ts++
	return n.ts
}

// NewEvent signs a message event of server i on top of its current tips
// (at most dag.MaxParents of them, the highest IDs) without publishing it.
func (nw *Network) NewEvent(i int, room dag.RoomID, content []byte) *dag.Event {
	nw.tb.Helper()
	n := nw.Nodes[i]
	tips, err := n.Store.Tips(room)
	if err != nil {
		nw.tb.Fatal(err)
	}
	if len(tips) == 0 {
		nw.tb.Fatalf("p2ptest: server %d has no events of room %v", i, room)
	}
	if len(tips) > dag.MaxParents {
		tips = tips[len(tips)-dag.MaxParents:]
	}
	ev, err := dag.NewSigned(n.Key, room, dag.KindMessage, tips, n.nextTS(), content)
	if err != nil {
		nw.tb.Fatal(err)
	}
	return ev
}

// Send creates an event of server i and publishes it (store plus gossip).
func (nw *Network) Send(i int, room dag.RoomID) *dag.Event {
	nw.tb.Helper()
	ev := nw.NewEvent(i, room, fmt.Appendf(nil, "message from %d", i))
	if err := nw.Nodes[i].Mesh.Publish(context.Background(), ev); err != nil {
		nw.tb.Fatalf("p2ptest: publish from %d: %v", i, err)
	}
	return ev
}

func pairKey(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

// Partition splits the network into the given groups: every link between
// servers of different groups is removed and their connections closed.
// Servers in no group keep their links.
func (nw *Network) Partition(groups ...[]int) {
	nw.tb.Helper()
	group := map[int]int{}
	for g, members := range groups {
		for _, i := range members {
			group[i] = g
		}
	}
	for i := range nw.Nodes {
		for j := i + 1; j < len(nw.Nodes); j++ {
			gi, oki := group[i]
			gj, okj := group[j]
			if !oki || !okj || gi == gj {
				continue
			}
			nw.Unlink(i, j)
		}
	}
	nw.settleCuts()
}

// settleCuts makes the cuts hold. A connection closed by Unlink resets its
// streams before it leaves the network, and a protocol that reopens a stream
// in that window (gossipsub does) gets a stream on the dead connection that
// nothing resets: mocknet would keep delivering over it. So every stream
// left on a cut connection is reset, and any connection that a racing dial
// opened across a cut is closed, until none is left (bounded).
func (nw *Network) settleCuts() {
	for range 50 {
		time.Sleep(nw.opts.Latency + time.Millisecond)
		nw.mu.Lock()
		open := 0
		for k := range nw.cut {
			a, b := nw.Nodes[k[0]].Host, nw.Nodes[k[1]].Host
			for _, pair := range [][2]host.Host{{a, b}, {b, a}} {
				if cs := pair[0].Network().ConnsToPeer(pair[1].ID()); len(cs) > 0 {
					open++
					nw.dead = append(nw.dead, cs...)
					_ = nw.MN.DisconnectPeers(pair[0].ID(), pair[1].ID())
				}
			}
		}
		dead := nw.dead
		nw.mu.Unlock()
		for _, c := range dead {
			for _, st := range c.GetStreams() {
				open++
				_ = st.Reset()
			}
		}
		if open == 0 {
			return
		}
	}
	nw.tb.Fatalf("p2ptest: connections across the partition keep reopening")
}

// Unlink removes the link between servers i and j and closes their
// connections.
func (nw *Network) Unlink(i, j int) {
	nw.tb.Helper()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	k := pairKey(i, j)
	if nw.cut[k] {
		return
	}
	a, b := nw.Nodes[i].Host.ID(), nw.Nodes[j].Host.ID()
	nw.dead = append(nw.dead, nw.Nodes[i].Host.Network().ConnsToPeer(b)...)
	nw.dead = append(nw.dead, nw.Nodes[j].Host.Network().ConnsToPeer(a)...)
	if err := nw.MN.UnlinkPeers(a, b); err != nil {
		nw.tb.Fatalf("p2ptest: unlink %d-%d: %v", i, j, err)
	}
	_ = nw.MN.DisconnectPeers(a, b)
	_ = nw.MN.DisconnectPeers(b, a)
	nw.cut[k] = true
}

// Isolate cuts server i off from every other server.
func (nw *Network) Isolate(i int) {
	for j := range nw.Nodes {
		if j != i {
			nw.Unlink(i, j)
		}
	}
	nw.settleCuts()
}

// Heal restores every removed link. Connections are not made here: the
// meshes redial by themselves (with backoff), which is what is under test.
func (nw *Network) Heal() {
	nw.tb.Helper()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for k := range nw.cut {
		if _, err := nw.MN.LinkPeers(nw.Nodes[k[0]].Host.ID(), nw.Nodes[k[1]].Host.ID()); err != nil {
			nw.tb.Fatalf("p2ptest: relink %d-%d: %v", k[0], k[1], err)
		}
		delete(nw.cut, k)
	}
	nw.dead = nil
}

// EventIDs returns the IDs of the room's stored events at server i, sorted.
func EventIDs(st dag.Store, room dag.RoomID) ([]dag.EventID, error) {
	var out []dag.EventID
	var after uint64
	for {
		entries, err := st.Log(room, after, 4096)
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return dag.SortIDs(out), nil
		}
		for _, e := range entries {
			out = append(out, e.ID)
		}
		after = entries[len(entries)-1].Seq
	}
}

// ErrNotConverged is returned by [Network.WaitConverged] on timeout.
var ErrNotConverged = errors.New("p2ptest: servers did not converge")

// Converged reports whether the given servers (all when none are given)
// hold exactly the events want of room (or, when want is nil, identical
// event sets) and nothing pending. It returns a description of the first
// difference.
func (nw *Network) Converged(room dag.RoomID, want []dag.EventID, servers ...int) (bool, string) {
	if len(servers) == 0 {
		for i := range nw.Nodes {
			servers = append(servers, i)
		}
	}
	var ref []dag.EventID
	if want != nil {
		ref = dag.SortIDs(slices.Clone(want))
	}
	for _, i := range servers {
		ids, err := EventIDs(nw.Nodes[i].Store, room)
		if err != nil {
			return false, err.Error()
		}
		if ref == nil {
			ref = ids
		}
		if !slices.Equal(ids, ref) {
			return false, fmt.Sprintf("server %d holds %d events, want %d", i, len(ids), len(ref))
		}
		pend, err := nw.Nodes[i].Store.Pending(room)
		if err != nil {
			return false, err.Error()
		}
		if len(pend) > 0 {
			return false, fmt.Sprintf("server %d has %d pending events", i, len(pend))
		}
	}
	return true, ""
}

// WaitConverged polls (every 50 ms) until [Network.Converged] holds or the
// timeout passes, and returns how long it took.
func (nw *Network) WaitConverged(room dag.RoomID, want []dag.EventID, timeout time.Duration, servers ...int) (time.Duration, error) {
	start := time.Now()
	for {
		ok, why := nw.Converged(room, want, servers...)
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%w after %v: %s", ErrNotConverged, timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Digest returns a short hash of a sorted ID list, for logs.
func Digest(ids []dag.EventID) string {
	h := sha256.New()
	for _, id := range ids {
		h.Write(id[:])
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:6])
}

// AddHost adds a bare host (no mesh) with the given key to the mocknet and
// links it to every server, for tests that play a misbehaving peer. The
// host is closed with the network.
func (nw *Network) AddHost(key ed25519.PrivateKey) host.Host {
	nw.tb.Helper()
	priv, err := p2p.PrivKey(key)
	if err != nil {
		nw.tb.Fatal(err)
	}
	h, err := nw.MN.AddPeer(priv, ma.StringCast(fmt.Sprintf("/ip6/100::ff%x/tcp/4242", len(nw.MN.Peers()))))
	if err != nil {
		nw.tb.Fatalf("p2ptest: add host: %v", err)
	}
	for _, n := range nw.Nodes {
		if _, err := nw.MN.LinkPeers(h.ID(), n.Host.ID()); err != nil {
			nw.tb.Fatalf("p2ptest: link host: %v", err)
		}
	}
	return h
}
