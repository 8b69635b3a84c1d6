package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// sybil is a hostile server: a real libp2p host (on the test's mocknet)
// with a mesh of its own (an in-memory store and ACL), connected to a node.
type sybil struct {
	key   ed25519.PrivateKey
	id    dag.ServerID
	h     host.Host
	mesh  *p2p.Mesh
	store dag.Store
	acl   *p2p.MemACL
}

func newSybil(t *testing.T, net *nodetest.Net, target *node.Node) *sybil {
	t.Helper()
	s := &sybil{key: newServerKey(t), store: dag.NewMemStore(dag.Limits{}), acl: p2p.NewMemACL()}
	s.id, _ = dag.ServerIDFromKey(s.key.Public().(ed25519.PublicKey))
	h, err := net.Host(s.key)
	if err != nil {
		t.Fatal(err)
	}
	s.h = h
	if s.mesh, err = p2p.New(p2p.Config{Host: h, Store: s.store, ACL: s.acl}); err != nil {
		h.Close()
		t.Fatal(err)
	}
	if err := h.Connect(context.Background(), peer.AddrInfo{ID: target.Mesh().Host().ID(), Addrs: target.Mesh().Host().Addrs()}); err != nil {
		s.close()
		t.Fatal(err)
	}
	return s
}

// invite sends a notice for room, reconnecting once if the connection was
// closed under it (a transport error, not a refusal).
func (s *sybil) invite(target *node.Node, room dag.RoomID) error {
	notice := p2p.InviteNotice{Room: room, Invitation: room.CreateID()}
	err := s.mesh.SendInvite(context.Background(), target.ServerID(), notice)
	if inviteOutcome(err) == "error" {
		time.Sleep(100 * time.Millisecond)
		_ = s.h.Connect(context.Background(), peer.AddrInfo{ID: target.Mesh().Host().ID(), Addrs: target.Mesh().Host().Addrs()})
		err = s.mesh.SendInvite(context.Background(), target.ServerID(), notice)
	}
	return err
}

func (s *sybil) close() {
	s.mesh.Close()
	s.h.Close()
	_ = s.store.Close()
}

// fakeRoom makes a valid room of the sybil's own that lists target among
// its servers, stores its create event and lets target read it: an
// invitation that verifies, from a server no user of target knows.
func (s *sybil) fakeRoom(t *testing.T, target *node.Node, name string) dag.RoomID {
	t.Helper()
	creator := roomevent.Sender{User: "mimi://sybil.test/u/s", Client: "mimi://sybil.test/d/s/1"}
	st, err := roomstate.NewRoom(roomstate.PresetPrivateGroup, roomstate.RoomConfig{
		Room: roomstate.URI("mimi://sybil.test/r/" + name), Name: name, Creator: roomstate.URI(creator.User),
		Servers: []roomstate.Server{{ID: roomstate.ServerID(s.id), Domain: "sybil.test"}, {ID: roomstate.ServerID(target.ServerID()), Domain: target.Config().ServerName}},
	})
	if err != nil {
		t.Fatal(err)
	}
	comps, err := st.Components()
	if err != nil {
		t.Fatal(err)
	}
	state, err := roomstate.MarshalComponents(comps)
	if err != nil {
		t.Fatal(err)
	}
	content, err := (&roomevent.Create{Creator: creator, Preset: roomstate.PresetPrivateGroup.String(), State: state}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dag.NewSigned(s.key, dag.RoomID{}, dag.KindCreate, nil, time.Now().UnixMilli(), content)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Put(ev); err != nil {
		t.Fatal(err)
	}
	s.acl.Allow(ev.RoomID(), target.ServerID())
	if err := s.mesh.JoinRoom(ev.RoomID()); err != nil {
		t.Fatal(err)
	}
	return ev.RoomID()
}

func randomRoomID(t *testing.T) dag.RoomID {
	t.Helper()
	b := make([]byte, 34)
	b[0], b[1] = 0x12, 0x20
	_, _ = rand.Read(b[2:])
	id, err := dag.EventIDFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return dag.RoomID(id)
}

func randomServerHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// roomsLeft reports what the node holds of rooms: in memory, recorded, in
// the mesh, awaiting; "" when nothing.
func roomsLeft(n *node.Node) string {
	recs, err := n.Local().Rooms()
	if err != nil {
		return err.Error()
	}
	if len(n.Rooms().List())+len(recs)+len(n.Mesh().Rooms())+n.Joins().AwaitingCount() == 0 {
		return ""
	}
	return fmt.Sprintf("rooms %d, records %d, mesh %d, awaiting %d", len(n.Rooms().List()), len(recs), len(n.Mesh().Rooms()), n.Joins().AwaitingCount())
}

// adminRooms lists the node's rooms through the admin API.
func adminRooms(t *testing.T, n *node.Node) []any {
	t.Helper()
	admin := &nodetest.Client{T: t, Base: "http://" + n.APIAddr(), Token: n.AdminToken()}
	rooms, _ := nodetest.Must(t, 200)(admin.Get("/v1/admin/rooms"))["rooms"].([]any)
	return rooms
}

// TestJoinFlood: 2,000 join attempts for random rooms, half through the
// client API with random via servers from ten users, half as invite
// notices from twenty sybil servers, leave no room behind: no room in
// memory, on disk, in the mesh or in the admin list, and no goroutine.
func TestJoinFlood(t *testing.T) {
	net := nodetest.NewNet(t)
	n := startNodeOn(t, net, t.TempDir(), "a.test", nil)
	var users []*nodetest.Client
	for i := range 10 {
		users = append(users, nodetest.Register(t, n, fmt.Sprintf("u%d", i), "phone"))
	}
	nodetest.Must(t, 200)(users[0].Get("/v1/whoami"))
	time.Sleep(time.Second)
	before := runtime.NumGoroutine()

	apiStatus := map[int]int{}
	for i := range 1000 {
		status, _ := users[i%len(users)].Post("/v1/rooms/"+randomRoomID(t).String()+"/join", nodetest.JSON{"via": []string{randomServerHex()}})
		apiStatus[status]++
	}
	if apiStatus[http.StatusAccepted] != 0 || apiStatus[http.StatusTooManyRequests] != 1000-len(users)*node.JoinUserBurst {
		t.Fatalf("API joins by status: %v; want none accepted, %d over the per-user limit", apiStatus, 1000-len(users)*node.JoinUserBurst)
	}

	notices := map[string]int{}
	var sybils []*sybil
	for range 20 {
		s := newSybil(t, net, n)
		sybils = append(sybils, s)
		for range 50 {
			notices[inviteOutcome(s.invite(n, randomRoomID(t)))]++
		}
	}
	nodetest.Eventually(t, 10*time.Second, "verifications done", func() string {
		if k := len(n.Joins().Slots()); k > 0 {
			return fmt.Sprintf("%d in flight", k)
		}
		return ""
	})
	for _, s := range sybils {
		s.close()
	}
	if notices[""] == 0 || notices["rate_limited"] == 0 {
		t.Fatalf("notices by answer: %v; want some taken and some rate-limited", notices)
	}
	if msg := roomsLeft(n); msg != "" {
		t.Fatalf("after the flood: %s", msg)
	}
	if rooms := adminRooms(t, n); len(rooms) != 0 {
		t.Fatalf("admin rooms list after the flood: %v", rooms)
	}
	http.DefaultClient.CloseIdleConnections()
	after := runtime.NumGoroutine()
	deadline := time.Now().Add(20 * time.Second)
	for after > before+10 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		http.DefaultClient.CloseIdleConnections()
		after = runtime.NumGoroutine()
	}
	if after > before+10 {
		t.Fatalf("goroutines %d before the flood, %d after", before, after)
	}
	t.Logf("join flood: API joins by status %v; notices by answer %v; rooms 0; goroutines %d before, %d after", apiStatus, notices, before, after)
}

// inviteOutcome names a SendInvite result: "" when taken, else the
// refusal's status or "error".
func inviteOutcome(err error) string {
	var ie *p2p.InviteError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ie):
		return ie.Status.String()
	}
	return "error"
}

// TestInviteAwaitingPurged: a sybil's rooms that verify (valid create
// events listing this server) are joined only up to the per-server bound,
// and, with no user of this server in them, left and purged when the grace
// period passes: no record, no event.
func TestInviteAwaitingPurged(t *testing.T) {
	net := nodetest.NewNet(t)
	n := startNodeOn(t, net, t.TempDir(), "a.test", func(c *node.Config) { c.Rooms.GraceMS = 4000 })
	s := newSybil(t, net, n)
	defer s.close()
	var rooms []dag.RoomID
	for i := range node.MaxAwaitingPerServer + 1 {
		room := s.fakeRoom(t, n, fmt.Sprint("fake", i))
		rooms = append(rooms, room)
		if err := s.invite(n, room); err != nil {
			t.Fatalf("notice %d: %v", i, err)
		}
		// One notice at a time (a second from the same server while one
		// is verified is answered busy).
		nodetest.Eventually(t, 5*time.Second, "notice handled", func() string {
			if len(n.Joins().Slots()) > 0 {
				return "in flight"
			}
			return ""
		})
		time.Sleep(100 * time.Millisecond)
	}
	listed := adminRooms(t, n)
	if len(listed) != node.MaxAwaitingPerServer {
		t.Fatalf("joined %d of the sybil's rooms, want %d (the per-server bound): %v", len(listed), node.MaxAwaitingPerServer, listed)
	}
	for _, r := range listed {
		if ar := r.(map[string]any); ar["how"] != feed.JoinedInvite || ar["awaiting"] != true || ar["via"].([]any)[0] != s.id.String() {
			t.Fatalf("admin list entry %v: want joined by invite via the sybil, awaiting", ar)
		}
	}
	nodetest.Eventually(t, 10*time.Second, "awaiting rooms purged", func() string { return roomsLeft(n) })
	for _, room := range rooms {
		if has, err := n.Store().Has(room.CreateID()); err != nil || has {
			t.Fatalf("create event of purged room %v still stored (%v)", room, err)
		}
	}
	if got := counter(t, n.Metrics().Registry, "rhizome_room_joins_total", map[string]string{"outcome": node.JoinPurged}); got != node.MaxAwaitingPerServer {
		t.Fatalf("purged joins counted: %v, want %d", got, node.MaxAwaitingPerServer)
	}
}

// TestJoinVerified: an API join fails clearly, and records nothing, when
// the via server does not list this server, is unknown or is this server;
// a room whose servers include this server is joined (by the invite notice)
// and kept once a local user takes part.
func TestJoinVerified(t *testing.T) {
	net := nodetest.NewNet(t)
	a := startNodeOn(t, net, t.TempDir(), "a.test", nil)
	b := startNodeOn(t, net, t.TempDir(), "b.test", func(c *node.Config) { c.Rooms.GraceMS = 1000 }, a.PeerAddrs()[0])
	alice := nodetest.Register(t, a, "alice", "phone")
	bob := nodetest.Register(t, b, "bob", "phone")
	private := nodetest.Str(nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group"}))["room"])
	nodetest.Eventually(t, 10*time.Second, "b connected to a", func() string {
		if len(b.Mesh().Host().Network().ConnsToPeer(a.Mesh().Host().ID())) == 0 {
			return "no connection"
		}
		return ""
	})
	cases := []struct {
		name   string
		room   string
		via    string
		status int
	}{
		// a answers servers of none of its rooms with a reset stream.
		{"via does not list this server", private, a.ServerID().String(), http.StatusBadGateway},
		{"via holds no such room", randomRoomID(t).String(), a.ServerID().String(), http.StatusBadGateway},
		{"via unknown", private, randomServerHex(), http.StatusBadGateway},
		{"via is this server", private, b.ServerID().String(), http.StatusBadRequest},
	}
	for _, c := range cases {
		status, body := bob.Post("/v1/rooms/"+c.room+"/join", nodetest.JSON{"via": []string{c.via}})
		if status != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, status, body, c.status)
		}
	}
	nodetest.Must(t, 400)(bob.Post("/v1/rooms/"+private+"/join", nodetest.JSON{}))
	if msg := roomsLeft(b); msg != "" {
		t.Fatalf("after failed joins: %s", msg)
	}

	// Alice creates a room with b among its servers and adds bob: b joins
	// by the invite notice and keeps the room past the grace period.
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group",
		"servers": []nodetest.JSON{{"server_id": b.ServerID().String(), "domain": "b.test"}}}))
	room, createID := nodetest.Str(created["room"]), nodetest.Str(created["event"])
	_, kp := bob.KeyPackage(false)
	_, _, body := addUserCommit(alice, t, a, room, createID, kp, "mimi://b.test/u/bob")
	nodetest.Must(t, 201)(alice.Post("/v1/rooms/"+room+"/commits", body))
	nodetest.Must(t, 202)(bob.Post("/v1/rooms/"+room+"/join", nodetest.JSON{"via": []string{a.ServerID().String()}}))
	nodetest.Eventually(t, 10*time.Second, "bob's room on b", func() string {
		if st, _ := b.Rooms().State(nodetest.RoomID(t, room)); st == nil || st.RoleOf("mimi://b.test/u/bob") == roomstate.RoleNone {
			return "bob not in the room on b"
		}
		return ""
	})
	time.Sleep(2 * time.Second) // past the grace period
	listed := adminRooms(t, b)
	if len(listed) != 1 {
		t.Fatalf("b's rooms after the grace period: %v", listed)
	}
	if ar := listed[0].(map[string]any); ar["room"] != room || ar["awaiting"] != false || len(ar["local_participants"].([]any)) != 1 {
		t.Fatalf("b's room: %v", ar)
	}
}

// TestAdminRoomsLeavePurge: leave forgets a room and keeps its events;
// purge deletes them; both need the admin token.
func TestAdminRoomsLeavePurge(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	alice := nodetest.Register(t, n, "alice", "phone")
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Old"}))
	room := nodetest.Str(created["room"])
	id := nodetest.RoomID(t, room)
	admin := &nodetest.Client{T: t, Base: "http://" + n.APIAddr(), Token: n.AdminToken()}

	nodetest.Must(t, 401)(alice.Post("/v1/admin/rooms/"+room+"/leave", nodetest.JSON{}))
	listed := adminRooms(t, n)
	if len(listed) != 1 {
		t.Fatalf("rooms: %v", listed)
	}
	if ar := listed[0].(map[string]any); ar["name"] != "Old" || ar["how"] != feed.JoinedCreated || ar["events"] != 1.0 || ar["local_participants"].([]any)[0] != "mimi://a.test/u/alice" {
		t.Fatalf("room entry: %v", ar)
	}
	nodetest.Must(t, 200)(admin.Post("/v1/admin/rooms/"+room+"/leave", nodetest.JSON{}))
	if msg := roomsLeft(n); msg != "" {
		t.Fatalf("after leave: %s", msg)
	}
	if has, _ := n.Store().Has(id.CreateID()); !has {
		t.Fatal("leave deleted the room's events")
	}
	nodetest.Must(t, 404)(alice.Get("/v1/rooms/" + room))
	nodetest.Must(t, 404)(admin.Post("/v1/admin/rooms/"+room+"/leave", nodetest.JSON{}))
	nodetest.Must(t, 200)(admin.Post("/v1/admin/rooms/"+room+"/purge", nodetest.JSON{}))
	if has, _ := n.Store().Has(id.CreateID()); has {
		t.Fatal("purge kept the room's events")
	}
	// After a restart the room stays gone.
	dir := n.Config().DataDir
	nodetest.Stop(t, n)
	n2 := startNodeWith(t, dir, "a.test", nil)
	if msg := roomsLeft(n2); msg != "" {
		t.Fatalf("after restart: %s", msg)
	}
}
