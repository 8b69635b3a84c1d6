package node

import (
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/feed"
	engine "github.com/rhizome-chat/rhizome/room"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// TestStreamDeliversOwnAddingCommit pins addsReader: a commit whose room
// changes add a user counts as that user's to receive, whatever the room's
// state says at the moment a stream reads it; other commits, other users
// and other kinds do not.
func TestStreamDeliversOwnAddingCommit(t *testing.T) {
	n := startTestNode(t, t.TempDir(), "a.test")
	alice := register(t, n, "alice", "phone")
	bob := register(t, n, "bob", "phone")
	_, bobKP := bob.keyPackage(n, false)
	created := must(t, 201)(alice.post("/v1/rooms", jsonObj{"preset": "private-group", "name": "Join"}))
	room, createID := str(created["room"]), str(created["event"])

	st, _ := n.rooms.state(mustRoomID(t, room)) // before the commit: bob is not listed
	_, _, body := alice.addUserCommit(t, n, room, createID, bobKP, "mimi://a.test/u/bob")
	commit := must(t, 201)(alice.post("/v1/rooms/"+room+"/commits", body))
	commitID, cid := str(commit["event"]), mustEventID(t, str(commit["event"]))

	entry := feed.Entry{Room: mustRoomID(t, room), Event: cid, Kind: dag.KindCommit}
	for _, tc := range []struct {
		name string
		e    feed.Entry
		user roomstate.URI
		want bool
	}{
		{"the added user", entry, "mimi://a.test/u/bob", true},
		{"another user", entry, "mimi://a.test/u/carol", false},
		{"the room's create event", feed.Entry{Room: entry.Room, Event: mustEventID(t, createID), Kind: dag.KindCreate}, "mimi://a.test/u/bob", false},
		{"an order line", feed.Entry{Room: entry.Room, Event: cid, Kind: dag.KindCommit, Order: &engine.OrderRecord{}}, "mimi://a.test/u/bob", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := n.api.AddsReader(st, tc.e, tc.user); got != tc.want {
				t.Fatalf("addsReader(%s) of commit %s = %v, want %v", tc.user, commitID, got, tc.want)
			}
		})
	}
}
