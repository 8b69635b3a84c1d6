package node_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// serversCommit is the content of a commit by alice's device (group g,
// on parent; the group's first commit carries its epoch-0 GroupInfo) that
// applies u to the room's servers, and the pending commit to merge once
// the node accepted it.
func serversCommit(t *testing.T, n *node.Node, alice *nodetest.Client, g *mls.Group, room dag.RoomID, parent dag.EventID, u *roomstate.ServersUpdate) ([]byte, *mls.PendingCommit) {
	t.Helper()
	st, err := n.Rooms().StateAt(room, parent)
	if err != nil {
		t.Fatal(err)
	}
	comp, update, err := roomstate.EncodeOp(st, u)
	if err != nil {
		t.Fatal(err)
	}
	c := &roomevent.Commit{Sender: roomevent.Sender{User: alice.UserURI, Client: alice.DeviceURI}, Parent: parent,
		Changes: []roomevent.Change{{Component: uint16(comp), Update: update}}}
	if g.Epoch() == 0 {
		gi, err := g.GroupInfo(true)
		if err != nil {
			t.Fatal(err)
		}
		if c.GroupInfo, err = (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatGroupInfo, GroupInfo: gi}).Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := g.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit, err = pc.Message.Marshal(); err != nil {
		t.Fatal(err)
	}
	content, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return content, pc
}

// TestWriters checks the node's p2p.RoomACL: the room's initial servers
// are writers and participants, a stranger is neither; a server added by a
// commit becomes both, and stays a writer (the union of the states seen)
// once a later commit removes it, while it no longer participates and its
// events naming that commit are refused (WritesAt: not a server at their
// parents). Settle makes a commit stored but not yet processed count at
// once. The mesh's rejection counts are exported as metrics. A restart
// rebuilds the writers from the restored room.
func TestWriters(t *testing.T) {
	dir := t.TempDir()
	n := nodetest.Start(t, nodetest.Options{Dir: dir})
	alice := nodetest.Register(t, n, "alice", "phone")
	_, other, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Writers",
		"servers": []nodetest.JSON{{"server_id": other.String(), "domain": "b.test"}}}))
	room := nodetest.RoomID(t, nodetest.Str(created["room"]))
	rs := n.Rooms()
	check := func(what string, s dag.ServerID, writer, participant bool) {
		t.Helper()
		if got := rs.Writer(room, s); got != writer {
			t.Errorf("%s: Writer = %v, want %v", what, got, writer)
		}
		if got := rs.Participates(room, s); got != participant {
			t.Errorf("%s: Participates = %v, want %v", what, got, participant)
		}
	}
	check("self", n.ServerID(), true, true)
	check("initial server", other, true, true)
	check("stranger", stranger, false, false)
	var unknown dag.RoomID
	copy(unknown[:], room[:])
	unknown[len(unknown)-1] ^= 1
	if rs.Writer(unknown, n.ServerID()) || rs.Participates(unknown, n.ServerID()) {
		t.Error("the node writes or takes part in a room it never joined")
	}

	// Stored but not processed: only Settle makes it count.
	_, late, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	g := alice.Group(room.String())
	add, pc := serversCommit(t, n, alice, g, room, room.CreateID(), &roomstate.ServersUpdate{Added: []roomstate.Server{{ID: roomstate.ServerID(late), Domain: "c.test"}}})
	tips, err := dag.MergeParents(n.Store(), room, room.CreateID())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dag.NewSigned(n.Key(), room, dag.KindCommit, tips, time.Now().UnixMilli(), add)
	if err != nil {
		t.Fatal(err)
	}
	rs.WriteMu().Lock() // keep the background loop from processing it first
	if _, err := n.Store().Put(ev); err != nil {
		rs.WriteMu().Unlock()
		t.Fatal(err)
	}
	before := rs.Writer(room, late)
	rs.WriteMu().Unlock()
	if before {
		t.Fatal("a server added by an unprocessed event writes already")
	}
	rs.Settle(room)
	if !rs.Writer(room, late) {
		t.Error("Settle did not make the server added by a stored commit a writer")
	}
	// It participates once the commit is canonical (sealed tentatively:
	// the other initial server is not running).
	nodetest.WaitUntil(t, 20*time.Second, "the commit adding a server canonical", func() bool { return rs.Participates(room, late) })
	check("server added by a commit", late, true, true)
	if err := g.MergeCommit(pc, ev.ID().Bytes(), time.Now()); err != nil {
		t.Fatal(err)
	}

	remove, _ := serversCommit(t, n, alice, g, room, ev.ID(), &roomstate.ServersUpdate{Removed: []roomstate.ServerID{roomstate.ServerID(late)}})
	removal, _, err := rs.Submit(t.Context(), room, dag.KindCommit, remove)
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitUntil(t, 20*time.Second, "the commit removing the server canonical", func() bool { return !rs.Participates(room, late) })
	check("removed server", late, true, false)

	// At the event's parents: late is a server after the commit that
	// added it, not after the one that removed it.
	for _, tc := range []struct {
		epoch dag.EventID
		want  bool
	}{{ev.ID(), true}, {removal.ID(), false}} {
		m := messageOf(t, late, room, tc.epoch)
		if got := rs.WritesAt(room, m); got != tc.want {
			t.Errorf("WritesAt(late's message in epoch %v) = %v, want %v", tc.epoch, got, tc.want)
		}
	}
	if !rs.WritesAt(room, messageOf(t, n.ServerID(), room, removal.ID())) {
		t.Error("WritesAt refuses this server's own message after the removal")
	}

	// The mesh's rejection counts are exported, every reason listed.
	fams, err := n.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reasons := 0
	for _, f := range fams {
		if f.GetName() == "rhizome_p2p_events_refused_total" {
			reasons = len(f.GetMetric())
		}
	}
	if want := len(p2p.RejectionReasons()); reasons != want {
		t.Errorf("rhizome_p2p_events_refused_total has %d reasons, want %d", reasons, want)
	}

	// A restart rebuilds the writers from the restored room: every server
	// of every room state the engine accepted, as before the restart (the
	// union: the server that state events added and removed stays a
	// writer, its events refused by the engine).
	nodetest.Stop(t, n)
	n = nodetest.Start(t, nodetest.Options{Dir: dir})
	rs = n.Rooms()
	check("self after a restart", n.ServerID(), true, true)
	check("initial server after a restart", other, true, true)
	check("removed server after a restart", late, true, false)
	check("stranger after a restart", stranger, false, false)
}

// messageOf is an event of origin in room naming epoch (its parent, by
// rule R), as far as WritesAt looks: only its kind, origin, parents and
// content matter there, not the signature.
func messageOf(t *testing.T, origin dag.ServerID, room dag.RoomID, epoch dag.EventID) *dag.Event {
	t.Helper()
	content, err := (&roomevent.Message{Sender: roomevent.Sender{User: "mimi://c.test/u/x", Client: "mimi://c.test/d/x/y"}, Epoch: epoch, Message: []byte{1}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &dag.Event{Version: 1, Room: room, Kind: dag.KindMessage, Origin: origin, Prev: []dag.EventID{epoch}, Content: content}
}
