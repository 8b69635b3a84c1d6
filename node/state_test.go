package node

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// TestStateChangeSignedByDevice adds a participant with a state event signed
// by the admin's device, and checks the refusals: a bad signature, and a
// change room state does not allow.
func TestStateChangeSignedByDevice(t *testing.T) {
	n := startTestNode(t, t.TempDir(), "a.test")
	alice := register(t, n, "alice", "phone")
	bob := register(t, n, "bob", "phone")
	room := str(must(t, 201)(alice.post("/v1/rooms", jsonObj{"preset": "private-group", "name": "Club"}))["room"])
	roomID := mustRoomID(t, room)
	st, _ := n.rooms.state(roomID)

	change := func(c *apiClient, op roomstate.Op, sign bool) (int, jsonObj) {
		t.Helper()
		comp, update, err := roomstate.EncodeOp(st, op)
		if err != nil {
			t.Fatal(err)
		}
		ev := &roomevent.State{
			Sender:  roomevent.Sender{User: c.userURI(n), Client: c.deviceURI(n)},
			Changes: []roomevent.Change{{Component: uint16(comp), Update: update}},
		}
		if err := ev.Sign(roomID, ed25519.NewKeyFromSeed(c.sig.Bytes())); err != nil {
			t.Fatal(err)
		}
		if !sign {
			ev.Signature[0] ^= 1
		}
		enc := base64.StdEncoding.EncodeToString
		return c.post("/v1/rooms/"+room+"/state", jsonObj{
			"changes":   []jsonObj{{"component": uint16(comp), "update": enc(update)}},
			"signature": enc(ev.Signature),
		})
	}
	addBob := &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://a.test/u/bob", Role: roomstate.RoleMember}}}
	if status, body := change(alice, addBob, false); status != 400 || !strings.Contains(str(body["message"]), "bad client signature") {
		t.Fatalf("bad signature: %d %v", status, body)
	}
	must(t, 201)(change(alice, addBob, true))
	members := must(t, 200)(bob.get("/v1/rooms/" + room + "/members"))["members"].([]any)
	if len(members) != 2 {
		t.Fatalf("members after add = %v", members)
	}
	// Bob, a member, may not make carol an admin.
	carolAdmin := &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://a.test/u/carol", Role: roomstate.RoleAdmin}}}
	if status, body := change(bob, carolAdmin, true); status != 403 || body["error"] != "rejected" {
		t.Fatalf("member makes an admin: %d %v", status, body)
	}
	// The stream shows the state event with its change.
	s := bob.openStream("?since=0")
	s.next(t, streamWait) // create
	e := s.next(t, streamWait)
	if e.Kind != "state" {
		t.Fatalf("state event = %+v", e)
	}
	if c, err := roomevent.DecodeState(lineEvent(t, e).Content); err != nil || len(c.Changes) != 1 || c.Sender.User != "mimi://a.test/u/alice" {
		t.Fatalf("state content = %+v, %v", c, err)
	}
}
