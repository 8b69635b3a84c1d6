package p2ptest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

func serverID(t *testing.T, key ed25519.PrivateKey) dag.ServerID {
	t.Helper()
	sid, err := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// storedEverywhere reports whether every server stores every event of ids.
func storedEverywhere(t *testing.T, nw *p2ptest.Network, ids []dag.EventID) bool {
	t.Helper()
	for _, n := range nw.Nodes {
		for _, id := range ids {
			if has, err := n.Store.Has(id); err != nil {
				t.Fatal(err)
			} else if !has {
				return false
			}
		}
	}
	return true
}

// TestHostileMember is the kit's positive control: a Hostile that the ACL
// makes a server of the room receives the room's gossip (so a spy's zero
// means silence, not a broken counter), gets its published events stored
// (so an injector's zero means refusal) and has its fake chain pulled
// through its sync server (so a zero request count means no pull).
func TestHostileMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 3, p2ptest.Options{Seed: 51, Latency: 5 * time.Millisecond})
		room := nw.CreateRoom(0)
		nw.ACL.Allow(room, serverID(t, p2ptest.Key(5151, 0)))
		if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		x := nw.AddHostile(5151, 0)
		time.Sleep(time.Second)
		if err := x.Subscribe(room); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		for i := range 10 {
			nw.Send(i%3, room)
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(3 * time.Second)
		st := x.Stats()
		if st.RoomMessages == 0 || st.RoomBytes == 0 || st.Messages < st.RoomMessages || st.Announcements == 0 || st.RPCs == 0 {
			t.Errorf("a member spy counted %+v", st)
		}

		var own []dag.EventID
		for range 5 {
			ev, err := x.NewEvent(room, []dag.EventID{room.CreateID()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := x.Publish(ev); n != 1 {
				t.Fatalf("publish: %d, %v", n, err)
			}
			own = append(own, ev.ID())
		}
		flooded, err := x.Flood(context.Background(), room, p2ptest.FloodOptions{Count: 20, Rate: 50, Parents: []dag.EventID{room.CreateID()}, Size: 100})
		if err != nil || len(flooded) != 20 {
			t.Fatalf("flood: %d events, %v", len(flooded), err)
		}
		chain, err := x.FakeChain(room, []dag.EventID{room.CreateID()}, 50)
		if err != nil {
			t.Fatal(err)
		}
		x.ServeChain(chain)
		if n, err := x.Publish(chain[len(chain)-1]); n != 1 {
			t.Fatalf("publish tip: %v", err)
		}
		want := append(append(own, flooded...), chain[0].ID(), chain[len(chain)/2].ID())
		deadline := time.Now().Add(30 * time.Second)
		for !storedEverywhere(t, nw, want) {
			if time.Now().After(deadline) {
				t.Fatal("a member's events, flood and pulled chain are not stored everywhere")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if st := x.Stats(); st.SyncTotal() == 0 || st.Sent != 5+20+1 || st.Writes < st.Sent {
			t.Errorf("after the member's publishing: %+v", st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := x.Sync(ctx, nw.Nodes[0].PeerID(), &p2p.SyncRequest{Kind: p2p.SyncHeads, Room: room})
		if err != nil || resp.Status != p2p.StatusOK || len(resp.Heads) == 0 {
			t.Fatalf("a member's heads request: %+v, %v", resp, err)
		}
	})
}

// TestHostileServesChain checks the fake sync server's answers, asked by
// a second Hostile connected with Connect.
func TestHostileServesChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 1, p2ptest.Options{Seed: 52})
		room := nw.CreateRoom(0)
		xs := nw.AddSybils(5252, 2)
		if _, err := nw.MN.LinkPeers(xs[0].Host.ID(), xs[1].Host.ID()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := xs[0].Connect(ctx, peer.AddrInfo{ID: xs[1].Host.ID(), Addrs: xs[1].Host.Addrs()}); err != nil {
			t.Fatal(err)
		}
		chain, err := xs[1].FakeChain(room, []dag.EventID{room.CreateID()}, 30)
		if err != nil {
			t.Fatal(err)
		}
		xs[1].ServeChain(chain)
		tip := chain[len(chain)-1].ID()
		ask := func(req *p2p.SyncRequest) *p2p.SyncResponse {
			t.Helper()
			resp, err := xs[0].Sync(ctx, xs[1].Host.ID(), req)
			if err != nil || resp.Status != p2p.StatusOK {
				t.Fatalf("%s: %+v, %v", req.Kind, resp, err)
			}
			return resp
		}
		if r := ask(&p2p.SyncRequest{Kind: p2p.SyncHeads, Room: room}); len(r.Heads) != 1 || r.Heads[0] != tip {
			t.Errorf("heads = %v, want the tip", r.Heads)
		}
		r := ask(&p2p.SyncRequest{Kind: p2p.SyncGetMissing, Room: room, IDs: []dag.EventID{tip}, Limit: 10})
		if len(r.Events) != 10 || r.Complete || !bytes.Equal(r.Events[0], chain[len(chain)-1].Bytes()) || !bytes.Equal(r.Events[9], chain[len(chain)-10].Bytes()) {
			t.Errorf("get_missing limit 10: %d events, complete %v", len(r.Events), r.Complete)
		}
		known := []dag.EventID{chain[9].ID()}
		if r := ask(&p2p.SyncRequest{Kind: p2p.SyncGetMissing, Room: room, Known: known, IDs: []dag.EventID{tip}, Limit: 100}); len(r.Events) != 20 || !r.Complete {
			t.Errorf("get_missing down to a known event: %d events, complete %v", len(r.Events), r.Complete)
		}
		if r := ask(&p2p.SyncRequest{Kind: p2p.SyncGetEvents, Room: room, IDs: dag.SortIDs([]dag.EventID{chain[3].ID(), p2ptest.RandomID()})}); len(r.Events) != 1 || !bytes.Equal(r.Events[0], chain[3].Bytes()) {
			t.Errorf("get_events: %d events", len(r.Events))
		}
		resp, err := xs[0].Sync(ctx, xs[1].Host.ID(), &p2p.SyncRequest{Kind: p2p.SyncHeads, Room: dag.RoomID(p2ptest.RandomID())})
		if err != nil || resp.Status != p2p.StatusUnknownRoom {
			t.Errorf("heads of a room without a chain: %+v, %v", resp, err)
		}
		if got := xs[1].Stats().SyncRequests; got[p2p.SyncHeads] != 1 || got[p2p.SyncGetMissing] != 2 || got[p2p.SyncGetEvents] != 1 {
			t.Errorf("requests counted: %v", got)
		}
	})
}

// TestHostileHoldsStreams checks HoldStreams with a Hostile that is a
// server of a room (a stranger's sync streams are reset at once): the
// server ends idle held streams by itself (counted as HeldClosed), and
// ReleaseStreams resets the rest (not counted).
func TestHostileHoldsStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 1, p2ptest.Options{Seed: 53})
		room := nw.CreateRoom(0)
		nw.ACL.Allow(room, serverID(t, p2ptest.Key(5353, 0)))
		x := nw.AddHostile(5353, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if n, err := x.HoldStreams(ctx, nw.Nodes[0].PeerID(), p2p.SyncProtocol, 3); n != 3 || err != nil {
			t.Fatalf("hold: %d, %v", n, err)
		}
		if st := x.Stats(); st.Held != 3 || st.HeldClosed != 0 {
			t.Fatalf("after holding: %d held, %d closed", st.Held, st.HeldClosed)
		}
		time.Sleep(30 * time.Second) // past the server's request timeouts
		if st := x.Stats(); st.Held != 0 || st.HeldClosed != 3 {
			t.Fatalf("after the server's timeout: %d held, %d closed", st.Held, st.HeldClosed)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if n, err := x.HoldStreams(ctx, nw.Nodes[0].PeerID(), p2p.SyncProtocol, 2); n != 2 || err != nil {
			t.Fatalf("hold again: %d, %v", n, err)
		}
		x.ReleaseStreams()
		time.Sleep(time.Second)
		if st := x.Stats(); st.Held != 0 || st.HeldClosed != 3 {
			t.Fatalf("after release: %d held, %d closed", st.Held, st.HeldClosed)
		}
	})
}

// TestHostileClaims checks ClaimKeyPackages against a directory that
// consents to everything.
func TestHostileClaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kps := p2p.NewMemKeyPackages()
		kps.Consent = func(p2p.KeyPackageQuery) p2p.UserCode { return p2p.UserSuccess }
		kps.Add("mimi://a.test/u/bob", "mimi://a.test/d/bob/phone", 1, []byte("kp-1"))
		nw := p2ptest.New(t, 1, p2ptest.Options{Seed: 54, Configure: func(_ int, cfg *p2p.Config) { cfg.KeyPackages = kps }})
		room := nw.CreateRoom(0)
		nw.ACL.Allow(room, serverID(t, p2ptest.Key(5454, 0)))
		x := nw.AddHostile(5454, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := x.ClaimKeyPackages(ctx, nw.Nodes[0].PeerID(), p2p.KeyPackageRequest{
			RequestingUser: "mimi://b.test/u/mallory", TargetUser: "mimi://a.test/u/bob",
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != p2p.DirectoryOK || len(resp.Clients) != 1 || string(resp.Clients[0].KeyPackage) != "kp-1" {
			t.Fatalf("claim = %+v", resp)
		}
		if n := kps.Remaining("mimi://a.test/u/bob", "mimi://a.test/d/bob/phone"); n != 0 {
			t.Fatalf("%d KeyPackages left after the claim", n)
		}
	})
}
