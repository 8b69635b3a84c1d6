package clientapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// roundTrip checks that v encodes to exactly want and that want decodes
// back to v.
func roundTrip[T any](t *testing.T, name string, v T, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: marshal: %v", name, err)
	}
	if string(got) != want {
		t.Errorf("%s encodes to\n  %s\nwant\n  %s", name, got, want)
	}
	var back T
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatalf("%s: unmarshal: %v", name, err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("%s decodes to %+v, want %+v", name, back, v)
	}
}

func u64(v uint64) *uint64 { return &v }
func i64(v int64) *int64   { return &v }

// TestBytesAreBase64: every byte field is standard base64 in JSON, and
// optional byte fields are left out when empty.
func TestBytesAreBase64(t *testing.T) {
	key := []byte{0xab, 0xcd, 0xef, 0x01}
	roundTrip(t, "register", RegisterRequest{User: "alice", Device: "phone", SignatureKey: key},
		`{"user":"alice","device":"phone","signature_key":"q83vAQ=="}`)
	roundTrip(t, "register with token", RegisterRequest{User: "bob", Device: "phone", SignatureKey: key, RegistrationToken: "rhzreg_x"},
		`{"user":"bob","device":"phone","signature_key":"q83vAQ==","registration_token":"rhzreg_x"}`)
	roundTrip(t, "device", DeviceRequest{Device: "laptop", SignatureKey: key},
		`{"device":"laptop","signature_key":"q83vAQ=="}`)
	roundTrip(t, "device with user", DeviceRequest{User: "alice", Device: "laptop", SignatureKey: key},
		`{"user":"alice","device":"laptop","signature_key":"q83vAQ=="}`)
	roundTrip(t, "upload", KeyPackageUpload{KeyPackages: [][]byte{{0, 1}, {0xff}}},
		`{"key_packages":["AAE=","/w=="]}`)
	roundTrip(t, "claimed", Claimed{User: "mimi://b/u/bob", Status: "success", Clients: []ClaimedClient{
		{Client: "mimi://b/d/bob/phone", Status: "success", KeyPackage: []byte{1, 2, 3}},
		{Client: "mimi://b/d/bob/tab", Status: "keyMaterialExhausted"},
	}}, `{"user":"mimi://b/u/bob","status":"success","clients":[`+
		`{"client":"mimi://b/d/bob/phone","status":"success","key_package":"AQID"},`+
		`{"client":"mimi://b/d/bob/tab","status":"keyMaterialExhausted"}]}`)
	roundTrip(t, "commit", CommitRequest{Parent: "QmP", Commit: []byte{1}, Changes: []Change{{Component: 34, Update: []byte{2, 3}}}},
		`{"parent":"QmP","commit":"AQ==","changes":[{"component":34,"update":"AgM="}]}`)
	roundTrip(t, "first commit", CommitRequest{Parent: "QmP", Commit: []byte{1}, Changes: []Change{}, Welcome: []byte{4}, GroupInfo: []byte{5}},
		`{"parent":"QmP","commit":"AQ==","changes":[],"welcome":"BA==","group_info":"BQ=="}`)
	roundTrip(t, "state", StateRequest{Changes: []Change{{Component: 0xF001, Update: []byte{9}}}, Signature: []byte{7, 7}},
		`{"changes":[{"component":61441,"update":"CQ=="}],"signature":"Bwc="}`)

	// A field that is not base64 is refused, not read as text.
	var c CommitRequest
	if err := json.Unmarshal([]byte(`{"parent":"QmP","commit":"%%%"}`), &c); err == nil {
		t.Errorf("commit %q decoded to %v", "%%%", c.Commit)
	}
}

// TestOptionalFields: optional request fields are left out when unset, and
// an absent pointer field decodes to nil, unlike an explicit zero.
func TestOptionalFields(t *testing.T) {
	roundTrip(t, "claim", ClaimRequest{User: "mimi://b/u/bob"}, `{"user":"mimi://b/u/bob"}`)
	roundTrip(t, "claim in room", ClaimRequest{User: "mimi://b/u/bob", Room: "!QmR", CipherSuites: []uint16{1, 3}},
		`{"user":"mimi://b/u/bob","room":"!QmR","cipher_suites":[1,3]}`)
	roundTrip(t, "create default", CreateRoomRequest{}, `{}`)
	roundTrip(t, "create", CreateRoomRequest{Preset: "direct-message", Peer: "mimi://b/u/bob", Servers: []Server{{ServerID: "8be1", Domain: "b"}}},
		`{"preset":"direct-message","peer":"mimi://b/u/bob","servers":[{"server_id":"8be1","domain":"b"}]}`)

	roundTrip(t, "cursor 0", CursorRequest{Cursor: u64(0)}, `{"cursor":0}`)
	var cur CursorRequest
	if err := json.Unmarshal([]byte(`{}`), &cur); err != nil || cur.Cursor != nil {
		t.Errorf("a missing cursor decodes to %v, %v; want nil", cur.Cursor, err)
	}

	roundTrip(t, "issue default", IssueTokenRequest{}, `{}`)
	roundTrip(t, "issue never", IssueTokenRequest{ExpiresInSeconds: i64(0), Note: "for bob"}, `{"expires_in_seconds":0,"note":"for bob"}`)
	// The issued token is flat (its record embedded); expires 0 (never)
	// is written, an empty note is not.
	roundTrip(t, "issued", IssuedToken{Token: "rhzreg_x", RegistrationToken: RegistrationToken{ID: "3f9a", Created: 5}},
		`{"token":"rhzreg_x","id":"3f9a","created":5,"expires":0}`)
	roundTrip(t, "listed", TokenList{Registration: "token", Tokens: []RegistrationToken{{ID: "3f9a", Created: 5, Expires: 9, Note: "n"}}},
		`{"registration":"token","tokens":[{"id":"3f9a","created":5,"expires":9,"note":"n"}]}`)
}

// TestStreamLines: the three kinds of line, each with its own fields only.
// An event line carries the raw event and no content; an order line always
// has undone and applied, and retain_until_ms only when set.
func TestStreamLines(t *testing.T) {
	roundTrip(t, "event", StreamLine{Type: LineEvent, Cursor: 2, Room: "!QmR", Event: "QmE", Kind: "commit", Origin: "3f9a", TS: 1763900000000, Raw: []byte{1, 2, 3, 4}},
		`{"type":"event","cursor":2,"room":"!QmR","event":"QmE","kind":"commit","origin":"3f9a","ts":1763900000000,"raw":"AQIDBA=="}`)
	roundTrip(t, "order", StreamLine{Type: LineOrder, Cursor: 7, Room: "!QmR", Tip: "QmB", Certified: "QmB", Undone: []string{}, Applied: []string{"QmB"}},
		`{"type":"order","cursor":7,"room":"!QmR","tip":"QmB","certified":"QmB","undone":[],"applied":["QmB"]}`)
	roundTrip(t, "reorg", StreamLine{Type: LineOrder, Cursor: 41, Room: "!QmR", Tip: "QmM", Certified: "QmM", Undone: []string{"QmN"}, Applied: []string{"QmM"}, RetainUntilMS: 1763900030000},
		`{"type":"order","cursor":41,"room":"!QmR","tip":"QmM","certified":"QmM","undone":["QmN"],"applied":["QmM"],"retain_until_ms":1763900030000}`)
	roundTrip(t, "certified only", StreamLine{Type: LineOrder, Cursor: 8, Room: "!QmR", Tip: "QmB", Certified: "QmB", Undone: []string{}, Applied: []string{}},
		`{"type":"order","cursor":8,"room":"!QmR","tip":"QmB","certified":"QmB","undone":[],"applied":[]}`)
	roundTrip(t, "heartbeat", StreamLine{Type: LineHeartbeat, Cursor: 3}, `{"type":"heartbeat","cursor":3}`)

	// A line of an older node, with the content fields it used to repeat,
	// still decodes (unknown fields are ignored by the client).
	var l StreamLine
	old := `{"type":"event","cursor":3,"room":"!QmR","event":"QmM","kind":"message","epoch":"QmC","mls":"AQ==","raw":"Ag=="}`
	if err := json.Unmarshal([]byte(old), &l); err != nil || l.Kind != "message" || string(l.Raw) != "\x02" {
		t.Errorf("old line decodes to %+v, %v", l, err)
	}
}

// documented is docs/api.md's error table, one row per code.
var documented = []string{
	"bad_request", "bad_key_package", "rejected", "unauthorized", "forbidden", "not_found", "conflict",
	"stale_parent", "stale_epoch", "too_large", "unsupported_media_type", "rate_limited", "unavailable", "internal",
}

// TestErrorCodes: the declared codes are exactly the documented ones.
func TestErrorCodes(t *testing.T) {
	var got []string
	for _, c := range Codes() {
		got = append(got, string(c))
		if !c.Known() {
			t.Errorf("%q is declared but not Known", c)
		}
	}
	if !slices.Equal(got, documented) {
		t.Errorf("declared codes %v, documented %v", got, documented)
	}
	for _, c := range []ErrorCode{"", "http", "key_packages_exhausted", "Bad_Request"} {
		if c.Known() {
			t.Errorf("%q is Known", c)
		}
	}
	roundTrip(t, "error body", ErrorBody{Code: CodeStaleParent, Message: "build on QmC2"}, `{"error":"stale_parent","message":"build on QmC2"}`)
}

type codedErr struct{ code ErrorCode }

func (e *codedErr) Error() string      { return "coded " + string(e.code) }
func (e *codedErr) APICode() ErrorCode { return e.code }

// TestHasCode: a code is found through wrapping; other errors have none.
func TestHasCode(t *testing.T) {
	err := fmt.Errorf("commit: %w", &codedErr{CodeStaleParent})
	if !HasCode(err, CodeStaleParent) || HasCode(err, CodeStaleEpoch) || CodeOf(err) != CodeStaleParent {
		t.Errorf("HasCode/CodeOf on %v", err)
	}
	plain := errors.New("stale_parent")
	if HasCode(plain, CodeStaleParent) || CodeOf(plain) != "" || CodeOf(nil) != "" {
		t.Error("an error without a code has one")
	}
	if HasCode(&codedErr{""}, "") {
		t.Error(`HasCode matches the empty code`)
	}
}
