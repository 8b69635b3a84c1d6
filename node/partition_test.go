package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

func storeHas(n *node.Node, t *testing.T, id string) bool {
	t.Helper()
	_, err := n.Store().Get(nodetest.EventID(t, id))
	return err == nil
}

// TestIsolateAndHeal cuts server B off the federation while A's user keeps
// writing to a room both take part in, checks that nothing crosses (no
// connection either way, A's events absent on B), then heals and checks
// that B reconnects and pulls what it missed.
func TestIsolateAndHeal(t *testing.T) {
	a := nodetest.Start(t, nodetest.Options{})
	b := nodetest.Start(t, nodetest.Options{Name: "b.test", Bootstrap: []string{a.PeerAddrs()[0]}})
	alice := nodetest.Register(t, a, "alice", "phone")
	bob := nodetest.Register(t, b, "bob", "phone")
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{
		"preset": "public-room", "name": "Cut",
		"servers": []nodetest.JSON{{"server_id": b.ServerID().String(), "domain": "b.test"}},
	}))
	room, createID := nodetest.Str(created["room"]), nodetest.Str(created["event"])
	nodetest.Must(t, 202)(bob.Post("/v1/rooms/"+room+"/join", nodetest.JSON{"via": []string{a.ServerID().String()}}))
	nodetest.WaitUntil(t, 10*time.Second, "B holds the room's create event", func() bool { return storeHas(b, t, createID) })
	g := alice.Group(room)
	before := nodetest.Str(alice.SendMessage(g, room, createID, "before")["event"])
	nodetest.WaitUntil(t, 10*time.Second, "B holds the message sent before the cut", func() bool { return storeHas(b, t, before) })

	iso, err := b.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := a.Mesh().Host().ID(), b.Mesh().Host().ID()
	nodetest.WaitUntil(t, 5*time.Second, "B has no connections", func() bool { return len(b.Mesh().Host().Network().Peers()) == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err = a.Mesh().Host().Connect(ctx, peer.AddrInfo{ID: pb, Addrs: b.Mesh().Host().Addrs()})
	cancel()
	if err == nil && a.Mesh().Host().Network().Connectedness(pb) == network.Connected {
		// The dial may finish its handshake before B's gater closes it;
		// what counts is that the connection does not stay.
		nodetest.WaitUntil(t, 5*time.Second, "A's dial to B is closed", func() bool { return len(b.Mesh().Host().Network().Peers()) == 0 })
	}
	during := nodetest.Str(alice.SendMessage(g, room, createID, "during")["event"])
	time.Sleep(1500 * time.Millisecond) // three heads rounds of the test nodes
	if storeHas(b, t, during) {
		t.Fatal("an event sent on A reached B while B was isolated")
	}
	if len(b.Mesh().Host().Network().Peers()) != 0 {
		t.Fatalf("B is connected to %v while isolated", b.Mesh().Host().Network().Peers())
	}

	// A failed dial while A was unreachable (A restarting, say) leaves a
	// dial backoff in B's swarm; the heal must not wait it out.
	sw := b.Mesh().Host().Network().(*swarm.Swarm)
	for _, addr := range a.Mesh().Host().Addrs() {
		sw.Backoff().AddBackoff(pa, addr)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := iso.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if b.Mesh().Host().Network().Connectedness(pa) != network.Connected {
		t.Fatal("B is not connected to A right after the heal")
	}
	if b.Gater().Blocked(pa) {
		t.Fatal("A is still blocked on B after the heal")
	}
	nodetest.WaitUntil(t, 10*time.Second, "B pulls the event it missed", func() bool { return storeHas(b, t, during) })
	if err := iso.Heal(ctx); err != nil {
		t.Fatalf("second heal: %v", err)
	}
}

// TestIsolateKeepsMisbehaviourBlocks checks that healing lifts only the
// blocks the isolation set: a peer blocked before stays blocked.
func TestIsolateKeepsMisbehaviourBlocks(t *testing.T) {
	a := nodetest.Start(t, nodetest.Options{})
	b := nodetest.Start(t, nodetest.Options{Name: "b.test", Bootstrap: []string{a.PeerAddrs()[0]}})
	c := nodetest.Start(t, nodetest.Options{Name: "c.test", Bootstrap: []string{a.PeerAddrs()[0]}})
	pc := c.Mesh().Host().ID()
	nodetest.WaitUntil(t, 10*time.Second, "A knows B and C", func() bool { return len(a.Mesh().Host().Network().Peers()) == 2 })
	a.Gater().Block(pc, time.Hour) // C misbehaved
	_ = a.Mesh().Host().Network().ClosePeer(pc)

	iso, err := a.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	if got := iso.Peers(); len(got) != 1 || got[0] != b.Mesh().Host().ID() {
		t.Fatalf("isolation blocked %v, want only B (C was blocked before)", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := iso.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if !a.Gater().Blocked(pc) {
		t.Fatal("healing lifted the misbehaviour block of C")
	}
	nodetest.WaitUntil(t, 5*time.Second, "A reconnects to B", func() bool {
		return a.Mesh().Host().Network().Connectedness(b.Mesh().Host().ID()) == network.Connected
	})
}

func TestIsolateNotRunning(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Isolate(); !errors.Is(err, node.ErrNotRunning) {
		t.Fatalf("Isolate before Start = %v, want ErrNotRunning", err)
	}
}
