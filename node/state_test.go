package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// TestStateChangeSignedByDevice adds a participant with a state event signed
// by the admin's device, which takes effect with the next commit (it adopts
// the event, named among its DAG parents), and checks the refusals: a bad
// signature, and a change room state does not allow.
func TestStateChangeSignedByDevice(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	alice := nodetest.Register(t, n, "alice", "phone")
	bob := nodetest.Register(t, n, "bob", "phone")
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Club"}))
	room, create := nodetest.Str(created["room"]), nodetest.Str(created["event"])
	roomID := nodetest.RoomID(t, room)
	st, _ := n.Rooms().State(roomID)

	change := func(c *nodetest.Client, op roomstate.Op, sign bool) (int, nodetest.JSON) {
		t.Helper()
		comp, update, err := roomstate.EncodeOp(st, op)
		if err != nil {
			t.Fatal(err)
		}
		ev := &roomevent.State{
			Sender:  roomevent.Sender{User: c.UserURI, Client: c.DeviceURI},
			Changes: []roomevent.Change{{Component: uint16(comp), Update: update}},
		}
		if err := ev.Sign(roomID, ed25519.NewKeyFromSeed(c.Sig.Bytes())); err != nil {
			t.Fatal(err)
		}
		if !sign {
			ev.Signature[0] ^= 1
		}
		enc := base64.StdEncoding.EncodeToString
		return c.Post("/v1/rooms/"+room+"/state", nodetest.JSON{
			"changes":   []nodetest.JSON{{"component": uint16(comp), "update": enc(update)}},
			"signature": enc(ev.Signature),
		})
	}
	addBob := &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://a.test/u/bob", Role: roomstate.RoleMember}}}
	if status, body := change(alice, addBob, false); status != 400 || !strings.Contains(nodetest.Str(body["message"]), "bad client signature") {
		t.Fatalf("bad signature: %d %v", status, body)
	}
	stateEv := nodetest.Str(nodetest.Must(t, 201)(change(alice, addBob, true))["event"])
	members := nodetest.Must(t, 200)(alice.Get("/v1/rooms/" + room + "/members"))["members"].([]any)
	if len(members) != 1 {
		t.Fatalf("members after the state event alone = %v, want alice only (no commit adopted it)", members)
	}
	// alice's next commit adopts it: the node names it among the parents.
	g := alice.Group(room)
	gi, err := groupInfoOf(g)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := g.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := pc.Message.Marshal()
	enc := base64.StdEncoding.EncodeToString
	commit := nodetest.Str(nodetest.Must(t, 201)(alice.Post("/v1/rooms/"+room+"/commits", nodetest.JSON{"parent": create, "commit": enc(raw), "group_info": enc(gi)}))["event"])
	as := alice.OpenStream("?since=0")
	defer as.Close()
	line := as.WaitFor(t, nodetest.StreamWait, func(l clientapi.StreamLine) bool { return l.Event == commit })
	if ev := nodetest.LineEvent(t, line); !slices.Contains(ev.Prev, nodetest.EventID(t, stateEv)) {
		t.Fatalf("the commit's parents %v do not name the pending state event %s", ev.Prev, stateEv)
	}
	members = nodetest.Must(t, 200)(bob.Get("/v1/rooms/" + room + "/members"))["members"].([]any)
	if len(members) != 2 {
		t.Fatalf("members after the adopting commit = %v", members)
	}
	// Bob, a member, may not make carol an admin.
	carolAdmin := &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://a.test/u/carol", Role: roomstate.RoleAdmin}}}
	if status, body := change(bob, carolAdmin, true); status != 403 || body["error"] != "rejected" {
		t.Fatalf("member makes an admin: %d %v", status, body)
	}
	// The stream shows the state event with its change.
	s := bob.OpenStream("?since=0")
	s.Next(t, nodetest.StreamWait) // create
	e := s.Next(t, nodetest.StreamWait)
	if e.Kind != "state" {
		t.Fatalf("state event = %+v", e)
	}
	if c, err := roomevent.DecodeState(nodetest.LineEvent(t, e).Content); err != nil || len(c.Changes) != 1 || c.Sender.User != "mimi://a.test/u/alice" {
		t.Fatalf("state content = %+v, %v", c, err)
	}
}
