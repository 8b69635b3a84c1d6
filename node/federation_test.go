package node

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

func TestAcknowledgedEventsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	n := startTestNode(t, dir, "a.test")
	alice := register(t, n, "alice", "phone")
	created := must(t, 201)(alice.post("/v1/rooms", jsonObj{"preset": "public-room", "name": "Lobby"}))
	room, createID := str(created["room"]), str(created["event"])
	g := alice.group(n, room)
	acked := []string{createID}
	for _, text := range []string{"one", "two", "three"} {
		acked = append(acked, str(alice.sendMessage(g, room, createID, text)["event"]))
	}
	stopNode(t, n)

	n2 := startTestNode(t, dir, "a.test")
	alice.base = "http://" + n2.APIAddr()
	s := alice.openStream("?since=0")
	var cursors []uint64
	for i, want := range acked {
		e := s.next(t, 5*time.Second)
		if e.Event != want {
			t.Fatalf("event %d after restart = %s, want %s", i, e.Event, want)
		}
		cursors = append(cursors, e.Cursor)
	}
	members := must(t, 200)(alice.get("/v1/rooms/" + room))
	if members["name"] != "Lobby" || len(members["members"].([]any)) != 1 {
		t.Fatalf("room after restart = %v", members)
	}
	// The room goes on where it was: the next event's parents are the old tips.
	m := alice.sendMessage(g, room, createID, "four")
	if e := s.next(t, 5*time.Second); e.Event != str(m["event"]) || e.Cursor <= cursors[len(cursors)-1] {
		t.Fatalf("event after restart = %+v (cursor must exceed %d)", e, cursors[len(cursors)-1])
	}
	ev, err := n2.store.Get(mustEventID(t, str(m["event"])))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Prev) != 1 || ev.Prev[0].String() != acked[len(acked)-1] {
		t.Fatalf("new event's prev = %v, want the last acknowledged event", ev.Prev)
	}
}

func mustEventID(t testing.TB, s string) dag.EventID {
	t.Helper()
	id, err := dag.ParseEventID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestTwoNodesFederate runs two nodes on loopback: alice on A creates a room
// with B among its servers, claims bob's KeyPackage from B through the
// directory protocol, adds him with an MLS commit carrying the participant
// add and a Welcome, and sends a message. Bob's stream on B delivers the
// commit and the message; bob joins from the Welcome and decrypts it.
func TestTwoNodesFederate(t *testing.T) {
	a := startTestNode(t, t.TempDir(), "a.test")
	b := startTestNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	alice := register(t, a, "alice", "phone")
	bob := register(t, b, "bob", "phone")
	// A last-resort KeyPackage: alice shares no room with bob and has not
	// been allowed by him, so a one-time one would not be handed out.
	bobKB, bobKP := bob.keyPackage(b, true)
	must(t, 200)(bob.post("/v1/keypackages", jsonObj{"key_packages": []string{base64.StdEncoding.EncodeToString(bobKP)}}))

	created := must(t, 201)(alice.post("/v1/rooms", jsonObj{
		"preset": "private-group", "name": "Across",
		"servers": []jsonObj{{"server_id": b.ServerID().String(), "domain": "b.test"}},
	}))
	room, createID := str(created["room"]), str(created["event"])

	// Claim bob's KeyPackage across the federation (A asks B).
	var claim jsonObj
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := alice.post("/v1/keypackages/claim", jsonObj{"user": "mimi://b.test/u/bob", "room": room})
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
	g, pc, body := alice.addUserCommit(t, a, room, createID, bobKP, "mimi://b.test/u/bob")
	commit := must(t, 201)(alice.post("/v1/rooms/"+room+"/commits", body))
	commitID := str(commit["event"])
	if err := g.MergeCommit(pc, mustEventID(t, commitID).Bytes(), time.Now()); err != nil {
		t.Fatal(err)
	}
	// A message goes in the canonical epoch only (409 stale_epoch before):
	// wait for the commit's seal.
	eventually(t, 20*time.Second, "the commit becomes canonical on A", func() string {
		if _, o := alice.get("/v1/rooms/" + room + "/order"); str(o["tip"]) != commitID {
			return fmt.Sprintf("order %v", o)
		}
		return ""
	})
	msg := alice.sendMessage(g, room, commitID, "hello bob")

	// Bob sees the room on B: the commit with his Welcome, then the message.
	s := bob.openStream("?since=0")
	ce := s.waitFor(t, 20*time.Second, func(e clientapi.StreamLine) bool { return e.Kind == "commit" })
	cc, err := roomevent.DecodeCommit(lineEvent(t, ce).Content)
	if err != nil {
		t.Fatal(err)
	}
	if ce.Event != commitID || base64.StdEncoding.EncodeToString(cc.Welcome) != body["welcome"] || cc.Parent.String() != createID || cc.Sender.User != "mimi://a.test/u/alice" {
		t.Fatalf("commit on B = %+v (content %+v)", ce, cc)
	}
	me := s.waitFor(t, 20*time.Second, func(e clientapi.StreamLine) bool { return e.Kind == "message" })
	mc, err := roomevent.DecodeMessage(lineEvent(t, me).Content)
	if err != nil {
		t.Fatal(err)
	}
	if me.Event != str(msg["event"]) || mc.Epoch.String() != commitID {
		t.Fatalf("message on B = %+v (content %+v)", me, mc)
	}
	wm, _ := mls.UnmarshalMLSMessage(cc.Welcome) // equal to what alice sent, checked above
	bg, err := mls.JoinGroup(wm.Welcome, bobKB, &mls.JoinOptions{EpochID: mustEventID(t, commitID).Bytes()})
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
	if rs := must(t, 200)(bob.get("/v1/rooms"))["rooms"].([]any); len(rs) != 1 || rs[0].(map[string]any)["members"] != 2.0 {
		t.Fatalf("bob's rooms = %v", rs)
	}
	// And bob's reply travels back to alice's stream on A.
	reply := bob.sendMessage(bg, room, commitID, "hi alice")
	as := alice.openStream("?room=" + room)
	got := as.waitFor(t, 20*time.Second, func(e clientapi.StreamLine) bool { return e.Event == str(reply["event"]) })
	rc, err := roomevent.DecodeMessage(lineEvent(t, got).Content)
	if err != nil || rc.Sender.User != "mimi://b.test/u/bob" || got.Origin != b.ServerID().String() {
		t.Fatalf("reply on A = %+v", got)
	}
}

// addUserCommit builds the body of POST /v1/rooms/{room}/commits by which c
// adds the device of the KeyPackage kp as user: an MLS commit with the Add
// and its Welcome, and the participant-list change, after parent. It
// returns c's group and the pending commit, to merge once the node has
// accepted it.
func (c *apiClient) addUserCommit(t *testing.T, n *Node, room, parent string, kp []byte, user roomstate.URI) (*mls.Group, *mls.PendingCommit, jsonObj) {
	t.Helper()
	g := c.group(n, room)
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
	st, _ := n.rooms.state(mustRoomID(t, room))
	comp, update, err := roomstate.EncodeOp(st, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: user, Role: roomstate.RoleMember}}})
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString
	return g, pc, jsonObj{
		"parent": parent, "commit": enc(commitRaw), "welcome": enc(welcomeRaw), "group_info": enc(gi),
		"changes": []jsonObj{{"component": uint16(comp), "update": enc(update)}},
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
