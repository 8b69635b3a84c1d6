package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// fuzzSeeds returns real stream lines: a signed create event of a room, a
// state event, a commit, a message and an order line of that room.
func fuzzSeeds(t testing.TB) [][]byte {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	var sid roomstate.ServerID
	copy(sid[:], pub)
	st, err := roomstate.NewRoom(roomstate.PresetPrivateGroup, roomstate.RoomConfig{
		Room: "mimi://a.test/r/fuzz", Name: "Fuzz", Creator: "mimi://a.test/u/alice",
		Servers: []roomstate.Server{{ID: sid, Domain: "a.test"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	comps, _ := st.Components()
	state, _ := roomstate.MarshalComponents(comps)
	alice := roomevent.Sender{User: "mimi://a.test/u/alice", Client: "mimi://a.test/d/alice/phone"}
	cc, _ := (&roomevent.Create{Creator: alice, Preset: "private-group", State: state}).Marshal()
	create, err := dag.NewSigned(priv, dag.RoomID{}, dag.KindCreate, nil, 1, cc)
	if err != nil {
		t.Fatal(err)
	}
	room := dag.RoomID(create.ID())
	line := func(cursor uint64, ev *dag.Event, kind string) []byte {
		b, _ := json.Marshal(clientapi.StreamLine{Type: clientapi.LineEvent, Cursor: cursor, Room: room.String(), Event: ev.ID().String(), Kind: kind, Raw: ev.Bytes(), Origin: hex.EncodeToString(pub)})
		return b
	}
	comp, upd, _ := roomstate.EncodeOp(st, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://a.test/u/bob", Role: roomstate.RoleMember}}})
	se := &roomevent.State{Sender: alice, Changes: []roomevent.Change{{Component: uint16(comp), Update: upd}}}
	_, devPriv, _ := ed25519.GenerateKey(rand.Reader)
	if err := se.Sign(room, devPriv); err != nil {
		t.Fatal(err)
	}
	sc, _ := se.Marshal()
	stateEv, _ := dag.NewSigned(priv, room, dag.KindState, []dag.EventID{create.ID()}, 2, sc)
	cm, _ := (&roomevent.Commit{Sender: alice, Parent: create.ID(), Commit: []byte{0, 1, 0, 1}, Changes: []roomevent.Change{{Component: uint16(comp), Update: upd}}}).Marshal()
	commitEv, _ := dag.NewSigned(priv, room, dag.KindCommit, []dag.EventID{stateEv.ID()}, 3, cm)
	mm, _ := (&roomevent.Message{Sender: alice, Epoch: commitEv.ID(), Message: []byte{0, 1, 0, 2, 9, 9}}).Marshal()
	msgEv, _ := dag.NewSigned(priv, room, dag.KindMessage, []dag.EventID{commitEv.ID()}, 4, mm)
	order, _ := json.Marshal(clientapi.StreamLine{Type: clientapi.LineOrder, Cursor: 5, Room: room.String(), Tip: commitEv.ID().String(), Applied: []string{commitEv.ID().String()}})
	undo, _ := json.Marshal(clientapi.StreamLine{Type: clientapi.LineOrder, Cursor: 6, Room: room.String(), Tip: create.ID().String(), Undone: []string{commitEv.ID().String()}, RetainUntilMS: 1})
	return [][]byte{line(1, create, "create"), line(2, stateEv, "state"), line(3, commitEv, "commit"), line(4, msgEv, "message"), order, undo}
}

// FuzzStreamLine feeds arbitrary stream lines (JSON wrapping signed DAG
// events and order lines from the node) to a registered client: nothing
// panics, and a failure is a typed error (store, network or the context),
// never a half-applied line.
func FuzzStreamLine(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	c, err := Open(f.TempDir(), Options{WaitTimeout: 200 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	sig, _, _ := Suite.GenerateSignatureKeyPair(rand.Reader)
	_ = c.setIdentity(&identity{Server: "http://127.0.0.1:1", User: "alice", Device: "phone",
		UserURI: "mimi://a.test/u/alice", DeviceURI: "mimi://a.test/d/alice/phone", Signature: sig.Bytes()})
	f.Fuzz(func(t *testing.T, in []byte) {
		var l clientapi.StreamLine
		if json.Unmarshal(in, &l) != nil {
			return
		}
		c.mu.Lock()
		l.Cursor = c.cursor + 1
		before := c.cursor
		c.mu.Unlock()
		err := c.processLine(context.Background(), &l)
		if err != nil && !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrStore) && !errors.Is(err, context.DeadlineExceeded) {
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("untyped error: %v", err)
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil && c.cursor != before {
			t.Fatalf("failed line moved the cursor")
		}
	})
}

// TestFuzzSeedsProcess runs the fuzz seeds as a plain test: the create
// line makes the room known (created by "this" device, so the group is
// made), and the malformed commit is skipped, not fatal.
func TestFuzzSeedsProcess(t *testing.T) {
	c, err := Open(t.TempDir(), Options{WaitTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sig, _, _ := Suite.GenerateSignatureKeyPair(rand.Reader)
	_ = c.setIdentity(&identity{Server: "http://127.0.0.1:1", UserURI: "mimi://a.test/u/alice", DeviceURI: "mimi://a.test/d/alice/phone", Signature: sig.Bytes()})
	for _, s := range fuzzSeeds(t) {
		var l clientapi.StreamLine
		if err := json.Unmarshal(s, &l); err != nil {
			t.Fatal(err)
		}
		if err := c.processLine(context.Background(), &l); err != nil {
			t.Fatalf("line %d: %v", l.Cursor, err)
		}
	}
	// The state event adding bob is pending: the commit that adopts it
	// (it is the commit's DAG parent) is malformed and skipped.
	rs, _ := c.Rooms()
	if len(rs) != 1 || !rs[0].Joined || rs[0].Name != "Fuzz" || rs[0].Members != 1 {
		t.Fatalf("rooms after seeds = %+v (skipped %v)", rs, c.Skipped())
	}
	c.mu.Lock()
	pending := c.rooms[string(rs[0].Room)].pendingState().RoleOf("mimi://a.test/u/bob")
	c.mu.Unlock()
	if pending != roomstate.RoleMember {
		t.Fatalf("bob's role with the pending state event = %d, want member", pending)
	}
	if len(c.Skipped()) == 0 {
		t.Fatal("the malformed commit and message were not reported as skipped")
	}
}
