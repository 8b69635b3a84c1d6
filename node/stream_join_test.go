package node_test

import (
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	engine "github.com/rhizome-chat/rhizome/room"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// TestStreamDeliversOwnAddingCommit pins addsReader: a commit whose room
// changes add a user counts as that user's to receive, whatever the room's
// state says at the moment a stream reads it; other commits, other users
// and other kinds do not.
func TestStreamDeliversOwnAddingCommit(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	alice := nodetest.Register(t, n, "alice", "phone")
	bob := nodetest.Register(t, n, "bob", "phone")
	_, bobKP := bob.KeyPackage(false)
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Join"}))
	room, createID := nodetest.Str(created["room"]), nodetest.Str(created["event"])

	st, _ := n.Rooms().State(nodetest.RoomID(t, room)) // before the commit: bob is not listed
	_, _, body := addUserCommit(alice, t, n, room, createID, bobKP, "mimi://a.test/u/bob")
	commit := nodetest.Must(t, 201)(alice.Post("/v1/rooms/"+room+"/commits", body))
	commitID, cid := nodetest.Str(commit["event"]), nodetest.EventID(t, nodetest.Str(commit["event"]))

	entry := feed.Entry{Room: nodetest.RoomID(t, room), Event: cid, Kind: dag.KindCommit}
	for _, tc := range []struct {
		name string
		e    feed.Entry
		user roomstate.URI
		want bool
	}{
		{"the added user", entry, "mimi://a.test/u/bob", true},
		{"another user", entry, "mimi://a.test/u/carol", false},
		{"the room's create event", feed.Entry{Room: entry.Room, Event: nodetest.EventID(t, createID), Kind: dag.KindCreate}, "mimi://a.test/u/bob", false},
		{"an order line", feed.Entry{Room: entry.Room, Event: cid, Kind: dag.KindCommit, Order: &engine.OrderRecord{}}, "mimi://a.test/u/bob", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := n.API().AddsReader(st, tc.e, tc.user); got != tc.want {
				t.Fatalf("addsReader(%s) of commit %s = %v, want %v", tc.user, commitID, got, tc.want)
			}
		})
	}
}
