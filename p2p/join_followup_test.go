package p2p_test

import (
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// TestJoinFollowUpPulls: after JoinRoom, a server pulls the room again
// from its participants a few times (1, 3 and 8 s), so an event that the
// others stored after its first pull, and that gossip did not bring (here:
// never published), arrives without waiting for the heads round (an hour
// here).
func TestJoinFollowUpPulls(t *testing.T) {
	nw := p2ptest.New(t, 2, p2ptest.Options{Seed: 41, Configure: func(_ int, cfg *p2p.Config) { cfg.HeadsInterval = time.Hour }})
	a, b := nw.Nodes[0], nw.Nodes[1]
	create, err := dag.NewSigned(a.Key, dag.RoomID{}, dag.KindCreate, nil, 1, []byte("follow-up"))
	if err != nil {
		t.Fatal(err)
	}
	room := create.RoomID()
	nw.ACL.Allow(room, a.ID, b.ID)
	if _, err := a.Store.Put(create); err != nil {
		t.Fatal(err)
	}
	if err := a.Mesh.JoinRoom(room); err != nil {
		t.Fatal(err)
	}
	if err := b.Mesh.JoinRoom(room); err != nil {
		t.Fatal(err)
	}
	has := func(id dag.EventID) bool { ok, _ := b.Store.Has(id); return ok }
	for deadline := time.Now().Add(5 * time.Second); !has(create.ID()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the join's first pull did not bring the create event")
		}
	}
	later := nw.NewEvent(0, room, []byte("stored after b's first pull, never gossiped"))
	if _, err := a.Store.Put(later); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for !has(later.ID()) {
		if time.Since(start) > 9*time.Second {
			t.Fatal("the event stored after the join's first pull did not arrive by the follow-up pulls")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("arrived %v after it was stored", time.Since(start).Round(10*time.Millisecond))
}
