package dag

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	mh "github.com/multiformats/go-multihash"
)

// testKey returns a deterministic Ed25519 key for tests.
func testKey(n byte) ed25519.PrivateKey {
	seed := bytes.Repeat([]byte{n}, ed25519.SeedSize)
	return ed25519.NewKeyFromSeed(seed)
}

func mustSign(t testing.TB, priv ed25519.PrivateKey, room RoomID, kind Kind, prev []EventID, content string) *Event {
	t.Helper()
	e, err := NewSigned(priv, room, kind, prev, 1700000000000, []byte(content))
	if err != nil {
		t.Fatalf("NewSigned: %v", err)
	}
	return e
}

// handEncode builds the canonical encoding from docs/events.md byte by byte,
// independently of marshalTBS, without the signature.
func handEncode(version, kind byte, room []byte, origin []byte, prev [][]byte, ts uint64, content []byte) []byte {
	var b []byte
	b = append(b, version, kind)
	b = append(b, byte(len(room))) // all test lengths are < 64: one-byte varint
	b = append(b, room...)
	b = append(b, origin...)
	var pv []byte
	for _, p := range prev {
		pv = append(pv, byte(len(p)))
		pv = append(pv, p...)
	}
	if len(pv) < 64 {
		b = append(b, byte(len(pv)))
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(pv))|0x4000)
	}
	b = append(b, pv...)
	b = binary.BigEndian.AppendUint64(b, ts)
	b = append(b, byte(len(content)))
	return append(b, content...)
}

func TestEncodingMatchesSpec(t *testing.T) {
	t.Parallel()
	priv := testKey(1)
	create := mustSign(t, priv, RoomID{}, KindCreate, nil, "genesis")
	pub := priv.Public().(ed25519.PublicKey)

	want := handEncode(1, 1, nil, pub, nil, 1700000000000, []byte("genesis"))
	raw := create.Bytes()
	if got := raw[:len(raw)-SignatureSize]; !bytes.Equal(got, want) {
		t.Fatalf("create TBS encoding\n got %x\nwant %x", got, want)
	}
	digest := sha256.Sum256(want)
	wantID := append([]byte{0x12, 0x20}, digest[:]...)
	if !bytes.Equal(create.ID().Bytes(), wantID) {
		t.Fatalf("ID = %x, want sha2-256 multihash %x", create.ID().Bytes(), wantID)
	}
	msg := append([]byte("rhizome/v1/event-signature\x00"), wantID...)
	if !ed25519.Verify(pub, msg, raw[len(raw)-SignatureSize:]) {
		t.Fatal("signature does not verify over label || ID")
	}
	if create.RoomID() != RoomID(create.ID()) {
		t.Fatalf("create RoomID = %v, want its own ID", create.RoomID())
	}

	room := create.RoomID()
	a := mustSign(t, priv, room, KindMessage, []EventID{create.ID()}, "a")
	b := mustSign(t, priv, room, KindMessage, []EventID{create.ID()}, "b")
	m := mustSign(t, priv, room, KindState, []EventID{b.ID(), a.ID()}, "merge")
	lo, hi := a.ID(), b.ID()
	if lo.Compare(hi) > 0 {
		lo, hi = hi, lo
	}
	want = handEncode(1, 2, room[:], pub, [][]byte{lo[:], hi[:]}, 1700000000000, []byte("merge"))
	raw = m.Bytes()
	if got := raw[:len(raw)-SignatureSize]; !bytes.Equal(got, want) {
		t.Fatalf("merge TBS encoding\n got %x\nwant %x", got, want)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	priv := testKey(2)
	create := mustSign(t, priv, RoomID{}, KindCreate, nil, "")
	var prev []EventID
	for i := range MaxParents {
		prev = append(prev, mustSign(t, priv, create.RoomID(), KindMessage, []EventID{create.ID()}, strings.Repeat("x", i)).ID())
	}
	events := map[string]*Event{
		"create":      create,
		"one-parent":  mustSign(t, priv, create.RoomID(), KindAck, []EventID{create.ID()}, "ack"),
		"max-parents": mustSign(t, priv, create.RoomID(), KindSeal, prev, "seal"),
		"big-content": mustSign(t, priv, create.RoomID(), KindCommit, []EventID{create.ID()}, strings.Repeat("c", 60000)),
	}
	for name, e := range events {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(e.Bytes())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.ID() != e.ID() || !bytes.Equal(got.Bytes(), e.Bytes()) {
				t.Fatalf("round trip changed the event: ID %v -> %v", e.ID(), got.ID())
			}
			if got.Kind != e.Kind || got.Room != e.Room || got.Origin != e.Origin || got.Timestamp != e.Timestamp ||
				!bytes.Equal(got.Content, e.Content) || len(got.Prev) != len(e.Prev) {
				t.Fatalf("decoded fields differ: %+v vs %+v", got, e)
			}
			if err := got.Verify(); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			// Re-signing the decoded fields gives the same bytes (Ed25519 is
			// deterministic), so encode(decode(b)) == b.
			again := &Event{Version: got.Version, Room: got.Room, Kind: got.Kind, Prev: got.Prev,
				Timestamp: got.Timestamp, Content: got.Content}
			if err := again.Sign(priv); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), e.Bytes()) {
				t.Fatal("re-encoding differs from the original bytes")
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	priv := testKey(3)
	pub := priv.Public().(ed25519.PublicKey)
	create := mustSign(t, priv, RoomID{}, KindCreate, nil, "")
	room := create.RoomID()
	p1 := create.ID()
	p2 := mustSign(t, priv, room, KindMessage, []EventID{p1}, "p2").ID()
	lo, hi := p1, p2
	if lo.Compare(hi) > 0 {
		lo, hi = hi, lo
	}
	sig := make([]byte, SignatureSize)
	withSig := func(tbs []byte) []byte { return append(tbs, sig...) }
	ok := handEncode(1, 5, room[:], pub, [][]byte{lo[:]}, 1, []byte("hi"))
	blake3 := append([]byte{0x1e, 0x20}, make([]byte, 32)...)
	identity := []byte{0x00, 0x01, 'x'}
	var many [][]byte
	for i := range MaxParents + 1 {
		id := lo
		id[IDLen-1] = byte(i)
		many = append(many, id[:])
	}

	tests := []struct {
		name string
		in   []byte
		want Reason
	}{
		{"empty", nil, ReasonMalformed},
		{"truncated", withSig(ok)[:len(ok)+10], ReasonMalformed},
		{"trailing-byte", append(withSig(ok), 0), ReasonMalformed},
		{"oversize", make([]byte, MaxEventSize+1), ReasonOversize},
		{"version-2", withSig(handEncode(2, 5, room[:], pub, [][]byte{lo[:]}, 1, nil)), ReasonMalformed},
		{"kind-0", withSig(handEncode(1, 0, room[:], pub, [][]byte{lo[:]}, 1, nil)), ReasonMalformed},
		{"kind-9", withSig(handEncode(1, 9, room[:], pub, [][]byte{lo[:]}, 1, nil)), ReasonMalformed},
		{"create-with-room", withSig(handEncode(1, 1, room[:], pub, nil, 1, nil)), ReasonMalformed},
		{"create-with-parent", withSig(handEncode(1, 1, nil, pub, [][]byte{lo[:]}, 1, nil)), ReasonMalformed},
		{"message-without-room", withSig(handEncode(1, 5, nil, pub, [][]byte{lo[:]}, 1, nil)), ReasonMalformed},
		{"message-without-parents", withSig(handEncode(1, 5, room[:], pub, nil, 1, nil)), ReasonMalformed},
		{"unsorted-parents", withSig(handEncode(1, 5, room[:], pub, [][]byte{hi[:], lo[:]}, 1, nil)), ReasonMalformed},
		{"duplicate-parents", withSig(handEncode(1, 5, room[:], pub, [][]byte{lo[:], lo[:]}, 1, nil)), ReasonDuplicateParent},
		{"too-many-parents", withSig(handEncode(1, 5, room[:], pub, many, 1, nil)), ReasonTooManyParents},
		{"blake3-parent", withSig(handEncode(1, 5, room[:], pub, [][]byte{blake3}, 1, nil)), ReasonBadHash},
		{"identity-parent", withSig(handEncode(1, 5, room[:], pub, [][]byte{identity}, 1, nil)), ReasonBadHash},
		{"blake3-room", withSig(handEncode(1, 5, blake3, pub, [][]byte{lo[:]}, 1, nil)), ReasonBadHash},
		{"short-parent", withSig(handEncode(1, 5, room[:], pub, [][]byte{lo[:10]}, 1, nil)), ReasonMalformed},
		{"negative-timestamp", withSig(handEncode(1, 5, room[:], pub, [][]byte{lo[:]}, 1<<63, nil)), ReasonMalformed},
		{"non-minimal-varint", func() []byte {
			b := withSig(ok)
			// content length 2 as a two-byte varint 0x4002 instead of 0x02.
			i := len(ok) - 3
			out := append([]byte(nil), b[:i]...)
			out = append(out, 0x40, 0x02)
			return append(out, b[i+1:]...)
		}(), ReasonMalformed},
	}
	if _, err := Decode(withSig(ok)); err != nil {
		t.Fatalf("control encoding rejected: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := Decode(tc.in)
			if err == nil {
				t.Fatalf("Decode accepted %x as %+v", tc.in, e)
			}
			r, isReject := ReasonOf(err)
			if !isReject || r != tc.want {
				t.Fatalf("Decode error %v: reason %v, want %v", err, r, tc.want)
			}
			if !errors.Is(err, tc.want.Sentinel()) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tc.want.Sentinel())
			}
		})
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	priv := testKey(4)
	create := mustSign(t, priv, RoomID{}, KindCreate, nil, "room")
	good := mustSign(t, priv, create.RoomID(), KindMessage, []EventID{create.ID()}, "hello")

	flip := func(i int) []byte {
		b := append([]byte(nil), good.Bytes()...)
		b[i] ^= 1
		return b
	}
	raw := good.Bytes()
	tests := []struct {
		name string
		in   []byte
	}{
		{"content-flipped", flip(len(raw) - SignatureSize - 1)},
		{"signature-flipped", flip(len(raw) - 1)},
		{"origin-flipped", flip(2 + 1 + IDLen + 3)},
	}
	if e, err := Decode(raw); err != nil || e.Verify() != nil {
		t.Fatalf("good event: decode %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Decode(tc.in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			err = e.Verify()
			if r, _ := ReasonOf(err); r != ReasonBadSignature {
				t.Fatalf("Verify = %v, want bad-signature", err)
			}
		})
	}
	t.Run("never-signed", func(t *testing.T) {
		e := &Event{Version: Version1, Kind: KindCreate}
		if r, _ := ReasonOf(e.Verify()); r != ReasonBadSignature {
			t.Fatalf("Verify of unsigned event: reason %v", r)
		}
	})
}

func TestSignRejectsInvalidFields(t *testing.T) {
	t.Parallel()
	priv := testKey(5)
	room := RoomID(mustSign(t, priv, RoomID{}, KindCreate, nil, "").ID())
	p := EventID(room)
	tests := []struct {
		name string
		ev   Event
		want Reason
	}{
		{"oversize", Event{Version: Version1, Room: room, Kind: KindMessage, Prev: []EventID{p}, Content: make([]byte, MaxEventSize)}, ReasonOversize},
		{"duplicate", Event{Version: Version1, Room: room, Kind: KindMessage, Prev: []EventID{p, p}}, ReasonDuplicateParent},
		{"too-many", Event{Version: Version1, Room: room, Kind: KindMessage, Prev: make([]EventID, MaxParents+1)}, ReasonTooManyParents},
		{"no-version", Event{Room: room, Kind: KindMessage, Prev: []EventID{p}}, ReasonMalformed},
		{"zero-parent", Event{Version: Version1, Room: room, Kind: KindMessage, Prev: []EventID{{}}}, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.ev.Sign(priv)
			if r, _ := ReasonOf(err); r != tc.want {
				t.Fatalf("Sign = %v, want reason %v", err, tc.want)
			}
			if tc.ev.Bytes() != nil {
				t.Fatal("failed Sign left an encoding behind")
			}
		})
	}
}

func TestEventIDText(t *testing.T) {
	t.Parallel()
	e := mustSign(t, testKey(6), RoomID{}, KindCreate, nil, "")
	s := e.ID().String()
	if !strings.HasPrefix(s, "Qm") || len(s) != 46 {
		t.Fatalf("ID text %q: want a 46-char base58btc sha2-256 multihash", s)
	}
	got, err := ParseEventID(s)
	if err != nil || got != e.ID() {
		t.Fatalf("ParseEventID(%q) = %v, %v", s, got, err)
	}
	rs := e.RoomID().String()
	if rs != "!"+s {
		t.Fatalf("room text %q", rs)
	}
	if r, err := ParseRoomID(rs); err != nil || r != e.RoomID() {
		t.Fatalf("ParseRoomID(%q) = %v, %v", rs, r, err)
	}
	bad := map[string]struct {
		in   string
		want error
	}{
		"empty":        {"", ErrBadID},
		"not-base58":   {"Qm0OIl", ErrBadID},
		"blake3":       {mh.Multihash(append([]byte{0x1e, 0x20}, make([]byte, 32)...)).B58String(), ErrBadHash},
		"room-no-bang": {s, ErrBadID},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			var err error
			if name == "room-no-bang" {
				_, err = ParseRoomID(tc.in)
			} else {
				_, err = ParseEventID(tc.in)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("parse %q: %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}
