package p2p_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// TestCatchUpAfterOffline takes server 0 offline while the room grows by
// 10,000 events, then reconnects it: it must pull every event (through
// get_missing rounds whose limit doubles) and end with the identical set.
func TestCatchUpAfterOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const offlineEvents = 10000
		nw := p2ptest.New(t, 3, p2ptest.Options{Seed: 7, Latency: 5 * time.Millisecond})
		defer nw.Close()
		room := nw.CreateRoom(1)
		sent := []dag.EventID{room.CreateID()}
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			sent = append(sent, nw.Send(i, room).ID())
			if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}

		nw.Isolate(0)
		// The others keep working: servers 1 and 2 write alternately
		// (each event on top of the writer's tips), straight into their
		// stores, and exchange through sync as they would after any gap.
		for k := range offlineEvents {
			w := 1 + k%2
			ev := nw.NewEvent(w, room, []byte("offline traffic"))
			if _, err := nw.Nodes[w].Store.Put(ev); err != nil {
				t.Fatal(err)
			}
			if k%2 == 1 {
				other := 3 - w
				if _, err := nw.Nodes[other].Store.Put(ev); err != nil {
					t.Fatal(err)
				}
			}
			sent = append(sent, ev.ID())
		}
		if _, err := nw.WaitConverged(room, sent, 60*time.Second, 1, 2); err != nil {
			t.Fatalf("online servers: %v", err)
		}
		if ok, _ := nw.Converged(room, sent, 0); ok {
			t.Fatal("isolated server already has the offline events")
		}

		nw.Heal()
		took, err := nw.WaitConverged(room, sent, 120*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("server 0 caught up on %d events in %v (virtual)", offlineEvents, took)
	})
}

// TestCatchUpManyTips: server 0 holds a room with 1,200 tips (events of
// both room servers, each naming only the create event), written while
// server 1 was down. Server 1 restarts (a new mesh on its store) and must
// hold exactly server 0's events within 3 heads intervals (6 s of virtual
// time): its heads exchange reads 5 pages (1,200 heads, 256 a page) and its
// pull works through every head, 256 seeds at a time, in one go.
func TestCatchUpManyTips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const tips = 1200
		const bound = 3 * 2 * time.Second // p2ptest's HeadsInterval is 2 s
		nw := p2ptest.New(t, 2, p2ptest.Options{Seed: 11, Latency: 5 * time.Millisecond})
		defer nw.Close()
		room := nw.CreateRoom(0)
		sent := []dag.EventID{room.CreateID()}
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := nw.Nodes[1].Mesh.Close(); err != nil {
			t.Fatal(err)
		}
		for k := range tips {
			n := nw.Nodes[k%2]
			ev, err := dag.NewSigned(n.Key, room, dag.KindMessage, []dag.EventID{room.CreateID()}, int64(1000+k), fmt.Appendf(nil, "tip %d", k))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := nw.Nodes[0].Store.Put(ev); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, ev.ID())
		}
		if got, err := nw.Nodes[0].Store.Tips(room); err != nil || len(got) != tips {
			t.Fatalf("server 0 has %d tips, %v; want %d", len(got), err, tips)
		}

		nw.StartMesh(1)
		if err := nw.Nodes[1].Mesh.JoinRoom(room); err != nil {
			t.Fatal(err)
		}
		took, err := nw.WaitConverged(room, sent, bound)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("server 1 caught up on %d tips in %v (virtual)", tips, took)
		heads, err := nw.Nodes[1].Mesh.Heads(context.Background(), nw.Nodes[0].PeerID(), room)
		if err != nil || len(heads) != tips {
			t.Fatalf("paged heads exchange: %d heads, %v; want %d", len(heads), err, tips)
		}
	})
}
