package client

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/mimicontent"
)

// TestFederatedRoom runs the whole client path on two real nodes: alice and
// bob on A, carol on B. Alice creates a room, invites bob (same server) and
// carol (across the federation, adding B to the room), everyone joins from
// their Welcome, messages flow both ways, with a reply, a reaction, an edit
// and a delete, and every device holds the same epoch_authenticator.
func TestFederatedRoom(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, t.TempDir(), "a.test")
	b := startNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	alice := newDevice(t, a, "alice", "phone")
	bob := newDevice(t, a, "bob", "laptop")
	carol := newDevice(t, b, "carol", "phone")
	for _, d := range []*device{alice, bob, carol} {
		d.start()
	}

	ri, err := alice.c.CreateRoom(ctx, "private-group", "Club")
	if err != nil {
		t.Fatal(err)
	}
	if !ri.Joined || ri.Name != "Club" || ri.Members != 1 {
		t.Fatalf("created room = %+v", ri)
	}
	room := ri.Room
	if _, err := alice.c.Invite(ctx, room, "bob", nil); err != nil {
		t.Fatalf("invite bob: %v", err)
	}
	if _, err := alice.c.Invite(ctx, room, "mimi://b.test/u/carol", &InviteOptions{ServerURL: apiURL(b)}); err != nil {
		t.Fatalf("invite carol: %v", err)
	}
	bob.waitJoined(string(room))
	carol.waitJoined(string(room))

	hello, err := alice.c.Send(ctx, room, "hello all")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bob, carol} {
		got := d.waitText("hello all")
		if got.ID != hello.ID || got.Sender != "mimi://a.test/u/alice" || got.Device != "mimi://a.test/d/alice/phone" || got.Epoch != hello.Epoch {
			t.Fatalf("delivery = %+v, sent %+v", got, hello)
		}
	}
	// Carol answers across the federation; bob replies and reacts.
	hi, err := carol.c.Send(ctx, room, "hi from b")
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.waitText("hi from b"); got.Sender != "mimi://b.test/u/carol" || got.ID != hi.ID {
		t.Fatalf("alice got %+v", got)
	}
	bob.waitText("hi from b")
	reply, err := bob.c.Reply(ctx, room, hi.ID, "welcome carol")
	if err != nil {
		t.Fatal(err)
	}
	react, err := alice.c.React(ctx, room, hi.ID, "👍")
	if err != nil {
		t.Fatal(err)
	}
	got := carol.waitFor("reply", func(x Delivery) bool { return x.ID == reply.ID })
	content, err := got.Content()
	if err != nil || content.InReplyTo == nil || hexID(*content.InReplyTo) != string(hi.ID) || content.Kind() != mimicontent.KindReply {
		t.Fatalf("reply content = %+v, %v", content, err)
	}
	got = carol.waitFor("reaction", func(x Delivery) bool { return x.ID == react.ID })
	if content, _ = got.Content(); content.Kind() != mimicontent.KindReaction || got.Text() != "👍" {
		t.Fatalf("reaction = %+v kind %v", content, content.Kind())
	}
	// Alice edits and deletes her first message.
	edit, err := alice.c.Edit(ctx, room, hello.ID, "hello everyone")
	if err != nil {
		t.Fatal(err)
	}
	del, err := alice.c.Delete(ctx, room, hello.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bob, carol} {
		e := d.waitFor("edit", func(x Delivery) bool { return x.ID == edit.ID })
		ec, _ := e.Content()
		if ec.Replaces == nil || hexID(*ec.Replaces) != string(hello.ID) || e.Text() != "hello everyone" {
			t.Fatalf("edit = %+v", ec)
		}
		x := d.waitFor("delete", func(x Delivery) bool { return x.ID == del.ID })
		xc, _ := x.Content()
		if xc.Kind() != mimicontent.KindDelete || hexID(*xc.Replaces) != string(hello.ID) {
			t.Fatalf("delete kind %v", xc.Kind())
		}
		orig, _ := d.waitText("hello all").Content()
		if err := mimicontent.ValidateReplacement(orig, mustID(t, string(hello.ID)), ec); err != nil {
			t.Fatalf("edit is not a valid replacement: %v", err)
		}
	}
	// Every message round-trips through the content codec, byte for byte,
	// and its ID is the draft-08 ID of those bytes.
	for _, x := range carol.deliveries() {
		c, err := mimicontent.Decode(x.Raw)
		if err != nil {
			t.Fatal(err)
		}
		enc, id, err := c.EncodeWithID()
		if err != nil || !bytes.Equal(enc, x.Raw) || hexID(id) != string(x.ID) {
			t.Fatalf("message %s does not round-trip: %v", x.ID, err)
		}
	}
	// Same epoch and epoch_authenticator everywhere.
	ea := authenticator(t, alice.c, string(room))
	for _, d := range []*device{bob, carol} {
		if !bytes.Equal(authenticator(t, d.c, string(room)), ea) {
			t.Fatalf("%s has another epoch_authenticator", d.dir)
		}
	}
	members, err := carol.c.Members(room)
	if err != nil || len(members) != 3 {
		t.Fatalf("members = %+v, %v", members, err)
	}
	for _, m := range members {
		if len(m.Devices) != 1 {
			t.Fatalf("member %s devices %v", m.User, m.Devices)
		}
	}
	// Own messages are delivered to the sender too, once each.
	ids := map[string]int{}
	for _, x := range alice.deliveries() {
		ids[string(x.ID)]++
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("message %s delivered %d times", id, n)
		}
	}
	if ids[string(hello.ID)] != 1 || ids[string(react.ID)] != 1 {
		t.Fatalf("alice's own messages not delivered to her: %v", ids)
	}
}

func hexID(id mimicontent.MessageID) string { return encodeHex(id[:]) }

func mustID(t *testing.T, s string) mimicontent.MessageID {
	t.Helper()
	id, err := parseMessageID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func authenticator(t *testing.T, c *Client, room string) []byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.joinedRoom(room)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(r.g.EpochAuthenticator())
}

var _ = errors.Is
