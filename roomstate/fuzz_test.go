package roomstate

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// The fuzz targets check, for every decoder of peer bytes: no panic; a
// failure is a typed error; a success re-encodes to exactly the input
// (decode-then-encode identity). Seeds are real encodings of states and
// changes reached by random walks from every preset.

// seedComponents returns the encodings of component id in walk states.
func seedComponents(f *testing.F, id ComponentID) {
	f.Helper()
	for _, s := range walkStates(f, 3, 40) {
		data, err := s.component(id)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// seedUpdates returns the update bytes of accepted changes of component id.
func seedUpdates(f *testing.F, id ComponentID) {
	f.Helper()
	r := rng(5)
	for _, p := range []Preset{PresetPrivateGroup, PresetPublicRoom} {
		s := newTestRoom(f, p)
		for range 200 {
			a, op := randomOp(&r, s)
			next, err := Apply(s, Change{Actor: a, Op: op})
			if err != nil {
				continue
			}
			if op.Component() == id {
				_, upd, err := EncodeOp(s, op)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(upd)
			}
			s = next
		}
	}
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *tlspl.DecodeError
	if !errors.As(err, &de) || !errors.Is(err, tlspl.ErrMalformed) && !errors.Is(err, tlspl.ErrTrailingData) {
		t.Fatalf("untyped decode error: %v", err)
	}
}

func fuzzIdentity[T any](f *testing.F, parse func([]byte) (T, error), marshal func(T) ([]byte, error)) {
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parse(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		out, err := marshal(v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("decode-then-encode changed the bytes:\n in %x\nout %x", data, out)
		}
	})
}

func FuzzParticipantList(f *testing.F) {
	seedComponents(f, ComponentParticipantList)
	fuzzIdentity(f, ParseParticipantList, MarshalParticipantList)
}

func FuzzRoomMetadata(f *testing.F) {
	seedComponents(f, ComponentRoomMetadata)
	fuzzIdentity(f, ParseRoomMetadata, MarshalRoomMetadata)
}

func FuzzRolePolicy(f *testing.F) {
	seedComponents(f, ComponentRolesList)
	fuzzIdentity(f, ParseRoles, MarshalRoles)
}

func FuzzPreAuth(f *testing.F) {
	seedComponents(f, ComponentPreAuthList)
	fuzzIdentity(f, ParsePreAuth, MarshalPreAuth)
}

func FuzzBasePolicy(f *testing.F) {
	seedComponents(f, ComponentBaseRoomPolicy)
	fuzzIdentity(f, ParseBasePolicy, MarshalBasePolicy)
}

func FuzzJoinRule(f *testing.F) {
	seedComponents(f, ComponentJoinRule)
	fuzzIdentity(f, ParseJoinRule, MarshalJoinRule)
}

func FuzzServers(f *testing.F) {
	seedComponents(f, ComponentServers)
	fuzzIdentity(f, ParseServers, MarshalServers)
}

func FuzzParticipantListUpdate(f *testing.F) {
	seedUpdates(f, ComponentParticipantList)
	fuzzIdentity(f, ParseParticipantListUpdate, MarshalParticipantListUpdate)
}

func FuzzServersUpdate(f *testing.F) {
	seedUpdates(f, ComponentServers)
	fuzzIdentity(f, ParseServersUpdate, MarshalServersUpdate)
}

// FuzzChange decodes an AppDataUpdate (component, update) against a fixed
// state, re-encodes the op against the same state, and applies it: decoding
// is strict (identity), rejections are typed, the input state never changes.
func FuzzChange(f *testing.F) {
	base := newTestRoom(f, PresetPrivateGroup)
	for _, u := range []URI{testUser(1), testUser(2), testUser(3)} {
		next, err := Apply(base, Change{Actor: UserActor(testUser(0), ""), Op: &ParticipantUpdate{Added: []UserRole{{u, RoleMember}}}})
		if err != nil {
			f.Fatal(err)
		}
		base = next
	}
	r := rng(9)
	for range 300 {
		a, op := randomOp(&r, base)
		id, upd, err := EncodeOp(base, op)
		if err == nil {
			f.Add(uint16(id), upd, uint8(a.User[len(a.User)-1]%4))
		}
	}
	before, _ := base.Components()
	f.Fuzz(func(t *testing.T, id uint16, update []byte, who uint8) {
		op, err := DecodeOp(base, ComponentID(id), update)
		if err != nil {
			if ReasonOf(err) == 0 {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		gotID, out, err := EncodeOp(base, op)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if uint16(gotID) != id || !bytes.Equal(out, update) {
			t.Fatalf("decode-then-encode changed the update:\n in %04x %x\nout %04x %x", id, update, gotID, out)
		}
		next, err := Apply(base, Change{Actor: UserActor(testUser(int(who%4)), ""), Op: op})
		if err != nil && ReasonOf(err) == 0 {
			t.Fatalf("untyped rejection: %v", err)
		}
		if err == nil {
			if _, err := next.Components(); err != nil {
				t.Fatalf("accepted change yields an unencodable state: %v", err)
			}
		}
		after, _ := base.Components()
		for i := range before {
			if !bytes.Equal(before[i].Data, after[i].Data) {
				t.Fatal("Apply modified its input state")
			}
		}
	})
}

// FuzzState decodes a whole app_data_dictionary body into a state.
func FuzzState(f *testing.F) {
	for _, s := range walkStates(f, 11, 20) {
		cs, err := s.Components()
		if err != nil {
			f.Fatal(err)
		}
		body, err := MarshalComponents(cs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseComponents(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		s, err := FromComponents(entries)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		cs, err := s.Components()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if len(entries) == len(cs) {
			out, err := MarshalComponents(cs)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("decode-then-encode changed the dictionary (%v)", err)
			}
		}
	})
}
