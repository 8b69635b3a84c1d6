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
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range all {
				t.Logf("%s: %s", d.dir, d.c.debugRooms())
			}
		}
	})
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
	bob.waitJoined(string(room))
	carol.waitJoined(string(room))
	// Bob sends once his device is in carol's epoch too: his server may
	// still have the epoch before it as its tip for a moment (it accepts
	// the message there), and carol, who joined in the later epoch, could
	// not read it (docs/api.md, "stale_epoch").
	bob.waitEpoch(string(room), epochOf(carol.c, string(room)))
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
	carol.waitEpoch(string(room), string(majorityEpoch))
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
		ea, eb, ec := authenticatorOK(alice.c, string(room)), authenticatorOK(bob.c, string(room)), authenticatorOK(carol.c, string(room))
		if ea != nil && bytes.Equal(ea, eb) && bytes.Equal(eb, ec) && epochOf(alice.c, string(room)) != string(majorityEpoch) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no convergence: epochs %s %s %s; skipped %v", epochOf(alice.c, string(room)), epochOf(bob.c, string(room)), epochOf(carol.c, string(room)), alice.c.Skipped())
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

// TestRejoinAfterUndoneJoin: alice, cut off on C, invites dave (also on C),
// who joins on the minority branch. The majority's commit wins; dave's join
// is undone, so his client starts the room over from its history, and
// alice's client re-proposes the invitation on the winning branch with
// fresh KeyPackages: dave joins again and reads the majority's messages.
// With dave's consent alice gets one-time KeyPackages (the two Welcomes use
// different ones); without it both use his last-resort KeyPackage, so the
// history holds an undone Welcome he can still open and must not join from.
func TestRejoinAfterUndoneJoin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		consent bool
	}{{"one-time KeyPackages", true}, {"last-resort KeyPackage", false}} {
		t.Run(tc.name, func(t *testing.T) { rejoinAfterUndoneJoin(t, tc.consent) })
	}
}

func rejoinAfterUndoneJoin(t *testing.T, consent bool) {
	ctx := context.Background()
	a := startNode(t, t.TempDir(), "a.test")
	b := startNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	c := startNode(t, t.TempDir(), "c.test", a.PeerAddrs()[0], b.PeerAddrs()[0])
	bob := newDevice(t, a, "bob", "phone")
	alice := newDevice(t, c, "alice", "phone")
	dave := newDevice(t, c, "dave", "phone")
	for _, d := range []*device{alice, bob, dave} {
		d.start()
	}
	srv := func(n *node.Node, dom string) Server { return Server{ID: n.ServerID().String(), Domain: dom} }
	ri, err := alice.c.CreateRoom(ctx, "private-group", "Rejoin", srv(a, "a.test"), srv(b, "b.test"))
	if err != nil {
		t.Fatal(err)
	}
	room := ri.Room
	if _, err := alice.c.Invite(ctx, room, "mimi://a.test/u/bob", nil); err != nil {
		t.Fatal(err)
	}
	bob.waitJoined(string(room))

	if consent {
		dave.c.mu.Lock()
		daveAPI := dave.c.api()
		dave.c.mu.Unlock()
		if err := daveAPI.postJSON(ctx, "/v1/consent", map[string]any{"user": "mimi://c.test/u/alice"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	iso, err := c.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	minority, err := alice.c.Invite(ctx, room, "dave", nil)
	if err != nil {
		t.Fatalf("minority invite: %v", err)
	}
	dave.waitEpoch(string(room), string(minority))
	majority, err := bob.c.Update(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if err := iso.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	// Dave ends in the group on the winning branch, with everyone's keys.
	deadline := time.Now().Add(40 * time.Second)
	for {
		ea, eb, ed := authenticatorOK(alice.c, string(room)), authenticatorOK(bob.c, string(room)), authenticatorOK(dave.c, string(room))
		if ed != nil && bytes.Equal(ea, eb) && bytes.Equal(eb, ed) && epochOf(dave.c, string(room)) != string(minority) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dave did not rejoin: epochs alice %s bob %s dave %s; dave skipped %v", epochOf(alice.c, string(room)), epochOf(bob.c, string(room)), epochOf(dave.c, string(room)), dave.c.Skipped())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := bob.c.Send(ctx, room, "welcome back dave"); err != nil {
		t.Fatal(err)
	}
	dave.waitText("welcome back dave")
	ms, _ := bob.c.Members(room)
	if len(ms) != 3 {
		t.Fatalf("members = %+v", ms)
	}
	// Which side wins is the ordering layer's call (normally the majority's
	// certified commit; if the minority's seal got through first, bob's
	// update is the one undone and re-proposed). Either way dave is in.
	t.Logf("dave %+v, bob %+v (minority %s, majority %s)", dave.c.Stats(), bob.c.Stats(), minority, majority)
	// Dave's restarted client rebuilds the rejoined room from its log.
	dir := dave.dir
	dave.close()
	d2 := openDevice(t, dir)
	if !bytes.Equal(authenticatorOK(d2.c, string(room)), authenticatorOK(bob.c, string(room))) {
		t.Fatal("dave's state after restart differs")
	}
}
