package p2p

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/rhizome-chat/rhizome/dag"
)

// ErrNotAdmitted is wrapped by [*AdmitError].
var ErrNotAdmitted = errors.New("p2p: event not admitted")

// Rejection is why the mesh refused a room event that a peer sent, before
// storing or relaying it. [Mesh.Rejections] counts them.
type Rejection uint8

// Rejections.
const (
	// RejectNotParticipant: the peer that forwarded the gossip message, or
	// that a pull would ask, does not participate in the room.
	RejectNotParticipant Rejection = iota + 1
	// RejectNotWriter: the event's origin is not a writer of the room
	// ([RoomACL.Writer]) or not one at the event's parents
	// ([RoomACL.WritesAt]), even after [RoomACL.Settle].
	RejectNotWriter
	// RejectDescendant: a pulled event descends from one refused in the
	// same batch.
	RejectDescendant
	// RejectOriginRate: the room's gossip from the event's origin is over
	// [Config.OriginRate].
	RejectOriginRate
	// RejectRoomRate: the room's gossip is over [Config.RoomRate].
	RejectRoomRate
)

var rejectionNames = [...]string{"", "not-participant", "not-writer", "descendant", "origin-rate", "room-rate"}

// RejectionReasons returns every rejection reason, in order.
func RejectionReasons() []Rejection {
	out := make([]Rejection, 0, len(rejectionNames)-1)
	for r := RejectNotParticipant; int(r) < len(rejectionNames); r++ {
		out = append(out, r)
	}
	return out
}

// String returns the rejection's name (for logs and metric labels).
func (r Rejection) String() string {
	if r > 0 && int(r) < len(rejectionNames) {
		return rejectionNames[r]
	}
	return fmt.Sprintf("rejection(%d)", uint8(r))
}

// AdmitError reports that an event was not admitted into a room.
type AdmitError struct {
	Reason Rejection
	Room   dag.RoomID
	Event  dag.EventID
	Origin dag.ServerID
}

func (e *AdmitError) Error() string {
	return fmt.Sprintf("p2p: event %v of %v not admitted into room %v: %s", e.Event, e.Origin, e.Room, e.Reason)
}

// Unwrap returns [ErrNotAdmitted].
func (e *AdmitError) Unwrap() error { return ErrNotAdmitted }

// rejections counts refused events by reason.
type rejections [len(rejectionNames)]atomic.Uint64

func (c *rejections) add(r Rejection) {
	if int(r) < len(c) {
		c[r].Add(1)
	}
}

// Rejections returns how many events of peers the mesh refused since it
// started, by reason (reasons never seen are absent). The counts cover
// every path: gossip, pulled ancestors, heads exchanges and sync answers.
func (m *Mesh) Rejections() map[Rejection]uint64 {
	out := map[Rejection]uint64{}
	for r := range m.rejected {
		if n := m.rejected[r].Load(); n > 0 {
			out[Rejection(r)] = n
		}
	}
	return out
}

// admit is the one admission check of an event from a peer into room, on
// every path, before the event is stored or relayed: the room's create
// event (self-certifying: its ID is the room ID) or an event whose origin
// is a writer of the room at the event's parents. It returns an [*AdmitError] and counts the
// refusal otherwise.
func (m *Mesh) admit(room dag.RoomID, ev *dag.Event) error {
	if m.writable(room, ev) {
		return nil
	}
	return m.refuse(RejectNotWriter, room, ev)
}

// isCreate reports whether ev is room's create event.
func isCreate(room dag.RoomID, ev *dag.Event) bool {
	return ev.Kind == dag.KindCreate && dag.RoomID(ev.ID()) == room
}

// refuse counts a refusal and returns its error.
func (m *Mesh) refuse(r Rejection, room dag.RoomID, ev *dag.Event) error {
	m.rejected.add(r)
	return &AdmitError{Reason: r, Room: room, Event: ev.ID(), Origin: ev.Origin}
}

// writable reports whether ev may be stored in room: its create event, or
// an event whose origin is a writer, and one at the event's parents
// (WritesAt is asked only of writers, so that strangers cost a map
// lookup). Unlike admit it counts nothing.
func (m *Mesh) writable(room dag.RoomID, ev *dag.Event) bool {
	if ev.RoomID() != room {
		return false
	}
	return isCreate(room, ev) || (m.cfg.ACL.Writer(room, ev.Origin) && m.cfg.ACL.WritesAt(room, ev))
}
