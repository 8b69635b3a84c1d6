package p2p_test

import (
	"bufio"
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

// forged returns a copy of a valid event encoding with one content byte
// flipped: it decodes, but its ID changes and the signature no longer
// verifies.
func forged(t *testing.T, ev *dag.Event) []byte {
	t.Helper()
	raw := append([]byte(nil), ev.Bytes()...)
	raw[len(raw)-dag.SignatureSize-1] ^= 0xff // last content byte
	if _, err := dag.Decode(raw); err != nil {
		t.Fatalf("forged event must still decode: %v", err)
	}
	return raw
}

// TestGossipAttacker has participating servers gossip garbage, oversized
// and forged events into a room, each kind twice. The honest servers reject
// every such message in the validator and score its sender down (gossipsub
// P4 and the local ledger behind P5); the forger reaches the block
// threshold, the others the graylist threshold, and all are blocked and
// disconnected. Meanwhile the honest servers keep converging.
func TestGossipAttacker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 4, p2ptest.Options{Seed: 11, Latency: 5 * time.Millisecond})
		defer nw.Close()
		room := nw.CreateRoom(0)
		sent := []dag.EventID{room.CreateID()}
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		attackers := []struct {
			name    string
			data    func(k int) []byte
			off     p2p.Offense
			blocked bool
		}{
			{"garbage", func(k int) []byte { return []byte{'x', byte(k)} }, p2p.OffenseMalformed, true},
			{"oversized", func(k int) []byte { return make([]byte, dag.MaxEventSize+100+k) }, p2p.OffenseOversize, true},
			{"forged", func(k int) []byte { return forged(t, nw.NewEvent(1, room, []byte{byte(k)})) }, p2p.OffenseBadSignature, true},
		}
		var evil []host.Host
		var topics []*pubsub.Topic
		for i := range attackers {
			key := p2ptest.Key(999, i)
			h := nw.AddHost(key)
			sid, _ := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
			nw.ACL.Allow(room, sid)
			ps, err := pubsub.NewGossipSub(ctx, h,
				pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
				pubsub.WithMaxMessageSize(1<<20), pubsub.WithFloodPublish(true),
				pubsub.WithMessageIdFn(func(m *pb.Message) string { s := sha256.Sum256(m.Data); return string(s[:]) }))
			if err != nil {
				t.Fatal(err)
			}
			topic, err := ps.Join(p2p.TopicName(room))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nw.Nodes {
				if _, err := nw.MN.ConnectPeers(h.ID(), n.PeerID()); err != nil {
					t.Fatal(err)
				}
			}
			evil, topics = append(evil, h), append(topics, topic)
		}
		time.Sleep(3 * time.Second) // subscriptions propagate, meshes form

		for k := range 2 {
			for i, a := range attackers {
				if err := topics[i].Publish(ctx, a.data(k)); err != nil {
					t.Fatalf("%s: %v", a.name, err)
				}
			}
			// Honest traffic goes on meanwhile.
			sent = append(sent, nw.Send(2+k, room).ID())
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // the score sampler runs every second
		for i, n := range nw.Nodes {
			for j, a := range attackers {
				p := evil[j].ID()
				if got := n.Mesh.Offenses(p, a.off); got == 0 {
					t.Errorf("server %d recorded no %s offense from the %s attacker", i, a.off, a.name)
				}
				if pen := n.Mesh.Penalty(p); pen <= 0 {
					t.Errorf("server %d: %s attacker has penalty %.1f", i, a.name, pen)
				}
				if s, ok := n.Mesh.GossipScore(p); ok && s >= 0 {
					t.Errorf("server %d: %s attacker has gossip score %.1f, want negative", i, a.name, s)
				}
				connected := n.Host.Network().Connectedness(p) == network.Connected
				if connected == a.blocked {
					t.Errorf("server %d: %s attacker connected=%v (penalty %.1f)", i, a.name, connected, n.Mesh.Penalty(p))
				}
			}
			for j, o := range nw.Nodes {
				if pen := n.Mesh.Penalty(o.PeerID()); j != i && pen != 0 {
					t.Errorf("server %d penalised honest server %d (%.1f)", i, j, pen)
				}
			}
		}
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		for i, n := range nw.Nodes {
			if ids, _ := p2ptest.EventIDs(n.Store, room); len(ids) != len(sent) {
				t.Errorf("server %d holds %d events, want exactly the %d honest ones", i, len(ids), len(sent))
			}
		}
		cancel()
	})
}

// TestSyncAttacker has a participating server answer sync requests with a
// forged event that it advertises as its head. Every honest server that
// pulls from it rejects the answer, records the offense, and the honest
// servers still converge among themselves.
func TestSyncAttacker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 3, p2ptest.Options{Seed: 12, Latency: 5 * time.Millisecond})
		defer nw.Close()
		room := nw.CreateRoom(0)
		sent := []dag.EventID{room.CreateID()}
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		bad := forged(t, nw.NewEvent(0, room, []byte("x")))
		badEv, err := dag.Decode(bad)
		if err != nil {
			t.Fatal(err)
		}

		evil := nw.AddHost(p2ptest.Key(999, 1))
		evilID, _ := dag.ServerIDFromKey(p2ptest.Key(999, 1).Public().(ed25519.PublicKey))
		nw.ACL.Allow(room, evilID)
		evil.SetStreamHandler(p2p.SyncProtocol, func(s network.Stream) {
			defer s.Close()
			raw, err := p2p.ReadFrame(bufio.NewReader(s), p2p.MaxRequestSize)
			if err != nil {
				s.Reset()
				return
			}
			req, err := p2p.UnmarshalSyncRequest(raw)
			if err != nil {
				s.Reset()
				return
			}
			resp := &p2p.SyncResponse{Kind: req.Kind}
			if req.Kind == p2p.SyncHeads {
				resp.Heads = []dag.EventID{badEv.ID()}
			} else {
				resp.Events = [][]byte{bad}
			}
			body, err := resp.Marshal()
			if err != nil {
				t.Error(err)
				return
			}
			_ = p2p.WriteFrame(s, body)
		})
		for _, n := range nw.Nodes {
			if _, err := nw.MN.ConnectPeers(evil.ID(), n.PeerID()); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 6 {
			sent = append(sent, nw.Send(i%3, room).ID())
			time.Sleep(time.Second)
		}
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		for i, n := range nw.Nodes {
			if got := n.Mesh.Offenses(evil.ID(), p2p.OffenseBadSignature); got == 0 {
				t.Errorf("server %d recorded no bad-signature offense from the sync attacker", i)
			}
			if has, _ := n.Store.Has(badEv.ID()); has {
				t.Errorf("server %d stored the forged event", i)
			}
		}
	})
}
