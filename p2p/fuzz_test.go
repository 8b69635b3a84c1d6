package p2p

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"slices"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
)

// Every decoder of peer bytes is fuzzed: decoding never panics, a failure
// is a typed error (wrapping ErrMalformedMessage, or a frame error), and a
// success re-encodes to exactly the input (no malleability).

func seedEvent(f *testing.F) []byte {
	f.Helper()
	key := make([]byte, 32)
	priv := ed25519Key(key)
	create, err := dag.NewSigned(priv, dag.RoomID{}, dag.KindCreate, nil, 1, []byte("fuzz room"))
	if err != nil {
		f.Fatal(err)
	}
	return create.Bytes()
}

// wireMessage is what every request and response type of the protocols is.
type wireMessage interface{ Marshal() ([]byte, error) }

// fuzzRoundTrip seeds f with the encodings of seeds (in name order) and of
// extra, and checks decode on arbitrary bytes: a failure wraps
// ErrMalformedMessage, a success re-encodes to exactly the input.
func fuzzRoundTrip[M wireMessage](f *testing.F, seeds map[string]M, extra []M, decode func([]byte) (M, error)) {
	f.Helper()
	for _, name := range slices.Sorted(maps.Keys(seeds)) {
		extra = append(extra, seeds[name])
	}
	for _, m := range extra {
		enc, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc, err := m.Marshal()
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs (err %v)", err)
		}
	})
}

func FuzzSyncRequest(f *testing.F) {
	fuzzRoundTrip(f, syncRequests(), nil, UnmarshalSyncRequest)
}

func FuzzSyncResponse(f *testing.F) {
	real := &SyncResponse{Kind: SyncGetMissing, Events: [][]byte{seedEvent(f)}, Complete: true}
	fuzzRoundTrip(f, syncResponses(), []*SyncResponse{real}, UnmarshalSyncResponse)
}

func FuzzKeyPackageRequest(f *testing.F) {
	fuzzRoundTrip(f, keyPackageRequests(), nil, UnmarshalKeyPackageRequest)
}

func FuzzKeyPackageResponse(f *testing.F) {
	fuzzRoundTrip(f, keyPackageResponses(), nil, UnmarshalKeyPackageResponse)
}

// FuzzFrame fuzzes the framing decoder with small seeds (a few bytes to a
// few hundred: a 16 KiB seed stalled the fuzzer): every length form, a
// non-minimal length, the invalid 0b11 prefix, a truncated body and a
// length over the limit. A frame read re-encodes to the bytes it consumed.
func FuzzFrame(f *testing.F) {
	for _, n := range []int{0, 1, 5, 63, 64, 300} {
		var buf bytes.Buffer
		if err := writeFrame(&buf, bytes.Repeat([]byte{1}, n)); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	for _, raw := range [][]byte{
		{0x40, 0x05, 1, 2, 3, 4, 5},    // 5 in two bytes: not minimal
		{0xc0, 0, 0, 0, 0, 0, 0, 1},    // 0b11 prefix
		{0x80, 0x00, 0x40, 0x00, 1, 2}, // 16384 announced, 2 sent
		{0x80, 0x01, 0x00, 0x01},       // 65537: over the request limit
		{0x41},                         // truncated length
	} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		body, err := readFrame(r, MaxRequestSize)
		if err != nil {
			if len(data) > 0 && !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrMalformedFrame) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := writeFrame(&buf, body); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data[:buf.Len()]) {
			t.Fatalf("frame re-encoding differs from the consumed input")
		}
	})
}

// FuzzGossipCheck feeds arbitrary payloads to the gossip validator's checks:
// they never panic, and an accepted payload is a verified event of the
// topic's room whose encoding is the payload.
func FuzzGossipCheck(f *testing.F) {
	ev := seedEvent(f)
	f.Add(ev)
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := dag.Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
		room := parsed.RoomID()
		got, off, err := checkGossip(room, data, (*dag.Event).Verify)
		if err != nil {
			if off == 0 {
				t.Fatalf("rejection %v without an offense", err)
			}
			return
		}
		if got.RoomID() != room || !bytes.Equal(got.Bytes(), data) || got.Verify() != nil {
			t.Fatal("accepted payload is not a verified event of the room")
		}
	})
}
