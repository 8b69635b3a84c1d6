package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// serversChange signs (as alice's device) and encodes the content of a
// state event that applies u to the room's servers.
func serversChange(t *testing.T, n *node.Node, alice *nodetest.Client, room dag.RoomID, u *roomstate.ServersUpdate) []byte {
	t.Helper()
	st, _ := n.Rooms().State(room)
	comp, update, err := roomstate.EncodeOp(st, u)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(alice.Sig.Bytes())
	sev := &roomevent.State{
		Sender:       roomevent.Sender{User: alice.UserURI, Client: alice.DeviceURI},
		Changes:      []roomevent.Change{{Component: uint16(comp), Update: update}},
		SignatureKey: key.Public().(ed25519.PublicKey),
	}
	if err := sev.Sign(room, key); err != nil {
		t.Fatal(err)
	}
	content, err := sev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return content
}

// TestWriters checks the node's p2p.RoomACL: the room's initial servers
// are writers and participants, a stranger is neither; a server added by a
// state event becomes both, and stays a writer (the union of the states
// seen) once removed, while it no longer participates. Settle makes a
// state event stored but not yet processed count at once. The mesh's
// rejection counts are exported as metrics. A restart rebuilds the writers
// from the restored room.
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
	add := serversChange(t, n, alice, room, &roomstate.ServersUpdate{Added: []roomstate.Server{{ID: roomstate.ServerID(late), Domain: "c.test"}}})
	tips, err := n.Store().Tips(room)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dag.NewSigned(n.Key(), room, dag.KindState, tips, time.Now().UnixMilli(), add)
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
	check("server added by a state event", late, true, true)

	remove := serversChange(t, n, alice, room, &roomstate.ServersUpdate{Removed: []roomstate.ServerID{roomstate.ServerID(late)}})
	if _, _, err := rs.Submit(t.Context(), room, dag.KindState, remove); err != nil {
		t.Fatal(err)
	}
	check("removed server", late, true, false)

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
