package cmd

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// startClientTestNode starts a real node (badger in a temp dir, libp2p and
// the API on loopback) for the client command tests.
func startClientTestNode(t *testing.T, name string, bootstrap ...string) *node.Node {
	t.Helper()
	return nodetest.Start(t, nodetest.Options{Name: name, Bootstrap: bootstrap})
}

// runJSON runs a client command that must succeed and decodes its JSON.
func runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, out, errs := run(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("rhizome %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("rhizome %s: output is not JSON: %q", strings.Join(args, " "), out)
	}
}

// TestClientCommands drives the client commands in-process against real
// nodes: register, create a room, invite across servers, send, tail with
// replies, members, rooms, leave, and the errors a person meets.
func TestClientCommands(t *testing.T) {
	a := startClientTestNode(t, "a.test")
	b := startClientTestNode(t, "b.test", a.PeerAddrs()[0])
	urlA, urlB := "http://"+a.APIAddr(), "http://"+b.APIAddr()
	tmp := t.TempDir()
	aliceDir, bobDir, carolDir := filepath.Join(tmp, "alice"), filepath.Join(tmp, "bob"), filepath.Join(tmp, "carol")

	var reg map[string]string
	runJSON(t, &reg, "register", "--server", urlA, "--user", "alice", "--device", "phone", "--dir", aliceDir)
	if reg["user_uri"] != "mimi://a.test/u/alice" || reg["device_uri"] != "mimi://a.test/d/alice/phone" || reg["dir"] != aliceDir {
		t.Fatalf("register = %v", reg)
	}
	runJSON(t, &reg, "register", "--server", urlA, "--user", "bob", "--device", "laptop", "--dir", bobDir)
	runJSON(t, &reg, "register", "--server", urlB, "--user", "carol", "--device", "phone", "--dir", carolDir)

	var room struct {
		Room    string `json:"room"`
		Name    string `json:"name"`
		Joined  bool   `json:"joined"`
		Members int    `json:"members"`
	}
	// Flags may follow the positional arguments.
	runJSON(t, &room, "room", "create", "Club", "--dir", aliceDir)
	if !strings.HasPrefix(room.Room, "!Qm") || room.Name != "Club" || !room.Joined || room.Members != 1 {
		t.Fatalf("room create = %+v", room)
	}
	var inv map[string]string
	runJSON(t, &inv, "invite", "--dir", aliceDir, room.Room, "bob")
	if !strings.HasPrefix(inv["commit"], "Qm") {
		t.Fatalf("invite = %v", inv)
	}
	runJSON(t, &inv, "invite", "--dir", aliceDir, "--via", urlB, room.Room, "mimi://b.test/u/carol")

	// Bob's and carol's commands process their Welcomes first.
	var rooms struct {
		Rooms []struct {
			Room   string `json:"room"`
			Joined bool   `json:"joined"`
		} `json:"rooms"`
	}
	for _, dir := range []string{bobDir, carolDir} {
		deadline := time.Now().Add(60 * time.Second) // under load the first pull can miss; the heads round (30 s) repairs
		for {
			runJSON(t, &rooms, "rooms", "--dir", dir)
			if len(rooms.Rooms) == 1 && rooms.Rooms[0].Room == room.Room && rooms.Rooms[0].Joined {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: rooms = %+v", dir, rooms)
			}
		}
	}
	var sent struct {
		ID    string `json:"id"`
		Event string `json:"event"`
	}
	runJSON(t, &sent, "send", "--dir", carolDir, room.Room, "hello from b")
	if len(sent.ID) != 64 || !strings.HasPrefix(sent.ID, "01") {
		t.Fatalf("send = %+v", sent)
	}
	var line tailLine
	runJSON(t, &line, "tail", "--dir", aliceDir, "--count", "1", room.Room)
	if line.ID != sent.ID || line.Text != "hello from b" || line.Sender != "mimi://b.test/u/carol" || line.Kind != "new" {
		t.Fatalf("alice's tail = %+v", line)
	}
	var reply struct {
		ID string `json:"id"`
	}
	runJSON(t, &reply, "send", "--dir", bobDir, "--reply-to", sent.ID, room.Room, "hi carol")
	// Carol's tail shows the reply (after bob's own view of her message).
	runJSON(t, &line, "tail", "--dir", carolDir, "--count", "1", room.Room)
	if line.ID == sent.ID { // her own message comes first
		runJSON(t, &line, "tail", "--dir", carolDir, "--count", "1", room.Room)
	}
	if line.ID != reply.ID || line.Kind != "reply" || line.InReplyTo != sent.ID || line.Sender != "mimi://a.test/u/bob" {
		t.Fatalf("carol's tail = %+v", line)
	}
	// Readable output.
	code, out, errs := run(t, "tail", "--dir", aliceDir, "--count", "1", room.Room)
	if code != 0 || !strings.Contains(out, "mimi://a.test/u/bob ↪ "+sent.ID[:10]) || !strings.Contains(out, "hi carol") {
		t.Fatalf("readable tail: %d %q %s", code, out, errs)
	}
	var members struct {
		Members []struct {
			User    string   `json:"user"`
			Role    string   `json:"role"`
			Devices []string `json:"devices"`
		} `json:"members"`
	}
	runJSON(t, &members, "members", "--dir", carolDir, room.Room)
	if len(members.Members) != 3 {
		t.Fatalf("members = %+v", members)
	}
	code, out, _ = run(t, "members", "--dir", aliceDir, room.Room)
	if code != 0 || !strings.Contains(out, "mimi://b.test/u/carol") || !strings.Contains(out, "admin") {
		t.Fatalf("readable members: %q", out)
	}
	code, out, _ = run(t, "rooms", "--dir", aliceDir)
	if code != 0 || !strings.Contains(out, "Club") || !strings.Contains(out, room.Room) {
		t.Fatalf("readable rooms: %q", out)
	}
	var left map[string]any
	runJSON(t, &left, "leave", "--dir", bobDir, room.Room)
	if left["left"] != true {
		t.Fatalf("leave = %v", left)
	}

	// Errors name the fix; none is a crash.
	errCases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not registered", []string{"send", "--dir", filepath.Join(tmp, "nobody"), room.Room, "x"}, 1, "rhizome register --server"},
		{"missing args", []string{"invite", "--dir", aliceDir, room.Room}, 2, "expected ROOM USER"},
		{"bad room", []string{"send", "--dir", aliceDir, "garbage", "x"}, 1, "a room ID looks like"},
		{"register without flags", []string{"register", "--dir", filepath.Join(tmp, "x")}, 2, "--server, --user and --device are required"},
		{"remote user without --via", []string{"invite", "--dir", aliceDir, room.Room, "mimi://c.test/u/dan"}, 1, "--via"},
		{"left room", []string{"send", "--dir", bobDir, room.Room, "x"}, 1, "no longer a member"},
		{"delete with text", []string{"send", "--dir", aliceDir, "--delete", sent.ID, room.Room, "x"}, 2, "--delete takes no TEXT"},
		{"unknown server", []string{"register", "--server", "http://127.0.0.1:1", "--user", "z", "--device", "d", "--dir", filepath.Join(tmp, "z")}, 1, "is the node running"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) || strings.Contains(errs, "goroutine") {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tc.code, out, errs, tc.want)
			}
		})
	}
	// Help teaches with examples.
	for _, c := range []string{"register", "send", "tail", "invite", "members", "rooms", "leave"} {
		code, out, _ := run(t, c, "--help")
		if code != 0 || !strings.Contains(out, "Example") {
			t.Errorf("%s --help: %d %q", c, code, out)
		}
	}
}
