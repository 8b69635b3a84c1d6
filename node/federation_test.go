package node_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/roomstate"
)

func TestAcknowledgedEventsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	n := nodetest.Start(t, nodetest.Options{Dir: dir})
	alice := nodetest.Register(t, n, "alice", "phone")
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "public-room", "name": "Lobby"}))
	room, createID := nodetest.Str(created["room"]), nodetest.Str(created["event"])
	g := alice.Group(room)
	acked := []string{createID}
	for _, text := range []string{"one", "two", "three"} {
		acked = append(acked, nodetest.Str(alice.SendMessage(g, room, createID, text)["event"]))
	}
	nodetest.Stop(t, n)

	n2 := nodetest.Start(t, nodetest.Options{Dir: dir})
	alice.Base = "http://" + n2.APIAddr()
	s := alice.OpenStream("?since=0")
	var cursors []uint64
	for i, want := range acked {
		e := s.Next(t, 5*time.Second)
		if e.Event != want {
			t.Fatalf("event %d after restart = %s, want %s", i, e.Event, want)
		}
		cursors = append(cursors, e.Cursor)
	}
	members := nodetest.Must(t, 200)(alice.Get("/v1/rooms/" + room))
	if members["name"] != "Lobby" || len(members["members"].([]any)) != 1 {
		t.Fatalf("room after restart = %v", members)
	}
	// The room goes on where it was: the next event's parents are the old tips.
	m := alice.SendMessage(g, room, createID, "four")
	if e := s.Next(t, 5*time.Second); e.Event != nodetest.Str(m["event"]) || e.Cursor <= cursors[len(cursors)-1] {
		t.Fatalf("event after restart = %+v (cursor must exceed %d)", e, cursors[len(cursors)-1])
	}
	ev, err := n2.Store().Get(nodetest.EventID(t, nodetest.Str(m["event"])))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Prev) != 1 || ev.Prev[0].String() != acked[len(acked)-1] {
		t.Fatalf("new event's prev = %v, want the last acknowledged event", ev.Prev)
	}
}

// TestTwoNodesFederate runs two nodes on loopback: alice on A creates a room
// with B among its servers, claims bob's KeyPackage from B through the
// directory protocol, adds him with an MLS commit carrying the participant
// add and a Welcome, and sends a message. Bob's stream on B delivers the
// commit and the message; bob joins from the Welcome and decrypts it.
func TestTwoNodesFederate(t *testing.T) {
	net := nodetest.NewNet(t)
	a := nodetest.Start(t, nodetest.Options{Net: net})
	b := nodetest.Start(t, nodetest.Options{Net: net, Name: "b.test", Bootstrap: a.PeerAddrs()})
	alice := nodetest.Register(t, a, "alice", "phone")
	bob := nodetest.Register(t, b, "bob", "phone")
	// A last-resort KeyPackage: alice shares no room with bob and has not
	// been allowed by him, so a one-time one would not be handed out.
	bobKB, bobKP := bob.KeyPackage(true)
	nodetest.Must(t, 200)(bob.Post("/v1/keypackages", nodetest.JSON{"key_packages": []string{base64.StdEncoding.EncodeToString(bobKP)}}))

	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{
		"preset": "private-group", "name": "Across",
		"servers": []nodetest.JSON{{"server_id": b.ServerID().String(), "domain": "b.test"}},
	}))
	room, createID := nodetest.Str(created["room"]), nodetest.Str(created["event"])

	// Claim bob's KeyPackage across the federation (A asks B).
	var claim nodetest.JSON
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := alice.Post("/v1/keypackages/claim", nodetest.JSON{"user": "mimi://b.test/u/bob", "room": room})
		if status == 200 {
			claim = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote claim: %d %v", status, body)
		}
		time.Sleep(100 * time.Millisecond) // B may still be connecting
	}
	clients := claim["clients"].([]any)
	if claim["status"] != "success" || len(clients) != 1 || clients[0].(map[string]any)["key_package"] != base64.StdEncoding.EncodeToString(bobKP) {
		t.Fatalf("remote claim = %v", claim)
	}

	// Alice adds bob: MLS commit with Add + Welcome, and the participant add.
	g, pc, body := addUserCommit(alice, t, a, room, createID, bobKP, "mimi://b.test/u/bob")
	commit := nodetest.Must(t, 201)(alice.Post("/v1/rooms/"+room+"/commits", body))
	commitID := nodetest.Str(commit["event"])
	if err := g.MergeCommit(pc, nodetest.EventID(t, commitID).Bytes(), time.Now()); err != nil {
		t.Fatal(err)
	}
	// A message goes in the canonical epoch only (409 stale_epoch before):
	// wait for the commit's seal.
	nodetest.Eventually(t, 20*time.Second, "the commit becomes canonical on A", func() string {
		if _, o := alice.Get("/v1/rooms/" + room + "/order"); nodetest.Str(o["tip"]) != commitID {
			return fmt.Sprintf("order %v", o)
		}
		return ""
	})
	msg := alice.SendMessage(g, room, commitID, "hello bob")

	// Bob sees the room on B: the commit with his Welcome, then the message.
	s := bob.OpenStream("?since=0")
	ce := s.WaitFor(t, 20*time.Second, func(e clientapi.StreamLine) bool { return e.Kind == "commit" })
	cc, err := roomevent.DecodeCommit(nodetest.LineEvent(t, ce).Content)
	if err != nil {
		t.Fatal(err)
	}
	if ce.Event != commitID || base64.StdEncoding.EncodeToString(cc.Welcome) != body["welcome"] || cc.Parent.String() != createID || cc.Sender.User != "mimi://a.test/u/alice" {
		t.Fatalf("commit on B = %+v (content %+v)", ce, cc)
	}
	me := s.WaitFor(t, 20*time.Second, func(e clientapi.StreamLine) bool { return e.Kind == "message" })
	mc, err := roomevent.DecodeMessage(nodetest.LineEvent(t, me).Content)
	if err != nil {
		t.Fatal(err)
	}
	if me.Event != nodetest.Str(msg["event"]) || mc.Epoch.String() != commitID {
		t.Fatalf("message on B = %+v (content %+v)", me, mc)
	}
	wm, _ := mls.UnmarshalMLSMessage(cc.Welcome) // equal to what alice sent, checked above
	bg, err := mls.JoinGroup(wm.Welcome, bobKB, &mls.JoinOptions{EpochID: nodetest.EventID(t, commitID).Bytes()})
	if err != nil {
		t.Fatalf("bob joins from the Welcome: %v", err)
	}
	raw := mc.Message
	mm, err := mls.UnmarshalMLSMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := bg.ProcessMessage(mm, &mls.ProcessOptions{})
	if err != nil || string(pm.ApplicationData) != "hello bob" {
		t.Fatalf("bob decrypts %q, %v", pm.ApplicationData, err)
	}
	// B lists bob's room with both members.
	if rs := nodetest.Must(t, 200)(bob.Get("/v1/rooms"))["rooms"].([]any); len(rs) != 1 || rs[0].(map[string]any)["members"] != 2.0 {
		t.Fatalf("bob's rooms = %v", rs)
	}
	// And bob's reply travels back to alice's stream on A.
	reply := bob.SendMessage(bg, room, commitID, "hi alice")
	as := alice.OpenStream("?room=" + room)
	got := as.WaitFor(t, 20*time.Second, func(e clientapi.StreamLine) bool { return e.Event == nodetest.Str(reply["event"]) })
	rc, err := roomevent.DecodeMessage(nodetest.LineEvent(t, got).Content)
	if err != nil || rc.Sender.User != "mimi://b.test/u/bob" || got.Origin != b.ServerID().String() {
		t.Fatalf("reply on A = %+v", got)
	}
}

// addUserCommit builds the body of POST /v1/rooms/{room}/commits by which c
// adds the device of the KeyPackage kp as user: an MLS commit with the Add
// and its Welcome, and the participant-list change, after parent. It
// returns c's group and the pending commit, to merge once the node has
// accepted it.
func addUserCommit(c *nodetest.Client, t *testing.T, n *node.Node, room, parent string, kp []byte, user roomstate.URI) (*mls.Group, *mls.PendingCommit, nodetest.JSON) {
	t.Helper()
	g := c.Group(room)
	gi, err := groupInfoOf(g)
	if err != nil {
		t.Fatal(err)
	}
	kpMsg, err := mls.UnmarshalMLSMessage(kp)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := g.Commit(rand.Reader, &mls.CommitOptions{Proposals: []mls.Proposal{&mls.AddProposal{KeyPackage: *kpMsg.KeyPackage}}})
	if err != nil {
		t.Fatal(err)
	}
	commitRaw, err := pc.Message.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	welcomeRaw, err := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatWelcome, Welcome: pc.Welcome}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	st, _ := n.Rooms().State(nodetest.RoomID(t, room))
	comp, update, err := roomstate.EncodeOp(st, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: user, Role: roomstate.RoleMember}}})
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString
	return g, pc, nodetest.JSON{
		"parent": parent, "commit": enc(commitRaw), "welcome": enc(welcomeRaw), "group_info": enc(gi),
		"changes": []nodetest.JSON{{"component": uint16(comp), "update": enc(update)}},
	}
}

// groupInfoOf is g's GroupInfo with its ratchet tree as an MLSMessage: a
// group's first commit carries the epoch-0 one, from which servers verify
// commits as MLS external observers.
func groupInfoOf(g *mls.Group) ([]byte, error) {
	gi, err := g.GroupInfo(true)
	if err != nil {
		return nil, err
	}
	return (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatGroupInfo, GroupInfo: gi}).Marshal()
}
