package p2p_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"testing/synctest"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// junkGossiper is a participant of room that gossips garbage through its own
// gossipsub router.
type junkGossiper struct {
	h     host.Host
	topic *pubsub.Topic
}

func newJunkGossiper(t *testing.T, ctx context.Context, nw *p2ptest.Network, room dag.RoomID, key ed25519.PrivateKey) *junkGossiper {
	t.Helper()
	h := nw.AddHost(key)
	sid, _ := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
	nw.ACL.Allow(room, sid)
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(), pubsub.WithFloodPublish(true),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { s := sha256.Sum256(m.Data); return string(s[:]) }))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(p2p.TopicName(room))
	if err != nil {
		t.Fatal(err)
	}
	return &junkGossiper{h: h, topic: topic}
}

// connect links the gossiper to every server and waits for gossip to form.
func (j *junkGossiper) connect(t *testing.T, nw *p2ptest.Network) {
	t.Helper()
	for _, n := range nw.Nodes {
		if _, err := nw.MN.ConnectPeers(j.h.ID(), n.PeerID()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second)
}

// junk publishes k garbage messages, 200 ms apart.
func (j *junkGossiper) junk(t *testing.T, ctx context.Context, k int) {
	t.Helper()
	for i := range k {
		if err := j.topic.Publish(ctx, []byte{'j', 'u', 'n', 'k', byte(i), byte(time.Now().UnixNano())}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// connectedTo reports whether any server is connected to p, in either
// direction's view.
func connectedTo(nw *p2ptest.Network, h host.Host) bool {
	for _, n := range nw.Nodes {
		if n.Host.Network().Connectedness(h.ID()) == network.Connected || h.Network().Connectedness(n.PeerID()) == network.Connected {
			return true
		}
	}
	return false
}

// waitDisconnected polls until no server is connected to h, for at most
// limit, and returns when that happened.
func waitDisconnected(t *testing.T, nw *p2ptest.Network, h host.Host, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for connectedTo(nw, h) {
		if time.Now().After(deadline) {
			t.Fatalf("peer still connected %v later", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Now()
}

// reconnect has h dial every server and reports whether the connections
// still stand settle later (a blocked peer is let in by mocknet, which has
// no gater, and closed again by the mesh as soon as it connects).
func reconnect(t *testing.T, nw *p2ptest.Network, h host.Host, settle time.Duration) bool {
	t.Helper()
	for _, n := range nw.Nodes {
		_, _ = nw.MN.ConnectPeers(h.ID(), n.PeerID())
	}
	time.Sleep(settle)
	for _, n := range nw.Nodes {
		if n.Host.Network().Connectedness(h.ID()) != network.Connected {
			return false
		}
	}
	return true
}

// TestGraylistDisconnectsWithBackoff has a room participant gossip junk:
// every server disconnects it within seconds (its gossipsub score is below
// the graylist threshold and its penalty over the block threshold), refuses
// it while the block lasts (10 min), lets it back after; a second offence
// blocks it for twice as long (20 min). The honest servers go on
// converging.
func TestGraylistDisconnectsWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const block = 10 * time.Minute
		gaters := make([]*p2p.Gater, 2)
		nw := p2ptest.New(t, 2, p2ptest.Options{Seed: 41, Latency: 5 * time.Millisecond, Configure: func(i int, cfg *p2p.Config) {
			gaters[i] = p2p.NewGater(nil, nil)
			cfg.Gater = gaters[i]
			cfg.BlockDuration = block
			cfg.HeadsInterval = time.Minute
		}})
		defer nw.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		room := nw.CreateRoom(0)
		sent := []dag.EventID{room.CreateID()}
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		evil := newJunkGossiper(t, ctx, nw, room, p2ptest.Key(998, 0))
		evil.connect(t, nw)

		for round, d := range []time.Duration{block, 2 * block} {
			start := time.Now()
			evil.junk(t, ctx, 4)
			at := waitDisconnected(t, nw, evil.h, 5*time.Second)
			t.Logf("offence %d: disconnected %v after the first junk message", round+1, at.Sub(start))
			for i, g := range gaters {
				if !g.Blocked(evil.h.ID()) {
					t.Fatalf("offence %d: server %d has not blocked the junk gossiper", round+1, i)
				}
			}
			sent = append(sent, nw.Send(1, room).ID())
			if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
				t.Fatal(err)
			}

			// Refused until the block ends; the punishment began before at.
			time.Sleep(time.Until(at.Add(d - 30*time.Second)))
			if reconnect(t, nw, evil.h, time.Second) {
				t.Fatalf("offence %d: reconnected %v into a block of %v", round+1, time.Since(at), d)
			}
			time.Sleep(time.Until(at.Add(d + 5*time.Second)))
			if !reconnect(t, nw, evil.h, 5*time.Second) {
				t.Fatalf("offence %d: still refused %v after a block of %v", round+1, time.Since(at), d)
			}
			time.Sleep(2 * time.Second) // gossip forms again
		}
		cancel()
	})
}
