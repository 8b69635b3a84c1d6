package node_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/httpapi"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

func TestRegisterAndAuthErrors(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	alice := nodetest.Register(t, n, "alice", "phone")
	who := nodetest.Must(t, 200)(alice.Get("/v1/whoami"))
	if who["user_uri"] != "mimi://a.test/u/alice" || who["device_uri"] != "mimi://a.test/d/alice/phone" {
		t.Fatalf("whoami = %v", who)
	}
	anon := &nodetest.Client{T: t, Base: alice.Base}
	key := testSigKey(t)
	cases := []struct {
		name    string
		c       *nodetest.Client
		method  string
		path    string
		ctype   string
		body    string
		status  int
		code    string
		message string // a substring of the message
	}{
		{"no token", anon, "GET", "/v1/whoami", "", "", 401, "unauthorized", "missing Authorization"},
		{"unknown token", &nodetest.Client{T: t, Base: alice.Base, Token: "rhz_nope"}, "GET", "/v1/whoami", "", "", 401, "unauthorized", "unknown bearer token"},
		{"malformed token", &nodetest.Client{T: t, Base: alice.Base, Token: "abc"}, "GET", "/v1/whoami", "", "", 401, "unauthorized", "malformed bearer token"},
		{"duplicate user", anon, "POST", "/v1/register", "application/json", `{"user":"alice","device":"x","signature_key":"` + key + `"}`, 409, "conflict", "already exists"},
		{"bad user name", anon, "POST", "/v1/register", "application/json", `{"user":"Alice!","device":"x","signature_key":"` + key + `"}`, 400, "bad_request", "is not valid"},
		{"missing key", anon, "POST", "/v1/register", "application/json", `{"user":"bob","device":"x"}`, 400, "bad_request", "signature_key"},
		{"unknown field", anon, "POST", "/v1/register", "application/json", `{"user":"bob","nick":"b"}`, 400, "bad_request", "unknown field"},
		{"not JSON", anon, "POST", "/v1/register", "application/json", `{"user":`, 400, "bad_request", "invalid JSON"},
		{"trailing JSON", anon, "POST", "/v1/register", "application/json", `{} {}`, 400, "bad_request", "trailing data"},
		{"empty body", anon, "POST", "/v1/register", "application/json", ``, 400, "bad_request", "empty request body"},
		{"wrong content type", anon, "POST", "/v1/register", "text/plain", `{}`, 415, "unsupported_media_type", "application/json"},
		{"too large", anon, "POST", "/v1/register", "application/json", `{"user":"` + strings.Repeat("a", httpapi.MaxJSONBody) + `"}`, 413, "too_large", "exceeds"},
		{"unknown endpoint", anon, "GET", "/v1/nothing", "", "", 404, "not_found", "docs/api.md"},
		{"bad room ID", alice, "GET", "/v1/rooms/!xyz", "", "", 400, "bad_request", "not a room ID"},
		{"unknown room", alice, "GET", "/v1/rooms/!QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "", "", 404, "not_found", "not known"},
		{"message not binary", alice, "POST", "/v1/rooms/!QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG/messages", "application/json", `{}`, 404, "not_found", "not known"},
		{"bad since", alice, "GET", "/v1/stream?since=-1", "", "", 400, "bad_request", "not a cursor"},
		{"cursor beyond feed", alice, "POST", "/v1/cursor", "application/json", `{"cursor": 99}`, 400, "bad_request", "beyond"},
		{"claim bad user", alice, "POST", "/v1/keypackages/claim", "application/json", `{"user":"bob"}`, 400, "bad_request", "MIMI user URI"},
		{"claim unknown domain", alice, "POST", "/v1/keypackages/claim", "application/json", `{"user":"mimi://elsewhere.test/u/bob"}`, 404, "not_found", "no known server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.T = t
			status, body := tc.c.Call(tc.method, tc.path, tc.ctype, []byte(tc.body))
			if status != tc.status || body["error"] != tc.code || !strings.Contains(nodetest.Str(body["message"]), tc.message) {
				t.Fatalf("got %d %v, want %d %s containing %q", status, body, tc.status, tc.code, tc.message)
			}
		})
	}
	// A second device gets its own token; both work.
	pubKey := testSigKey(t)
	laptop := nodetest.Must(t, 201)(alice.Post("/v1/devices", nodetest.JSON{"device": "laptop", "signature_key": pubKey}))
	if laptop["token"] == alice.Token || laptop["device_uri"] != "mimi://a.test/d/alice/laptop" {
		t.Fatalf("add device = %v", laptop)
	}
	l := &nodetest.Client{T: t, Base: alice.Base, Token: nodetest.Str(laptop["token"])}
	if who := nodetest.Must(t, 200)(l.Get("/v1/whoami")); who["device"] != "laptop" {
		t.Fatalf("laptop whoami = %v", who)
	}
	// Tokens are stored only as hashes.
	if bytes.Contains(dumpLocal(t, n), []byte(alice.Token)) {
		t.Fatal("a bearer token is stored in clear")
	}
}

// dumpLocal returns every key and value of the node-local database.
func dumpLocal(t *testing.T, n *node.Node) []byte {
	t.Helper()
	var all []byte
	txn := n.DB().Badger().NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badgerIteratorOptions())
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, it.Item().Key()...), v...)
	}
	return all
}

func TestKeyPackagesHandedOutOnceThenLastResort(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	alice := nodetest.Register(t, n, "alice", "phone")
	bob := nodetest.Register(t, n, "bob", "phone")
	_, kp1 := bob.KeyPackage(false)
	_, kp2 := bob.KeyPackage(false)
	_, last := bob.KeyPackage(true)
	enc := base64.StdEncoding.EncodeToString
	up := nodetest.Must(t, 200)(bob.Post("/v1/keypackages", nodetest.JSON{"key_packages": []string{enc(kp1), enc(kp2), enc(last)}}))
	if up["stored"] != 2.0 || up["last_resort"] != true {
		t.Fatalf("upload = %v", up)
	}
	// Invalid uploads are refused, each with its reason; nothing is stored.
	_, aliceKP := alice.KeyPackage(false)
	bad := []struct {
		name string
		kps  []string
		msg  string
	}{
		{"garbage", []string{enc([]byte("not mls"))}, "not an MLSMessage"},
		{"someone else's", []string{enc(kp1), enc(aliceKP)}, "credential identity"},
		{"not base64", []string{"%%%"}, "base64"},
		{"empty list", nil, "empty"},
	}
	for _, b := range bad {
		status, body := bob.Post("/v1/keypackages", nodetest.JSON{"key_packages": b.kps})
		if status != 400 || !strings.Contains(nodetest.Str(body["message"]), b.msg) {
			t.Errorf("%s: %d %v, want 400 with %q", b.name, status, body, b.msg)
		}
	}
	if who := nodetest.Must(t, 200)(bob.Get("/v1/whoami")); who["key_packages"] != 2.0 {
		t.Fatalf("after refused uploads: %v", who)
	}
	claim := func() string {
		body := nodetest.Must(t, 200)(alice.Post("/v1/keypackages/claim", nodetest.JSON{"user": "mimi://a.test/u/bob"}))
		clients := body["clients"].([]any)
		if body["status"] != "success" || len(clients) != 1 {
			t.Fatalf("claim = %v", body)
		}
		c := clients[0].(map[string]any)
		if c["client"] != "mimi://a.test/d/bob/phone" || c["status"] != "success" {
			t.Fatalf("claim client = %v", c)
		}
		return nodetest.Str(c["key_package"])
	}
	// Alice shares no room with bob: his last-resort KeyPackage only,
	// until he allows her.
	if claim() != enc(last) {
		t.Fatal("a claim without consent got a one-time KeyPackage")
	}
	nodetest.Must(t, 200)(bob.Post("/v1/consent", nodetest.JSON{"user": "mimi://a.test/u/alice"}))
	got := []string{claim(), claim(), claim(), claim()}
	if got[0] == got[1] || (got[0] != enc(kp1) && got[0] != enc(kp2)) || (got[1] != enc(kp1) && got[1] != enc(kp2)) {
		t.Fatal("the two one-time KeyPackages were not each handed out once")
	}
	if got[2] != enc(last) || got[3] != enc(last) {
		t.Fatal("after the one-time KeyPackages, the last-resort one is not handed out")
	}
	if who := nodetest.Must(t, 200)(bob.Get("/v1/whoami")); who["key_packages"] != 0.0 || who["last_resort"] != true {
		t.Fatalf("after claims: %v", who)
	}
	unknown := nodetest.Must(t, 200)(alice.Post("/v1/keypackages/claim", nodetest.JSON{"user": "mimi://a.test/u/nobody"}))
	if unknown["status"] != "userUnknown" {
		t.Fatalf("unknown user claim = %v", unknown)
	}
}

func TestRoomCreateSubmitStreamResume(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	alice := nodetest.Register(t, n, "alice", "phone")
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Club"}))
	room, createID := nodetest.Str(created["room"]), nodetest.Str(created["event"])
	if !hasPrefix(room, "!Qm") || createID != room[1:] {
		t.Fatalf("create = %v", created)
	}
	list := nodetest.Must(t, 200)(alice.Get("/v1/rooms"))
	if rs := list["rooms"].([]any); len(rs) != 1 || rs[0].(map[string]any)["name"] != "Club" {
		t.Fatalf("rooms = %v", list)
	}
	members := nodetest.Must(t, 200)(alice.Get("/v1/rooms/" + room + "/members"))
	if ms := members["members"].([]any); len(ms) != 1 || ms[0].(map[string]any)["user"] != "mimi://a.test/u/alice" || ms[0].(map[string]any)["role_name"] != "admin" {
		t.Fatalf("members = %v", members)
	}

	s := alice.OpenStream("?since=0")
	if e := s.Next(t, 5*time.Second); e.Kind != "create" || e.Event != createID {
		t.Fatalf("first event = %+v", e)
	} else if c, err := roomevent.DecodeCreate(nodetest.LineEvent(t, e).Content); err != nil || c.Preset != "private-group" {
		t.Fatalf("create content = %+v, %v", c, err)
	}
	g := alice.Group(room)
	m1 := alice.SendMessage(g, room, createID, "hello")
	e1 := s.Next(t, 5*time.Second)
	if e1.Kind != "message" || e1.Event != nodetest.Str(m1["event"]) || e1.Cursor != uint64(m1["cursor"].(float64)) {
		t.Fatalf("message event = %+v, submit = %v", e1, m1)
	}
	if c, err := roomevent.DecodeMessage(nodetest.LineEvent(t, e1).Content); err != nil || c.Epoch.String() != createID {
		t.Fatalf("message content = %+v, %v", c, err)
	}
	m2 := alice.SendMessage(g, room, createID, "again")

	// Resume after the first message from a new connection.
	s2 := alice.OpenStream("?since=" + itoa(e1.Cursor))
	if e := s2.Next(t, 5*time.Second); e.Event != nodetest.Str(m2["event"]) {
		t.Fatalf("resumed stream starts with %+v, want %v", e, m2["event"])
	}
	// Without ?since= the stream starts after the stored cursor.
	nodetest.Must(t, 200)(alice.Post("/v1/cursor", nodetest.JSON{"cursor": e1.Cursor}))
	s3 := alice.OpenStream("")
	if e := s3.Next(t, 5*time.Second); e.Event != nodetest.Str(m2["event"]) {
		t.Fatalf("cursor stream starts with %+v", e)
	}

	// Refusals: bad epoch, not MLS, wrong wire format, not a participant.
	status, body := alice.Call("POST", "/v1/rooms/"+room+"/messages?epoch="+nodetest.Str(m1["event"]), "application/octet-stream", []byte{0, 1, 0, 2})
	if status != 400 || body["error"] != "rejected" {
		t.Fatalf("bad MLS: %d %v", status, body)
	}
	msg, _ := g.Send(randReader(), nil, []byte("x"))
	raw, _ := msg.Marshal()
	if status, body := alice.Call("POST", "/v1/rooms/"+room+"/messages?epoch="+nodetest.Str(m1["event"]), "application/octet-stream", raw); status != 400 || !strings.Contains(nodetest.Str(body["message"]), "unknown-epoch") {
		t.Fatalf("epoch is a message: %d %v", status, body)
	}
	if status, body := alice.Call("POST", "/v1/rooms/"+room+"/messages", "application/octet-stream", raw); status != 400 || !strings.Contains(nodetest.Str(body["message"]), "epoch") {
		t.Fatalf("no epoch: %d %v", status, body)
	}
	if status, body := alice.Call("POST", "/v1/rooms/"+room+"/messages?epoch="+createID, "text/plain", raw); status != 415 {
		t.Fatalf("text body: %d %v", status, body)
	}
	eve := nodetest.Register(t, n, "eve", "phone")
	if status, body := eve.Call("POST", "/v1/rooms/"+room+"/messages?epoch="+createID, "application/octet-stream", raw); status != 403 || body["error"] != "forbidden" {
		t.Fatalf("non-participant: %d %v", status, body)
	}
	if status, _ := eve.Get("/v1/rooms/" + room); status != 403 {
		t.Fatalf("non-participant reads room: %d", status)
	}
	if rs := nodetest.Must(t, 200)(eve.Get("/v1/rooms"))["rooms"].([]any); len(rs) != 0 {
		t.Fatalf("eve lists %v", rs)
	}
}
