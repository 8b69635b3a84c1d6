package client

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/node"
)

// TestBranchMoveAfterPartition cuts the creator's server C off from A and
// B (the majority). Both sides commit (a key update each) and send a
// message. After the heal the ordering layer keeps the majority's commit:
// alice on C moves back to the fork point, applies the winner, re-sends her
// minority-side message in the canonical epoch under the same MIMI ID (bob
// and carol, who never saw the losing epoch, get it exactly once), and
// re-proposes her undone update. Every device ends on the same epoch with
// the same epoch_authenticator, and every message is delivered once.
func TestBranchMoveAfterPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("partition test takes ~30 s; skipped in -short mode")
	}
	ctx := context.Background()
	a := startNode(t, t.TempDir(), "a.test")
	b := startNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	c := startNode(t, t.TempDir(), "c.test", a.PeerAddrs()[0], b.PeerAddrs()[0])
	bob := newDevice(t, a, "bob", "phone")
	carol := newDevice(t, b, "carol", "phone")
	alice := newDevice(t, c, "alice", "phone")
	all := []*device{alice, bob, carol}
	for _, d := range all {
		d.start()
	}
	srv := func(n *node.Node, dom string) Server { return Server{ID: n.ServerID().String(), Domain: dom} }
	ri, err := alice.c.CreateRoom(ctx, "private-group", "Split", srv(a, "a.test"), srv(b, "b.test"))
	if err != nil {
		t.Fatal(err)
	}
	room := ri.Room
	for _, u := range []string{"mimi://a.test/u/bob", "mimi://b.test/u/carol"} {
		if _, err := alice.c.Invite(ctx, room, u, nil); err != nil {
			t.Fatalf("invite %s: %v", u, err)
		}
	}
	bob.waitJoined(room)
	carol.waitJoined(room)
	if _, err := bob.c.Send(ctx, room, "before the split"); err != nil {
		t.Fatal(err)
	}
	alice.waitText("before the split")
	carol.waitText("before the split")

	iso, err := c.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	minorityEpoch, err := alice.c.Update(ctx, room) // sealed tentatively on C
	if err != nil {
		t.Fatalf("minority update: %v", err)
	}
	minority, err := alice.c.Send(ctx, room, "from the minority")
	if err != nil {
		t.Fatal(err)
	}
	if minority.Epoch != minorityEpoch {
		t.Fatalf("minority message in %s, want %s", minority.Epoch, minorityEpoch)
	}
	majorityEpoch, err := bob.c.Update(ctx, room)
	if err != nil {
		t.Fatalf("majority update: %v", err)
	}
	carol.waitEpoch(room, majorityEpoch)
	majority, err := carol.c.Send(ctx, room, "from the majority")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitText("from the majority")

	if err := iso.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bob, carol} {
		if got := d.waitText("from the minority"); got.ID != minority.ID || got.Epoch == minorityEpoch {
			t.Fatalf("re-sent minority message = %+v", got)
		}
	}
	if got := alice.waitText("from the majority"); got.ID != majority.ID {
		t.Fatalf("alice got %+v", got)
	}
	// Alice re-proposes her undone update; everyone converges on one epoch.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ea, eb, ec := authenticatorOK(alice.c, room), authenticatorOK(bob.c, room), authenticatorOK(carol.c, room)
		if ea != nil && bytes.Equal(ea, eb) && bytes.Equal(eb, ec) && epochOf(alice.c, room) != majorityEpoch {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no convergence: epochs %s %s %s; skipped %v", epochOf(alice.c, room), epochOf(bob.c, room), epochOf(carol.c, room), alice.c.Skipped())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A message after the heal reaches everyone; nothing is delivered twice.
	if _, err := alice.c.Send(ctx, room, "healed"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bob, carol} {
		d.waitText("healed")
	}
	for _, d := range all {
		for id, n := range count(d) {
			if n != 1 {
				t.Fatalf("%s: message %s delivered %d times", d.dir, id, n)
			}
		}
	}
	if s := alice.c.Stats(); s.Resent < 1 || s.Reorgs < 1 {
		t.Fatalf("alice stats %+v: want a branch move and the minority message re-sent", s)
	}
	if s := bob.c.Stats(); s.Reorgs != 0 || s.Resent != 0 {
		t.Fatalf("bob stats %+v: the majority side never moves", s)
	}
}

func authenticatorOK(c *Client, room string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[room]
	if r == nil || r.g == nil {
		return nil
	}
	return bytes.Clone(r.g.EpochAuthenticator())
}

func epochOf(c *Client, room string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rooms[room]; r != nil {
		return r.epoch
	}
	return ""
}
