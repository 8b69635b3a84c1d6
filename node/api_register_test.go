package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"
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
func startModeNode(t *testing.T, mode string) *Node {
	t.Helper()
	cfg := LoopbackConfig(t.TempDir(), "a.test")
	cfg.API.Registration = mode
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(t, n) })
	return n
}

// TestNonsenseBodies sends bodies that are valid JSON but not a request,
// to every JSON endpoint: each is refused with 400 and nothing is created.
func TestNonsenseBodies(t *testing.T) {
	n := startTestNode(t, t.TempDir(), "a.test")
	alice := register(t, n, "alice", "phone")
	anon := &apiClient{t: t, base: alice.base}
	key := testSigKey(t)
	cases := []struct {
		name string
		c    *apiClient
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
			tc.c.t = t
			status, body := tc.c.call("POST", tc.path, "application/json", []byte(tc.body))
			if status != 400 || body["error"] != "bad_request" || !strings.Contains(str(body["message"]), tc.msg) {
				t.Fatalf("got %d %v, want 400 bad_request with %q", status, body, tc.msg)
			}
		})
	}
	if rooms := n.rooms.list(); len(rooms) != 0 {
		t.Fatalf("nonsense bodies created rooms: %v", rooms)
	}
	for _, u := range []string{"bob", "alice."} {
		if exists, _ := n.accounts.Exists(u); exists {
			t.Fatalf("nonsense bodies created user %q", u)
		}
	}
	if who := must(t, 200)(alice.get("/v1/whoami")); who["cursor"] != 0.0 {
		t.Fatalf("nonsense cursor stored: %v", who)
	}
}

// TestDirectMessagePeerMustExist: a direct message to a local user that
// does not exist is refused with 404 and creates no room.
func TestDirectMessagePeerMustExist(t *testing.T) {
	n := startTestNode(t, t.TempDir(), "a.test")
	alice := register(t, n, "alice", "phone")
	register(t, n, "bob", "phone")
	status, body := alice.post("/v1/rooms", jsonObj{"preset": "direct-message", "peer": "mimi://a.test/u/nobody"})
	if status != 404 || body["error"] != "not_found" || !strings.Contains(str(body["message"]), "nobody") {
		t.Fatalf("DM to a missing user: %d %v", status, body)
	}
	status, body = alice.post("/v1/rooms", jsonObj{"preset": "direct-message", "peer": "mimi://elsewhere.test/u/nobody"})
	if status != 404 || !strings.Contains(str(body["message"]), "elsewhere.test") {
		t.Fatalf("DM to an unknown server's user: %d %v", status, body)
	}
	if len(n.rooms.list()) != 0 {
		t.Fatal("a refused DM created a room")
	}
	must(t, 201)(alice.post("/v1/rooms", jsonObj{"preset": "direct-message", "peer": "mimi://a.test/u/bob"}))
}

// TestRegistrationModes: open registers anyone; token needs a single-use
// operator token (expired and revoked ones fail); closed refuses all.
func TestRegistrationModes(t *testing.T) {
	reg := func(n *Node, user, token string) (int, jsonObj) {
		c := &apiClient{t: t, base: "http://" + n.APIAddr()}
		req := jsonObj{"user": user, "device": "phone", "signature_key": testSigKey(t)}
		if token != "" {
			req["registration_token"] = token
		}
		return c.post("/v1/register", req)
	}
	t.Run("open", func(t *testing.T) {
		n := startModeNode(t, "")
		if n.accounts.RegMode() != RegistrationOpen {
			t.Fatalf("loopback default mode = %q, want open", n.accounts.RegMode())
		}
		must(t, 201)(reg(n, "alice", ""))
	})
	t.Run("closed", func(t *testing.T) {
		n := startModeNode(t, RegistrationClosed)
		status, body := reg(n, "alice", "")
		if status != 403 || !strings.Contains(str(body["message"]), "closed") {
			t.Fatalf("closed: %d %v", status, body)
		}
		if exists, _ := n.accounts.Exists("alice"); exists {
			t.Fatal("closed registration created a user")
		}
	})
	t.Run("token", func(t *testing.T) {
		n := startModeNode(t, RegistrationToken)
		status, body := reg(n, "alice", "")
		if status != 403 || !strings.Contains(str(body["message"]), "registration token") {
			t.Fatalf("no token: %d %v", status, body)
		}
		tok, _, err := n.accounts.IssueRegToken(time.Time{}, "")
		if err != nil {
			t.Fatal(err)
		}
		// A bad name does not use the token up.
		must(t, 400)(reg(n, "alice.", tok))
		must(t, 201)(reg(n, "alice", tok))
		if status, body := reg(n, "bob", tok); status != 403 || !strings.Contains(str(body["message"]), "used") {
			t.Fatalf("second use: %d %v", status, body)
		}
		must(t, 403)(reg(n, "bob", "rhzreg_forged"))
		// An existing name does not use the token up either.
		tok2, _, _ := n.accounts.IssueRegToken(time.Time{}, "")
		must(t, 409)(reg(n, "alice", tok2))
		must(t, 201)(reg(n, "bob", tok2))
		expired, _, _ := n.accounts.IssueRegToken(time.Now().Add(-time.Second), "")
		must(t, 403)(reg(n, "carol", expired))
		revoked, rec, _ := n.accounts.IssueRegToken(time.Time{}, "")
		if ok, err := n.accounts.RevokeRegToken(rec.ID); !ok || err != nil {
			t.Fatalf("revoke: %v %v", ok, err)
		}
		must(t, 403)(reg(n, "carol", revoked))
		if toks, _ := n.accounts.RegTokens(); len(toks) != 0 {
			t.Fatalf("tokens left: %+v", toks)
		}
	})
	t.Run("default beyond loopback", func(t *testing.T) {
		for addr, want := range map[string]string{"127.0.0.1:8600": "open", "[::1]:8600": "open", "localhost:8600": "open", "0.0.0.0:8600": "token", ":8600": "token", "192.0.2.1:8600": "token"} {
			if got := (APIConfig{Listen: addr}).RegistrationMode(); got != want {
				t.Errorf("%s: mode %s, want %s", addr, got, want)
			}
		}
	})
}

// TestDirectMessageRemotePeer: once the peer's home server knows a room
// listing this server, it answers for its users: an unknown remote peer is
// refused with 404, and nothing of the peer's KeyPackages is consumed.
func TestDirectMessageRemotePeer(t *testing.T) {
	a := startTestNode(t, t.TempDir(), "a.test")
	b := startTestNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	alice := register(t, a, "alice", "phone")
	bob := register(t, b, "bob", "phone")
	_, kp := bob.keyPackage(b, true)
	must(t, 200)(bob.post("/v1/keypackages", jsonObj{"key_packages": []string{base64.StdEncoding.EncodeToString(kp)}}))
	servers := []jsonObj{{"server_id": b.ServerID().String(), "domain": "b.test"}}
	created := must(t, 201)(alice.post("/v1/rooms", jsonObj{"name": "Across", "servers": servers}))
	room := mustRoomID(t, str(created["room"]))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, joined := b.rooms.state(room); joined {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b did not join the room")
		}
	}
	status, body := alice.post("/v1/rooms", jsonObj{"preset": "direct-message", "peer": "mimi://b.test/u/nobody", "servers": servers})
	if status != 404 || !strings.Contains(str(body["message"]), "userUnknown") {
		t.Fatalf("DM to an unknown remote user: %d %v", status, body)
	}
	if n := len(a.rooms.list()); n != 1 {
		t.Fatalf("%d rooms on a, want 1", n)
	}
	must(t, 201)(alice.post("/v1/rooms", jsonObj{"preset": "direct-message", "peer": "mimi://b.test/u/bob", "servers": servers}))
	if who := must(t, 200)(bob.get("/v1/whoami")); who["last_resort"] != true {
		t.Fatalf("the existence check consumed bob's KeyPackage: %v", who)
	}
}
