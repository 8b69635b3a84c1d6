package roomevent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
)

var (
	alice   = Sender{User: "mimi://a.example/u/alice", Client: "mimi://a.example/d/alice/phone"}
	someID  = mustID("some event")
	roomA   = dag.RoomID(mustID("room a"))
	roomB   = dag.RoomID(mustID("room b"))
	testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
)

func mustID(s string) dag.EventID {
	sum := sha256.Sum256([]byte(s))
	var id dag.EventID
	id[0], id[1] = 0x12, 0x20
	copy(id[2:], sum[:])
	return id
}

type codec struct {
	name   string
	value  interface{ Marshal() ([]byte, error) }
	decode func([]byte) (any, error)
}

func samples(t testing.TB) []codec {
	st := &State{Sender: alice, Changes: []Change{{Component: 1, Update: []byte{1, 2}}}}
	if err := st.Sign(roomA, testKey); err != nil {
		t.Fatal(err)
	}
	return []codec{
		{"create", &Create{Creator: alice, Preset: "private-group", State: []byte("components")},
			func(b []byte) (any, error) { return DecodeCreate(b) }},
		{"state", st, func(b []byte) (any, error) { return DecodeState(b) }},
		{"commit", &Commit{Sender: alice, Parent: someID, Commit: []byte("mls commit"), Changes: []Change{{2, nil}, {0xf000, []byte{9}}}},
			func(b []byte) (any, error) { return DecodeCommit(b) }},
		{"commit+welcome", &Commit{Sender: alice, Parent: someID, Commit: []byte("c"), Welcome: []byte("w")},
			func(b []byte) (any, error) { return DecodeCommit(b) }},
		{"proposal", &Proposal{Sender: alice, Epoch: someID, Proposal: []byte("p")},
			func(b []byte) (any, error) { return DecodeProposal(b) }},
		{"message", &Message{Sender: alice, Epoch: someID, Message: []byte("ciphertext")},
			func(b []byte) (any, error) { return DecodeMessage(b) }},
	}
}

func reencode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := v.(interface{ Marshal() ([]byte, error) }).Marshal()
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	return b
}

func TestRoundTripAndStrictness(t *testing.T) {
	for _, c := range samples(t) {
		t.Run(c.name, func(t *testing.T) {
			enc, err := c.value.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.decode(enc)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !bytes.Equal(reencode(t, got), enc) {
				t.Fatal("re-encoding differs")
			}
			bad := map[string][]byte{
				"trailing byte": append(append([]byte{}, enc...), 0),
				"truncated":     enc[:len(enc)-1],
				"empty":         {},
				// 0x40 0x18 is a two-byte varint for 24 where one byte suffices.
				"non-minimal length": append([]byte{0x40, byte(len(alice.User))}, enc[1:]...),
			}
			for name, in := range bad {
				if _, err := c.decode(in); !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: err = %v, want ErrMalformed", name, err)
				}
			}
		})
	}
}

func TestRejectsBadFields(t *testing.T) {
	var badID dag.EventID // the zero ID is no sha2-256 multihash
	noSender := Sender{User: "alice", Client: "phone"}
	cases := []struct {
		name   string
		value  interface{ Marshal() ([]byte, error) }
		decode func([]byte) (any, error)
	}{
		{"create sender not a URI", &Create{Creator: noSender, Preset: "x"}, func(b []byte) (any, error) { return DecodeCreate(b) }},
		{"commit zero parent", &Commit{Sender: alice, Parent: badID, Commit: []byte("c")}, func(b []byte) (any, error) { return DecodeCommit(b) }},
		{"commit empty", &Commit{Sender: alice, Parent: someID}, func(b []byte) (any, error) { return DecodeCommit(b) }},
		{"proposal empty", &Proposal{Sender: alice, Epoch: someID}, func(b []byte) (any, error) { return DecodeProposal(b) }},
		{"message empty", &Message{Sender: alice, Epoch: someID}, func(b []byte) (any, error) { return DecodeMessage(b) }},
		{"message control char", &Message{Sender: Sender{User: "mimi://a/u/x\n", Client: alice.Client}, Epoch: someID, Message: []byte("m")}, func(b []byte) (any, error) { return DecodeMessage(b) }},
		{"state unsigned", &State{Sender: alice, Changes: []Change{{1, nil}}}, func(b []byte) (any, error) { return DecodeState(b) }},
		{"state no changes", &State{Sender: alice, SignatureKey: make([]byte, 32), Signature: make([]byte, 64)}, func(b []byte) (any, error) { return DecodeState(b) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc, err := c.value.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.decode(enc); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestStateSignature(t *testing.T) {
	st := &State{Sender: alice, Changes: []Change{{Component: 1, Update: []byte{1}}}}
	if err := st.Sign(roomA, testKey); err != nil {
		t.Fatal(err)
	}
	if err := st.Verify(roomA); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := st.Verify(roomB); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other room: err = %v, want ErrBadSignature", err)
	}
	st.Changes[0].Update = []byte{2}
	if err := st.Verify(roomA); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed content: err = %v, want ErrBadSignature", err)
	}
}

func TestTooManyChanges(t *testing.T) {
	c := &Commit{Sender: alice, Parent: someID, Commit: []byte("c"), Changes: make([]Change, MaxChanges+1)}
	enc, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeCommit(enc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func TestSenderOf(t *testing.T) {
	m := &Message{Sender: alice, Epoch: someID, Message: []byte("x")}
	enc, _ := m.Marshal()
	s, err := SenderOf(dag.KindMessage, enc)
	if err != nil || s != alice {
		t.Fatalf("SenderOf = %v, %v", s, err)
	}
	if _, err := SenderOf(dag.KindSeal, enc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("seal: err = %v", err)
	}
}
