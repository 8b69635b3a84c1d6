package p2p_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// The adversarial suite (issue 13, item 9): peers that are not servers of
// a room (p2ptest.Hostile, raw gossip and sync, identities of their own)
// attack three honest servers of the room. Each test runs two kinds of
// attacker: a stranger (a server of no room the servers joined, whom
// pubsub keeps out at the door) and a neighbour (a server of another room
// that the same servers joined, whom pubsub must let in, so the room's own
// checks are what stops it). Each test asserts that nothing of the
// attacker's is stored, held pending, pulled or relayed, that nothing of
// the room reaches the attacker, and that no honest event is lost.

// hostileSeed keys the attackers (p2ptest.Key(hostileSeed, i)); no server
// of any test uses it.
const hostileSeed = 1313

// attackerKinds are the two kinds of non-member each test runs.
var attackerKinds = []struct {
	name      string
	neighbour bool
}{{"stranger", false}, {"neighbour", true}}

// addAttackers adds n hostile identities connected to every server. As
// neighbours, they are servers of another room that every server joins
// (created by server 1), which is returned; as strangers, of none.
func addAttackers(t *testing.T, nw *p2ptest.Network, n int, neighbour bool) ([]*p2ptest.Hostile, dag.RoomID) {
	t.Helper()
	var other dag.RoomID
	if neighbour {
		other = nw.CreateRoom(1)
		for i := range n {
			sid, err := dag.ServerIDFromKey(p2ptest.Key(hostileSeed, i).Public().(ed25519.PublicKey))
			if err != nil {
				t.Fatal(err)
			}
			nw.ACL.Allow(other, sid)
		}
	}
	xs := nw.AddSybils(hostileSeed, n)
	time.Sleep(time.Second) // hellos, joins
	return xs, other
}

// runKinds runs test once per attacker kind, each in its own bubble.
func runKinds(t *testing.T, test func(t *testing.T, neighbour bool)) {
	for _, k := range attackerKinds {
		t.Run(k.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { test(t, k.neighbour) })
		})
	}
}

// assertScoredDown fails unless every server scored x down: a neighbour
// for the events its gossip brings to the validator, a stranger for the
// pubsub streams it keeps opening (refused before any event is read).
func assertScoredDown(t *testing.T, nw *p2ptest.Network, x *p2ptest.Hostile) {
	t.Helper()
	for i, n := range nw.Nodes {
		if pen := n.Mesh.Penalty(x.Host.ID()); pen <= 0 {
			t.Errorf("server %d did not score the attacker down (penalty %.1f, rejections %v)", i, pen, n.Mesh.Rejections())
		}
	}
}

// newRoom starts n honest servers with a room created by server 0 and
// waits until every server holds its create event.
func newRoom(t *testing.T, n int, seed uint64) (*p2ptest.Network, dag.RoomID) {
	t.Helper()
	nw := p2ptest.New(t, n, p2ptest.Options{Seed: seed, Latency: 5 * time.Millisecond})
	room := nw.CreateRoom(0)
	if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return nw, room
}

// kept counts, per server, how many of ids it stores or holds pending.
func kept(t *testing.T, nw *p2ptest.Network, room dag.RoomID, ids []dag.EventID) []int {
	t.Helper()
	out := make([]int, len(nw.Nodes))
	for i, n := range nw.Nodes {
		pend, err := n.Store.Pending(room)
		if err != nil {
			t.Fatal(err)
		}
		pending := map[dag.EventID]bool{}
		for _, id := range pend {
			pending[id] = true
		}
		for _, id := range ids {
			has, err := n.Store.Has(id)
			if err != nil {
				t.Fatal(err)
			}
			if has || pending[id] {
				out[i]++
			}
		}
	}
	return out
}

// assertNoneKept fails unless no server stores or holds any of ids.
func assertNoneKept(t *testing.T, nw *p2ptest.Network, room dag.RoomID, what string, ids []dag.EventID) {
	t.Helper()
	for i, k := range kept(t, nw, room, ids) {
		if k > 0 {
			t.Errorf("server %d stores or holds %d of the %d %s", i, k, len(ids), what)
		}
	}
}

// waitDelivered polls until every server stores every event of sent, or
// the timeout passes, and returns how long it took and how many events
// each server still lacks. Unlike WaitConverged, extra events do not
// count: this is the "no honest event lost" check.
func waitDelivered(t *testing.T, nw *p2ptest.Network, sent []dag.EventID, timeout time.Duration) (time.Duration, []int) {
	t.Helper()
	start := time.Now()
	for {
		missing := make([]int, len(nw.Nodes))
		total := 0
		for i, n := range nw.Nodes {
			for _, id := range sent {
				has, err := n.Store.Has(id)
				if err != nil {
					t.Fatal(err)
				}
				if !has {
					missing[i]++
					total++
				}
			}
		}
		if total == 0 || time.Since(start) > timeout {
			return time.Since(start), missing
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertDelivered fails unless every server stores every event of sent
// within the timeout.
func assertDelivered(t *testing.T, nw *p2ptest.Network, sent []dag.EventID, timeout time.Duration) {
	t.Helper()
	took, missing := waitDelivered(t, nw, sent, timeout)
	for i, m := range missing {
		if m > 0 {
			t.Errorf("server %d lacks %d of the %d honest events after %v", i, m, len(sent), took)
		}
	}
}

// sendHonest has the servers send count events in turn, every interval,
// and returns their IDs after the ones in sent.
func sendHonest(nw *p2ptest.Network, room dag.RoomID, count int, interval time.Duration, sent []dag.EventID) []dag.EventID {
	for k := range count {
		sent = append(sent, nw.Send(k%len(nw.Nodes), room).ID())
		time.Sleep(interval)
	}
	return sent
}

// TestSpyReceivesNothing has a non-member subscribe to the room's topic
// (and graft itself onto every server's mesh) while three servers exchange
// 50 events: it receives no byte of them and no event ID; a stranger is
// not even told that the servers host the room (no topic is announced to
// it), and a neighbour is told no topic that names the room. Its sync
// requests are refused. A neighbour does receive its own room's gossip,
// so the spy can tell delivery from silence.
func TestSpyReceivesNothing(t *testing.T) {
	runKinds(t, func(t *testing.T, neighbour bool) {
		nw, room := newRoom(t, 3, 31)
		xs, other := addAttackers(t, nw, 1, neighbour)
		spy := xs[0]
		if err := spy.Subscribe(room); err != nil {
			t.Logf("subscribe: %v", err) // a server may refuse the stream: that is a defence
		}
		time.Sleep(3 * time.Second) // subscriptions propagate, heartbeats graft
		sent := sendHonest(nw, room, 50, 100*time.Millisecond, []dag.EventID{room.CreateID()})
		assertDelivered(t, nw, sent, 30*time.Second)
		time.Sleep(5 * time.Second) // heartbeats gossip IHAVEs
		st := spy.Stats()
		t.Logf("spy: %d RPCs (%d bytes): %d room messages (%d bytes) of %d on any topic, %d IHAVE IDs, %d announcements, %d grafts; topics announced: %d",
			st.RPCs, st.RPCBytes, st.RoomMessages, st.RoomBytes, st.Messages, st.IHaveIDs, st.Announcements, st.Grafts, len(spy.AnnouncedTopics()))
		if st.Messages != 0 || st.MessageBytes != 0 {
			t.Errorf("the spy received %d gossip messages (%d bytes of events)", st.Messages, st.MessageBytes)
		}
		if st.IHaveIDs != 0 {
			t.Errorf("the spy was advertised %d event IDs of the room", st.IHaveIDs)
		}
		if st.Grafts != 0 {
			t.Errorf("%d servers grafted the spy onto the room's mesh", st.Grafts)
		}
		for _, tp := range spy.AnnouncedTopics() {
			if strings.Contains(tp, hex.EncodeToString(room[:])) {
				t.Errorf("topic %q names the room", tp)
			}
		}
		if topics := spy.AnnouncedTopics(); !neighbour && len(topics) != 0 {
			t.Errorf("servers announced %d topics to a stranger: %q", len(topics), topics)
		}
		for i, n := range nw.Nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := spy.Sync(ctx, n.PeerID(), &p2p.SyncRequest{Kind: p2p.SyncHeads, Room: room})
			cancel()
			if err == nil && (resp.Status == p2p.StatusOK || len(resp.Heads) > 0) {
				t.Errorf("server %d answered the spy's heads request: %s, %d heads", i, resp.Status, len(resp.Heads))
			}
		}
		if neighbour {
			if err := spy.Subscribe(other); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Second)
			sendHonest(nw, other, 5, 100*time.Millisecond, nil)
			time.Sleep(3 * time.Second)
			if got := spy.Stats().RoomMessages; got == 0 {
				t.Error("the neighbour received nothing of its own room: the spy cannot tell delivery from silence")
			}
		}
	})
}

// TestInjectNotStored has a non-member, linked to server 0 only, gossip 500
// validly signed events of the room on its create event while the servers
// talk: no server stores, holds or relays any of them, every honest event
// arrives, and server 0 scores the attacker down.
func TestInjectNotStored(t *testing.T) {
	runKinds(t, func(t *testing.T, neighbour bool) {
		nw, room := newRoom(t, 3, 32)
		xs, _ := addAttackers(t, nw, 1, neighbour)
		x := xs[0]
		for _, n := range nw.Nodes[1:] {
			_ = nw.MN.UnlinkPeers(x.Host.ID(), n.PeerID())
			_ = nw.MN.DisconnectPeers(x.Host.ID(), n.PeerID())
		}
		time.Sleep(time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		flooded := make(chan []dag.EventID, 1)
		go func() {
			ids, _ := x.Flood(ctx, room, p2ptest.FloodOptions{Count: 500, Rate: 100, Parents: []dag.EventID{room.CreateID()}})
			flooded <- ids
		}()
		sent := sendHonest(nw, room, 20, 250*time.Millisecond, []dag.EventID{room.CreateID()})
		ids := <-flooded
		assertDelivered(t, nw, sent, 30*time.Second)
		k := kept(t, nw, room, ids)
		st := x.Stats()
		t.Logf("injected 500 events, %d written to a stream (%d write errors); kept by server 0 (direct) %d, relayed to servers 1, 2: %d, %d; server 0: penalty %.1f, rejections %v",
			len(ids), st.WriteErrors, k[0], k[1], k[2], nw.Nodes[0].Mesh.Penalty(x.Host.ID()), nw.Nodes[0].Mesh.Rejections())
		assertNoneKept(t, nw, room, "injected events", ids)
		if pen := nw.Nodes[0].Mesh.Penalty(x.Host.ID()); pen <= 0 {
			t.Errorf("server 0 did not score the injector down (penalty %.1f)", pen)
		}
	})
}

// TestDeepFakeChainNotPulled has a non-member sign a 2,000-event chain on
// the room's create event, serve it from its own sync server and gossip
// only its tip: no server stores or holds any of it, no sync request ever
// reaches the attacker's server, and every honest event arrives.
func TestDeepFakeChainNotPulled(t *testing.T) {
	runKinds(t, func(t *testing.T, neighbour bool) {
		nw, room := newRoom(t, 3, 33)
		xs, _ := addAttackers(t, nw, 1, neighbour)
		x := xs[0]
		chain, err := x.FakeChain(room, []dag.EventID{room.CreateID()}, 2000)
		if err != nil {
			t.Fatal(err)
		}
		x.ServeChain(chain)
		tip := chain[len(chain)-1]
		for range 3 { // a stranger's first write may land on a stream about to be refused
			if n, _ := x.Publish(tip); n == 1 {
				break
			}
		}
		sent := sendHonest(nw, room, 10, 500*time.Millisecond, []dag.EventID{room.CreateID()})
		time.Sleep(10 * time.Second) // pulls and heads exchanges (every 2 s) run
		assertDelivered(t, nw, sent, 30*time.Second)
		ids := make([]dag.EventID, len(chain))
		for i, ev := range chain {
			ids[i] = ev.ID()
		}
		st := x.Stats()
		t.Logf("fake chain of %d: kept %v; sync requests reaching the attacker: %d (%v)", len(chain), kept(t, nw, room, ids), st.SyncTotal(), st.SyncRequests)
		assertNoneKept(t, nw, room, "fake chain events", ids)
		if st.SyncTotal() != 0 {
			t.Errorf("%d sync requests reached the attacker's server (%v)", st.SyncTotal(), st.SyncRequests)
		}
	})
}

// TestSignedFloodHonestUnaffected has two non-member identities flood 4,000
// validly signed events (one on the room's create event, the other on
// random parents that exist nowhere, aimed at the pending sets) at 500/s
// each while the servers send 40 events: every honest event reaches every
// server within the bound, no flood event is stored or held, and every
// server scores both attackers down.
func TestSignedFloodHonestUnaffected(t *testing.T) {
	runKinds(t, func(t *testing.T, neighbour bool) {
		nw, room := newRoom(t, 3, 34)
		xs, _ := addAttackers(t, nw, 2, neighbour)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		flooded := make(chan []dag.EventID, len(xs))
		for i, x := range xs {
			opts := p2ptest.FloodOptions{Count: 2000, Rate: 500}
			if i == 0 {
				opts.Parents = []dag.EventID{room.CreateID()}
			}
			go func() {
				ids, _ := x.Flood(ctx, room, opts)
				flooded <- ids
			}()
		}
		sent := sendHonest(nw, room, 40, 100*time.Millisecond, []dag.EventID{room.CreateID()})
		var ids []dag.EventID
		for range xs {
			ids = append(ids, <-flooded...)
		}
		took, missing := waitDelivered(t, nw, sent, 30*time.Second)
		t.Logf("flood of 4000 events, %d written to a stream: kept %v; honest events missing %v, %v after the last send", len(ids), kept(t, nw, room, ids), missing, took)
		assertNoneKept(t, nw, room, "flood events", ids)
		assertDelivered(t, nw, sent, time.Second)
		for _, x := range xs {
			assertScoredDown(t, nw, x)
		}
	})
}
