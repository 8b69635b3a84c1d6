package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// testSigKey returns a fresh Ed25519 public key in base64.
func testSigKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pub)
}

// startModeNode starts a loopback test node with the given registration
// mode.
func startModeNode(t *testing.T, mode string) *node.Node {
	t.Helper()
	return nodetest.Start(t, nodetest.Options{Config: func(c *node.Config) { c.API.Registration = mode }})
}

// TestNonsenseBodies sends bodies that are valid JSON but not a request,
// to every JSON endpoint: each is refused with 400 and nothing is created.
func TestNonsenseBodies(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	alice := nodetest.Register(t, n, "alice", "phone")
	anon := &nodetest.Client{T: t, Base: alice.Base}
	key := testSigKey(t)
	cases := []struct {
		name string
		c    *nodetest.Client
		path string
		body string
		msg  string
	}{
		{"register null", anon, "/v1/register", `null`, "not null"},
		{"register array", anon, "/v1/register", `[{"user":"bob"}]`, "not an array"},
		{"register string", anon, "/v1/register", `"bob"`, "not a string"},
		{"register number", anon, "/v1/register", `42`, "not a number"},
		{"register trailing", anon, "/v1/register", `{"user":"bob","device":"x","signature_key":"` + key + `"} x`, "trailing"},
		{"register no user", anon, "/v1/register", `{"device":"x","signature_key":"` + key + `"}`, "user is missing"},
		{"register no device", anon, "/v1/register", `{"user":"bob","signature_key":"` + key + `"}`, "device is missing"},
		{"register no key", anon, "/v1/register", `{"user":"bob","device":"x"}`, "signature_key is missing"},
		{"register short key", anon, "/v1/register", `{"user":"bob","device":"x","signature_key":"AQID"}`, "got 3 bytes"},
		{"register lookalike", anon, "/v1/register", `{"user":"alice.","device":"x","signature_key":"` + key + `"}`, "only between"},
		{"register unknown field", anon, "/v1/register", `{"user":"bob","device":"x","signature_key":"` + key + `","admin":true}`, "unknown field"},
		{"register wrong type", anon, "/v1/register", `{"user":1}`, "invalid JSON"},
		{"device null", alice, "/v1/devices", `null`, "not null"},
		{"device no name", alice, "/v1/devices", `{"signature_key":"` + key + `"}`, "device is missing"},
		{"device bad key", alice, "/v1/devices", `{"device":"tab","signature_key":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`, "small-order"},
		{"room null", alice, "/v1/rooms", `null`, "not null"},
		{"room array", alice, "/v1/rooms", `[]`, "not an array"},
		{"room unknown field", alice, "/v1/rooms", `{"nmae":"x"}`, "unknown field"},
		{"dm without peer", alice, "/v1/rooms", `{"preset":"direct-message"}`, "peer"},
		{"keypackages null", alice, "/v1/keypackages", `null`, "not null"},
		{"claim null", alice, "/v1/keypackages/claim", `null`, "not null"},
		{"cursor null", alice, "/v1/cursor", `null`, "not null"},
		{"cursor array", alice, "/v1/cursor", `[1]`, "not an array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.T = t
			status, body := tc.c.Call("POST", tc.path, "application/json", []byte(tc.body))
			if status != 400 || body["error"] != "bad_request" || !strings.Contains(nodetest.Str(body["message"]), tc.msg) {
				t.Fatalf("got %d %v, want 400 bad_request with %q", status, body, tc.msg)
			}
		})
	}
	if rooms := n.Rooms().List(); len(rooms) != 0 {
		t.Fatalf("nonsense bodies created rooms: %v", rooms)
	}
	for _, u := range []string{"bob", "alice."} {
		if exists, _ := n.Accounts().Exists(u); exists {
			t.Fatalf("nonsense bodies created user %q", u)
		}
	}
	if who := nodetest.Must(t, 200)(alice.Get("/v1/whoami")); who["cursor"] != 0.0 {
		t.Fatalf("nonsense cursor stored: %v", who)
	}
}

// TestDirectMessagePeerMustExist: a direct message to a local user that
// does not exist is refused with 404 and creates no room.
func TestDirectMessagePeerMustExist(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	alice := nodetest.Register(t, n, "alice", "phone")
	nodetest.Register(t, n, "bob", "phone")
	status, body := alice.Post("/v1/rooms", nodetest.JSON{"preset": "direct-message", "peer": "mimi://a.test/u/nobody"})
	if status != 404 || body["error"] != "not_found" || !strings.Contains(nodetest.Str(body["message"]), "nobody") {
		t.Fatalf("DM to a missing user: %d %v", status, body)
	}
	status, body = alice.Post("/v1/rooms", nodetest.JSON{"preset": "direct-message", "peer": "mimi://elsewhere.test/u/nobody"})
	if status != 404 || !strings.Contains(nodetest.Str(body["message"]), "elsewhere.test") {
		t.Fatalf("DM to an unknown server's user: %d %v", status, body)
	}
	if len(n.Rooms().List()) != 0 {
		t.Fatal("a refused DM created a room")
	}
	nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "direct-message", "peer": "mimi://a.test/u/bob"}))
}

// TestRegistrationModes: open registers anyone; token needs a single-use
// operator token (expired and revoked ones fail); closed refuses all.
func TestRegistrationModes(t *testing.T) {
	reg := func(n *node.Node, user, token string) (int, nodetest.JSON) {
		c := &nodetest.Client{T: t, Base: "http://" + n.APIAddr()}
		req := nodetest.JSON{"user": user, "device": "phone", "signature_key": testSigKey(t)}
		if token != "" {
			req["registration_token"] = token
		}
		return c.Post("/v1/register", req)
	}
	t.Run("open", func(t *testing.T) {
		n := startModeNode(t, "")
		if n.Accounts().RegMode() != node.RegistrationOpen {
			t.Fatalf("loopback default mode = %q, want open", n.Accounts().RegMode())
		}
		nodetest.Must(t, 201)(reg(n, "alice", ""))
	})
	t.Run("closed", func(t *testing.T) {
		n := startModeNode(t, node.RegistrationClosed)
		status, body := reg(n, "alice", "")
		if status != 403 || !strings.Contains(nodetest.Str(body["message"]), "closed") {
			t.Fatalf("closed: %d %v", status, body)
		}
		if exists, _ := n.Accounts().Exists("alice"); exists {
			t.Fatal("closed registration created a user")
		}
	})
	t.Run("token", func(t *testing.T) {
		n := startModeNode(t, node.RegistrationToken)
		status, body := reg(n, "alice", "")
		if status != 403 || !strings.Contains(nodetest.Str(body["message"]), "registration token") {
			t.Fatalf("no token: %d %v", status, body)
		}
		tok, _, err := n.Accounts().IssueRegToken(time.Time{}, "")
		if err != nil {
			t.Fatal(err)
		}
		// A bad name does not use the token up.
		nodetest.Must(t, 400)(reg(n, "alice.", tok))
		nodetest.Must(t, 201)(reg(n, "alice", tok))
		if status, body := reg(n, "bob", tok); status != 403 || !strings.Contains(nodetest.Str(body["message"]), "used") {
			t.Fatalf("second use: %d %v", status, body)
		}
		nodetest.Must(t, 403)(reg(n, "bob", "rhzreg_forged"))
		// An existing name does not use the token up either.
		tok2, _, _ := n.Accounts().IssueRegToken(time.Time{}, "")
		nodetest.Must(t, 409)(reg(n, "alice", tok2))
		nodetest.Must(t, 201)(reg(n, "bob", tok2))
		expired, _, _ := n.Accounts().IssueRegToken(time.Now().Add(-time.Second), "")
		nodetest.Must(t, 403)(reg(n, "carol", expired))
		revoked, rec, _ := n.Accounts().IssueRegToken(time.Time{}, "")
		if ok, err := n.Accounts().RevokeRegToken(rec.ID); !ok || err != nil {
			t.Fatalf("revoke: %v %v", ok, err)
		}
		nodetest.Must(t, 403)(reg(n, "carol", revoked))
		if toks, _ := n.Accounts().RegTokens(); len(toks) != 0 {
			t.Fatalf("tokens left: %+v", toks)
		}
	})
	t.Run("default beyond loopback", func(t *testing.T) {
		for addr, want := range map[string]string{"127.0.0.1:8600": "open", "[::1]:8600": "open", "localhost:8600": "open", "0.0.0.0:8600": "token", ":8600": "token", "192.0.2.1:8600": "token"} {
			if got := (node.APIConfig{Listen: addr}).RegistrationMode(); got != want {
				t.Errorf("%s: mode %s, want %s", addr, got, want)
			}
		}
	})
}

// TestDirectMessageRemotePeer: once the peer's home server knows a room
// listing this server, it answers for its users: an unknown remote peer is
// refused with 404, and nothing of the peer's KeyPackages is consumed.
func TestDirectMessageRemotePeer(t *testing.T) {
	net := nodetest.NewNet(t)
	a := nodetest.Start(t, nodetest.Options{Net: net})
	b := nodetest.Start(t, nodetest.Options{Net: net, Name: "b.test", Bootstrap: a.PeerAddrs()})
	alice := nodetest.Register(t, a, "alice", "phone")
	bob := nodetest.Register(t, b, "bob", "phone")
	_, kp := bob.KeyPackage(true)
	nodetest.Must(t, 200)(bob.Post("/v1/keypackages", nodetest.JSON{"key_packages": []string{base64.StdEncoding.EncodeToString(kp)}}))
	servers := []nodetest.JSON{{"server_id": b.ServerID().String(), "domain": "b.test"}}
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"name": "Across", "servers": servers}))
	room := nodetest.RoomID(t, nodetest.Str(created["room"]))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, joined := b.Rooms().State(room); joined {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b did not join the room")
		}
	}
	status, body := alice.Post("/v1/rooms", nodetest.JSON{"preset": "direct-message", "peer": "mimi://b.test/u/nobody", "servers": servers})
	if status != 404 || !strings.Contains(nodetest.Str(body["message"]), "userUnknown") {
		t.Fatalf("DM to an unknown remote user: %d %v", status, body)
	}
	if n := len(a.Rooms().List()); n != 1 {
		t.Fatalf("%d rooms on a, want 1", n)
	}
	nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "direct-message", "peer": "mimi://b.test/u/bob", "servers": servers}))
	if who := nodetest.Must(t, 200)(bob.Get("/v1/whoami")); who["last_resort"] != true {
		t.Fatalf("the existence check consumed bob's KeyPackage: %v", who)
	}
}

// TestRegTokenExpiryOnClock: a registration token expires by the node's
// clock, which the test kit moves: a token issued for a minute registers
// no one once the clock is two minutes on, while a fresh one still does.
func TestRegTokenExpiryOnClock(t *testing.T) {
	var clock nodetest.Clock
	n := nodetest.Start(t, nodetest.Options{Clock: clock.Now, Config: func(c *node.Config) { c.API.Registration = node.RegistrationToken }})
	admin := &nodetest.Client{T: t, Base: "http://" + n.APIAddr(), Token: n.AdminToken()}
	issue := func() string {
		t.Helper()
		return nodetest.Str(nodetest.Must(t, 201)(admin.Post("/v1/admin/tokens", nodetest.JSON{"expires_in_seconds": 60}))["token"])
	}
	anon := &nodetest.Client{T: t, Base: "http://" + n.APIAddr()}
	reg := func(user, token string) int {
		t.Helper()
		status, _ := anon.Post("/v1/register", nodetest.JSON{"user": user, "device": "phone", "signature_key": testSigKey(t), "registration_token": token})
		return status
	}
	old := issue()
	clock.Advance(2 * time.Minute)
	if status := reg("late", old); status != 403 {
		t.Fatalf("register with a token expired by the clock: %d, want 403", status)
	}
	if status := reg("early", issue()); status != 201 {
		t.Fatalf("register with a fresh token: %d, want 201", status)
	}
}
