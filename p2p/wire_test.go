package p2p

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

func testID(s string) dag.EventID {
	sum := sha256.Sum256([]byte(s))
	var id dag.EventID
	id[0], id[1] = 0x12, 0x20
	copy(id[2:], sum[:])
	return id
}

func sortedIDs(names ...string) []dag.EventID {
	var ids []dag.EventID
	for _, n := range names {
		ids = append(ids, testID(n))
	}
	return dag.SortIDs(ids)
}

func syncRequests() map[string]*SyncRequest {
	room := dag.RoomID(testID("room"))
	return map[string]*SyncRequest{
		"heads":       {Kind: SyncHeads, Room: room},
		"heads_after": {Kind: SyncHeads, Room: room, After: testID("h2")},
		"get_missing": {Kind: SyncGetMissing, Room: room, Known: sortedIDs("a", "b"), IDs: sortedIDs("c"), Limit: 16},
		"no_known":    {Kind: SyncGetMissing, Room: room, IDs: sortedIDs("c", "d", "e"), Limit: MaxMissingLimit},
		"get_events":  {Kind: SyncGetEvents, Room: room, IDs: sortedIDs("x", "y")},
	}
}

func syncResponses() map[string]*SyncResponse {
	return map[string]*SyncResponse{
		"heads":          {Kind: SyncHeads, Heads: sortedIDs("h1", "h2", "h3")},
		"heads_more":     {Kind: SyncHeads, Heads: sortedIDs("h4"), More: true},
		"heads_none":     {Kind: SyncHeads},
		"missing":        {Kind: SyncGetMissing, Events: [][]byte{[]byte("event one"), bytes.Repeat([]byte{7}, 300)}, Complete: true},
		"missing_more":   {Kind: SyncGetMissing, Events: [][]byte{{1}}},
		"events":         {Kind: SyncGetEvents, Events: [][]byte{[]byte("e")}},
		"events_empty":   {Kind: SyncGetEvents},
		"forbidden":      {Kind: SyncGetEvents, Status: StatusForbidden, Message: "requester does not participate in the room"},
		"rate_limited":   {Kind: SyncHeads, Status: StatusRateLimited},
		"unknown_room":   {Kind: SyncHeads, Status: StatusUnknownRoom, Message: "no events"},
		"busy_on_missed": {Kind: SyncGetMissing, Status: StatusBusy, Message: "later"},
	}
}

func keyPackageRequests() map[string]*KeyPackageRequest {
	return map[string]*KeyPackageRequest{
		"room":    {Protocol: MLS10, RequestingUser: "mimi://a.example/u/alice", TargetUser: "mimi://b.example/u/bob", Room: []byte("mimi://a.example/r/x"), CipherSuites: []uint16{1, 3}},
		"no_room": {Protocol: MLS10, RequestingUser: "a", TargetUser: "b"},
		"other":   {Protocol: 7, TargetUser: "b"},
	}
}

func keyPackageResponses() map[string]*KeyPackageResponse {
	return map[string]*KeyPackageResponse{
		"success": {Protocol: MLS10, UserStatus: UserSuccess, UserURI: "mimi://b.example/u/bob", Clients: []ClientKeyMaterial{
			{Status: ClientSuccess, ClientURI: "mimi://b.example/d/1", KeyPackage: []byte("kp1")},
		}},
		"partial": {Protocol: MLS10, UserStatus: UserPartialSuccess, UserURI: "b", Clients: []ClientKeyMaterial{
			{Status: ClientSuccess, ClientURI: "c1", KeyPackage: []byte("kp")},
			{Status: ClientExhausted, ClientURI: "c2"},
			{Status: ClientNothingCompatible, ClientURI: "c3"},
			{Status: ClientNothingCompatible, ClientURI: "c4", Capabilities: []byte{0, 1}},
		}},
		"unknown":      {Protocol: MLS10, UserStatus: UserUnknown, UserURI: "nobody"},
		"rate_limited": {Status: DirectoryRateLimited, Message: "slow down"},
	}
}

// TestWireRoundTrip encodes every message, decodes it back to the same
// value, and checks that every strict prefix fails to decode.
func TestWireRoundTrip(t *testing.T) {
	check := func(t *testing.T, v any, enc []byte, dec func([]byte) (any, error)) {
		t.Helper()
		got, err := dec(enc)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, v)
		}
		for n := range enc {
			if _, err := dec(enc[:n]); err == nil {
				t.Fatalf("prefix of %d/%d bytes decoded", n, len(enc))
			} else if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("prefix error %v does not wrap ErrMalformedMessage", err)
			}
		}
		if _, err := dec(append(bytes.Clone(enc), 0)); !errors.Is(err, tlspl.ErrTrailingData) {
			t.Fatalf("trailing byte: got %v, want ErrTrailingData", err)
		}
	}
	for name, r := range syncRequests() {
		t.Run("SyncRequest/"+name, func(t *testing.T) {
			enc, err := r.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			check(t, r, enc, func(b []byte) (any, error) { return UnmarshalSyncRequest(b) })
		})
	}
	for name, r := range syncResponses() {
		t.Run("SyncResponse/"+name, func(t *testing.T) {
			enc, err := r.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			check(t, r, enc, func(b []byte) (any, error) { return UnmarshalSyncResponse(b) })
		})
	}
	for name, r := range keyPackageRequests() {
		t.Run("KeyPackageRequest/"+name, func(t *testing.T) {
			enc, err := r.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			check(t, r, enc, func(b []byte) (any, error) { return UnmarshalKeyPackageRequest(b) })
		})
	}
	for name, r := range keyPackageResponses() {
		t.Run("KeyPackageResponse/"+name, func(t *testing.T) {
			enc, err := r.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			check(t, r, enc, func(b []byte) (any, error) { return UnmarshalKeyPackageResponse(b) })
		})
	}
}

// TestWireRejects lists encodings and values that break a rule of
// docs/protocol.md and must be refused.
func TestWireRejects(t *testing.T) {
	room := dag.RoomID(testID("room"))
	ids := sortedIDs("a", "b")
	unsorted := []dag.EventID{ids[1], ids[0]}
	tooMany := make([]dag.EventID, 0, MaxRequestIDs+1)
	for i := range MaxRequestIDs + 1 {
		tooMany = append(tooMany, testID(string(rune(i))))
	}
	dag.SortIDs(tooMany)
	badRequests := map[string]*SyncRequest{
		"zero room":         {Kind: SyncHeads},
		"unknown kind":      {Kind: 9, Room: room},
		"heads with ids":    {Kind: SyncHeads, Room: room, IDs: ids},
		"limit zero":        {Kind: SyncGetMissing, Room: room, IDs: ids},
		"limit too high":    {Kind: SyncGetMissing, Room: room, IDs: ids, Limit: MaxMissingLimit + 1},
		"missing no heads":  {Kind: SyncGetMissing, Room: room, Limit: 1},
		"unsorted ids":      {Kind: SyncGetEvents, Room: room, IDs: unsorted},
		"duplicate ids":     {Kind: SyncGetEvents, Room: room, IDs: []dag.EventID{ids[0], ids[0]}},
		"too many ids":      {Kind: SyncGetEvents, Room: room, IDs: tooMany},
		"events without id": {Kind: SyncGetEvents, Room: room},
		"cursor in events":  {Kind: SyncGetEvents, Room: room, IDs: ids, After: ids[0]},
		"cursor in missing": {Kind: SyncGetMissing, Room: room, IDs: ids, Limit: 1, After: ids[0]},
	}
	for name, r := range badRequests {
		t.Run("SyncRequest/"+name, func(t *testing.T) {
			if _, err := r.Marshal(); !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("Marshal: got %v, want ErrMalformedMessage", err)
			}
		})
	}
	badResponses := map[string]*SyncResponse{
		"unknown status":   {Kind: SyncHeads, Status: 42},
		"refusal w/ heads": {Kind: SyncHeads, Status: StatusBusy, Heads: ids},
		"ok w/ message":    {Kind: SyncHeads, Message: "hi"},
		"empty event":      {Kind: SyncGetEvents, Events: [][]byte{{}}},
		"huge event":       {Kind: SyncGetEvents, Events: [][]byte{make([]byte, dag.MaxEventSize+1)}},
		"events complete":  {Kind: SyncGetEvents, Events: [][]byte{{1}}, Complete: true},
		"more, no heads":   {Kind: SyncHeads, More: true},
		"refusal w/ more":  {Kind: SyncHeads, Status: StatusBusy, More: true},
		"events w/ more":   {Kind: SyncGetEvents, Events: [][]byte{{1}}, More: true},
	}
	for name, r := range badResponses {
		t.Run("SyncResponse/"+name, func(t *testing.T) {
			if _, err := r.Marshal(); !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("Marshal: got %v, want ErrMalformedMessage", err)
			}
		})
	}
	// Byte-level violations of valid messages.
	good, _ := (&SyncRequest{Kind: SyncGetEvents, Room: room, IDs: ids}).Marshal()
	sha512ID := append([]byte{0x13, 0x40}, make([]byte, 64)...)
	encodings := map[string][]byte{
		"non-minimal varint": append([]byte{byte(SyncHeads), 0x40, 34}, room[:]...),
		"room not sha2-256":  append([]byte{byte(SyncHeads), 0x40, 66}, sha512ID...),
		"room wrong length":  append([]byte{byte(SyncHeads), 33}, room[:33]...),
		"truncated":          good[:len(good)-1],
		"heads no optional":  append([]byte{byte(SyncHeads), 34}, room[:]...),
		"heads optional 2":   append(append([]byte{byte(SyncHeads), 34}, room[:]...), 2),
		"heads after short":  append(append([]byte{byte(SyncHeads), 34}, room[:]...), 1, 33),
		"heads after sha512": append(append(append([]byte{byte(SyncHeads), 34}, room[:]...), 1, 0x40, 66), sha512ID...),
	}
	for name, enc := range encodings {
		t.Run("bytes/"+name, func(t *testing.T) {
			if _, err := UnmarshalSyncRequest(enc); !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("got %v, want ErrMalformedMessage", err)
			}
		})
	}
	badKP := map[string]*KeyPackageRequest{
		"long uri":        {Protocol: MLS10, TargetUser: string(make([]byte, MaxURILen+1))},
		"duplicate suite": {Protocol: MLS10, TargetUser: "b", CipherSuites: []uint16{1, 1}},
	}
	for name, r := range badKP {
		t.Run("KeyPackageRequest/"+name, func(t *testing.T) {
			if _, err := r.Marshal(); !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("got %v, want ErrMalformedMessage", err)
			}
		})
	}
	badKPResp := map[string]*KeyPackageResponse{
		"success without kp": {Protocol: MLS10, Clients: []ClientKeyMaterial{{Status: ClientSuccess, ClientURI: "c"}}},
		"exhausted with kp":  {Protocol: MLS10, Clients: []ClientKeyMaterial{{Status: ClientExhausted, KeyPackage: []byte{1}}}},
		"unknown user code":  {Protocol: MLS10, UserStatus: 8},
		"refusal with body":  {Status: DirectoryBusy, UserURI: "x"},
	}
	for name, r := range badKPResp {
		t.Run("KeyPackageResponse/"+name, func(t *testing.T) {
			if _, err := r.Marshal(); !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("got %v, want ErrMalformedMessage", err)
			}
		})
	}
}

func TestFrame(t *testing.T) {
	tests := []struct {
		name string
		len  int
		hdr  int
	}{
		{"empty", 0, 1}, {"1-byte max", 63, 1}, {"2-byte min", 64, 2}, {"2-byte max", 1<<14 - 1, 2}, {"4-byte", 1 << 14, 4}, {"1MiB", 1 << 20, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{0xab}, tt.len)
			var buf bytes.Buffer
			if err := writeFrame(&buf, body); err != nil {
				t.Fatal(err)
			}
			if buf.Len() != tt.hdr+tt.len {
				t.Fatalf("frame of %d bytes, want %d", buf.Len(), tt.hdr+tt.len)
			}
			got, err := readFrame(bufio.NewReader(bytes.NewReader(buf.Bytes())), MaxResponseSize)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("readFrame: %v", err)
			}
			if tt.len > 0 {
				if _, err := readFrame(bufio.NewReader(bytes.NewReader(buf.Bytes())), tt.len-1); !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("over limit: got %v, want ErrFrameTooLarge", err)
				}
			}
		})
	}
	bad := map[string][]byte{
		"non-minimal 2-byte": {0x40, 0x05, 0, 0, 0, 0, 0},
		"non-minimal 4-byte": {0x80, 0, 0, 5, 0, 0, 0, 0, 0},
		"reserved prefix":    {0xc0, 0, 0, 0, 0, 0, 0, 0},
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := readFrame(bufio.NewReader(bytes.NewReader(b)), MaxResponseSize); !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("got %v, want ErrMalformedFrame", err)
			}
		})
	}
}
