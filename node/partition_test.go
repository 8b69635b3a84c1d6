package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// waitUntil polls cond every 20 ms until it holds, failing after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *Node) storeHas(t *testing.T, id string) bool {
	t.Helper()
	_, err := n.store.Get(mustEventID(t, id))
	return err == nil
}

// TestIsolateAndHeal cuts server B off the federation while A's user keeps
// writing to a room both take part in, checks that nothing crosses (no
// connection either way, A's events absent on B), then heals and checks
// that B reconnects and pulls what it missed.
func TestIsolateAndHeal(t *testing.T) {
	a := startTestNode(t, t.TempDir(), "a.test")
	b := startTestNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	alice := register(t, a, "alice", "phone")
	bob := register(t, b, "bob", "phone")
	created := must(t, 201)(alice.post("/v1/rooms", jsonObj{
		"preset": "public-room", "name": "Cut",
		"servers": []jsonObj{{"server_id": b.ServerID().String(), "domain": "b.test"}},
	}))
	room, createID := str(created["room"]), str(created["event"])
	must(t, 202)(bob.post("/v1/rooms/"+room+"/join", jsonObj{"via": []string{a.ServerID().String()}}))
	waitUntil(t, 10*time.Second, "B holds the room's create event", func() bool { return b.storeHas(t, createID) })
	g := alice.group(a, room)
	before := str(alice.sendMessage(g, room, createID, "before")["event"])
	waitUntil(t, 10*time.Second, "B holds the message sent before the cut", func() bool { return b.storeHas(t, before) })

	iso, err := b.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := a.mesh.Host().ID(), b.mesh.Host().ID()
	waitUntil(t, 5*time.Second, "B has no connections", func() bool { return len(b.mesh.Host().Network().Peers()) == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err = a.mesh.Host().Connect(ctx, peer.AddrInfo{ID: pb, Addrs: b.mesh.Host().Addrs()})
	cancel()
	if err == nil && a.mesh.Host().Network().Connectedness(pb) == network.Connected {
		// The dial may finish its handshake before B's gater closes it;
		// what counts is that the connection does not stay.
		waitUntil(t, 5*time.Second, "A's dial to B is closed", func() bool { return len(b.mesh.Host().Network().Peers()) == 0 })
	}
	during := str(alice.sendMessage(g, room, createID, "during")["event"])
	time.Sleep(1500 * time.Millisecond) // three heads rounds of the test nodes
	if b.storeHas(t, during) {
		t.Fatal("an event sent on A reached B while B was isolated")
	}
	if len(b.mesh.Host().Network().Peers()) != 0 {
		t.Fatalf("B is connected to %v while isolated", b.mesh.Host().Network().Peers())
	}

	// A failed dial while A was unreachable (A restarting, say) leaves a
	// dial backoff in B's swarm; the heal must not wait it out.
	sw := b.mesh.Host().Network().(*swarm.Swarm)
	for _, addr := range a.mesh.Host().Addrs() {
		sw.Backoff().AddBackoff(pa, addr)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := iso.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if b.mesh.Host().Network().Connectedness(pa) != network.Connected {
		t.Fatal("B is not connected to A right after the heal")
	}
	if b.gater.Blocked(pa) {
		t.Fatal("A is still blocked on B after the heal")
	}
	waitUntil(t, 10*time.Second, "B pulls the event it missed", func() bool { return b.storeHas(t, during) })
	if err := iso.Heal(ctx); err != nil {
		t.Fatalf("second heal: %v", err)
	}
}

// TestIsolateKeepsMisbehaviourBlocks checks that healing lifts only the
// blocks the isolation set: a peer blocked before stays blocked.
func TestIsolateKeepsMisbehaviourBlocks(t *testing.T) {
	a := startTestNode(t, t.TempDir(), "a.test")
	b := startTestNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	c := startTestNode(t, t.TempDir(), "c.test", a.PeerAddrs()[0])
	pc := c.mesh.Host().ID()
	waitUntil(t, 10*time.Second, "A knows B and C", func() bool { return len(a.mesh.Host().Network().Peers()) == 2 })
	a.gater.Block(pc, time.Hour) // C misbehaved
	_ = a.mesh.Host().Network().ClosePeer(pc)

	iso, err := a.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	if got := iso.peers(); len(got) != 1 || got[0] != b.mesh.Host().ID() {
		t.Fatalf("isolation blocked %v, want only B (C was blocked before)", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := iso.Heal(ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if !a.gater.Blocked(pc) {
		t.Fatal("healing lifted the misbehaviour block of C")
	}
	waitUntil(t, 5*time.Second, "A reconnects to B", func() bool {
		return a.mesh.Host().Network().Connectedness(b.mesh.Host().ID()) == network.Connected
	})
}

func TestIsolateNotRunning(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Isolate(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Isolate before Start = %v, want ErrNotRunning", err)
	}
}
