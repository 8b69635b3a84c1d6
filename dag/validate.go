package dag

import "fmt"

// Lookup is what [Validate] needs to know about events already stored. A
// [Store] satisfies it.
type Lookup interface {
	// Room returns the room of a stored event; ok is false when the event is
	// not stored (pending events are not stored).
	Room(id EventID) (room RoomID, ok bool, err error)
}

// Validate runs every check that does not depend on the room's state
// (docs/events.md, "Validation"):
//
//  1. the structural rules of the format (as [Decode] applies them);
//  2. the origin's signature ([Event.Verify]);
//  3. the context rules of [CheckContext]: the room is known and no stored
//     parent belongs to another room.
//
// Parents that are not stored yet are not an error: the store keeps such an
// event pending until they arrive. Validate is pure; a rejection is a
// [*RejectError], while an error from l is returned wrapped as is.
func Validate(e *Event, l Lookup) error {
	if err := e.checkFields(); err != nil {
		return err
	}
	if e.raw != nil && e.Size() > MaxEventSize {
		return reject(ReasonOversize, "encoding of %d bytes exceeds %d", e.Size(), MaxEventSize)
	}
	if err := e.Verify(); err != nil {
		return err
	}
	return CheckContext(e, l)
}

// CheckContext checks an event against what is stored: a non-create event's
// room must be known (its create event stored), and every stored parent must
// belong to the same room. Stores run it inside Put, atomically with the
// write; [Validate] runs it too.
func CheckContext(e *Event, l Lookup) error {
	if e.Kind == KindCreate {
		return nil
	}
	room, ok, err := l.Room(e.Room.CreateID())
	if err != nil {
		return fmt.Errorf("dag: look up room %v: %w", e.Room, err)
	}
	if !ok || room != e.Room {
		return reject(ReasonUnknownRoom, "room %v of event %v", e.Room, e.ID())
	}
	for _, p := range e.Prev {
		room, ok, err := l.Room(p)
		if err != nil {
			return fmt.Errorf("dag: look up parent %v: %w", p, err)
		}
		if ok && room != e.Room {
			return reject(ReasonForeignParent, "parent %v of event %v is in room %v, not %v", p, e.ID(), room, e.Room)
		}
	}
	return nil
}
