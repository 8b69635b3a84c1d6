package p2p

import (
	"bytes"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
)

// testEventID is an event ID whose digest is 32 bytes of b.
func testEventID(tb testing.TB, b byte) dag.EventID {
	tb.Helper()
	id, err := dag.EventIDFromBytes(append([]byte{0x12, 0x20}, bytes.Repeat([]byte{b}, 32)...))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func FuzzInviteNotice(f *testing.F) {
	room := dag.RoomID(testEventID(f, 1))
	fuzzRoundTrip(f, map[string]*InviteNotice{
		"create": {Room: room, Invitation: room.CreateID()},
		"state":  {Room: room, Invitation: testEventID(f, 2)},
	}, nil, UnmarshalInviteNotice)
}

func FuzzInviteAnswer(f *testing.F) {
	fuzzRoundTrip(f, map[string]*InviteAnswer{
		"accepted": {Status: InviteAccepted},
		"busy":     {Status: InviteBusy, Message: "too many notices in progress"},
	}, nil, UnmarshalInviteAnswer)
}
