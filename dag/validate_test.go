package dag

import (
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	alice, bob := testKey(10), testKey(11)
	s := NewMemStore(Limits{})
	roomA := mustSign(t, alice, RoomID{}, KindCreate, nil, "A")
	roomB := mustSign(t, bob, RoomID{}, KindCreate, nil, "B")
	unstored := mustSign(t, bob, RoomID{}, KindCreate, nil, "C")
	for _, e := range []*Event{roomA, roomB} {
		if _, err := s.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	inA := mustSign(t, alice, roomA.RoomID(), KindMessage, []EventID{roomA.ID()}, "in A")
	if _, err := s.Put(inA); err != nil {
		t.Fatal(err)
	}
	missingParent := mustSign(t, alice, roomA.RoomID(), KindMessage, []EventID{unstored.ID()}, "waits")
	forged := mustSign(t, alice, roomA.RoomID(), KindMessage, []EventID{roomA.ID()}, "forged")
	forged, err := Decode(forged.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	forged.Signature = append([]byte(nil), forged.Signature...)
	forged.Signature[0] ^= 0x80

	tests := []struct {
		name string
		ev   *Event
		want Reason // 0: valid
	}{
		{"create", unstored, 0},
		{"message", mustSign(t, bob, roomA.RoomID(), KindMessage, []EventID{inA.ID()}, "reply"), 0},
		{"missing-parent-is-not-an-error", missingParent, 0},
		{"unknown-room", mustSign(t, bob, unstored.RoomID(), KindMessage, []EventID{unstored.ID()}, "x"), ReasonUnknownRoom},
		{"room-names-a-message", mustSign(t, bob, RoomID(inA.ID()), KindMessage, []EventID{inA.ID()}, "x"), ReasonUnknownRoom},
		{"foreign-parent", mustSign(t, bob, roomA.RoomID(), KindMessage, []EventID{roomB.ID()}, "x"), ReasonForeignParent},
		{"foreign-second-parent", mustSign(t, bob, roomB.RoomID(), KindMessage, []EventID{inA.ID(), roomB.ID()}, "x"), ReasonForeignParent},
		{"bad-signature", forged, ReasonBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(tc.ev, s)
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if r, _ := ReasonOf(err); r != tc.want {
				t.Fatalf("Validate = %v, want reason %v", err, tc.want)
			}
		})
	}
}

type failingLookup struct{}

var errDisk = errors.New("disk on fire")

func (failingLookup) Room(EventID) (RoomID, bool, error) { return RoomID{}, false, errDisk }

func TestValidateLookupError(t *testing.T) {
	t.Parallel()
	priv := testKey(12)
	c := mustSign(t, priv, RoomID{}, KindCreate, nil, "")
	e := mustSign(t, priv, c.RoomID(), KindMessage, []EventID{c.ID()}, "")
	err := Validate(e, failingLookup{})
	if !errors.Is(err, errDisk) {
		t.Fatalf("Validate = %v, want the lookup error", err)
	}
	if _, isReject := ReasonOf(err); isReject {
		t.Fatal("a storage failure must not be reported as a peer rejection")
	}
}
