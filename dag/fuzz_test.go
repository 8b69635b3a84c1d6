package dag

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeEvent checks that Decode never panics, that every failure is a
// typed rejection, and that every accepted input is canonical: re-encoding
// the decoded fields gives the input back byte for byte.
func FuzzDecodeEvent(f *testing.F) {
	priv := testKey(20)
	create := mustSign(f, priv, RoomID{}, KindCreate, nil, "fuzz room")
	a := mustSign(f, priv, create.RoomID(), KindMessage, []EventID{create.ID()}, "a")
	b := mustSign(f, priv, create.RoomID(), KindState, []EventID{create.ID()}, strings.Repeat("b", 100))
	m := mustSign(f, priv, create.RoomID(), KindSeal, []EventID{a.ID(), b.ID()}, "")
	for _, e := range []*Event{create, a, b, m} {
		f.Add(e.Bytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Decode(in)
		if err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("untyped decode error: %v", err)
			}
			return
		}
		if !bytes.Equal(e.Bytes(), in) {
			t.Fatal("Decode did not keep the input bytes")
		}
		again := &Event{Version: e.Version, Room: e.Room, Kind: e.Kind, Origin: e.Origin, Prev: e.Prev,
			Timestamp: e.Timestamp, Content: e.Content}
		tbs, err := again.encodeTBS()
		if err != nil {
			t.Fatalf("decoded event does not re-encode: %v", err)
		}
		if !bytes.Equal(append(tbs, e.Signature...), in) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", in, append(tbs, e.Signature...))
		}
		if again.ID() != e.ID() {
			t.Fatal("ID differs after re-encoding")
		}
		if err := e.Verify(); err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify returned %v", err)
		}
	})
}
