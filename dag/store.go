package dag

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by Store methods for an event that is not stored.
var ErrNotFound = errors.New("dag: event not found")

// ErrNotEncoded is returned by Put for an event that was neither signed nor
// decoded, so it has no encoding to store.
var ErrNotEncoded = errors.New("dag: event has no encoding (sign or decode it first)")

// ErrPendingFull is wrapped by [*PendingFullError].
var ErrPendingFull = errors.New("dag: too many pending events")

// ErrClosed is returned by a store after Close.
var ErrClosed = errors.New("dag: store closed")

// PendingFullError reports that an event could not be held as pending because
// its room or its origin server already has the maximum number of pending
// events. It is not the peer's fault as such; the caller may retry after
// fetching the missing ancestors.
type PendingFullError struct {
	Scope  string // "room" or "origin"
	Room   RoomID
	Origin ServerID
	Limit  int
}

func (e *PendingFullError) Error() string {
	if e.Scope == "origin" {
		return fmt.Sprintf("dag: origin %v already has %d pending events", e.Origin, e.Limit)
	}
	return fmt.Sprintf("dag: room %v already has %d pending events", e.Room, e.Limit)
}

// Unwrap returns [ErrPendingFull].
func (e *PendingFullError) Unwrap() error { return ErrPendingFull }

// Limits bound what a store holds for events whose parents have not arrived.
//
// When a room or an origin is at its limit, Put refuses the new pending
// event ([*PendingFullError]) and keeps the older ones: those are the
// events whose missing ancestors a puller has already asked for, and
// evicting them would waste the fetch in flight, while a new one comes back
// with the next heads exchange. An origin can fill only its own quota, and
// ExpirePending frees every slot within PendingTTL.
type Limits struct {
	PendingPerRoom   int // pending events per room
	PendingPerOrigin int // pending events per origin server, over all rooms
	// PendingTTL is how long a pending event is held: [Store.ExpirePending]
	// drops the ones that arrived longer ago.
	PendingTTL time.Duration
	// Now stamps the arrival of each pending event. Package dag has no
	// clock of its own: a [MemStore] without one stamps nothing and never
	// expires pending events; dag/badgerstore defaults it to time.Now.
	Now func() time.Time
}

// DefaultLimits are the limits a store uses when given zero values.
var DefaultLimits = Limits{PendingPerRoom: 10000, PendingPerOrigin: 2000, PendingTTL: 10 * time.Minute}

// WithDefaults returns l with every zero field replaced by its default
// (Now stays as given).
func (l Limits) WithDefaults() Limits {
	if l.PendingPerRoom <= 0 {
		l.PendingPerRoom = DefaultLimits.PendingPerRoom
	}
	if l.PendingPerOrigin <= 0 {
		l.PendingPerOrigin = DefaultLimits.PendingPerOrigin
	}
	if l.PendingTTL <= 0 {
		l.PendingTTL = DefaultLimits.PendingTTL
	}
	return l
}

// PutStatus says what Put did with an event.
type PutStatus uint8

// Put outcomes.
const (
	// StatusStored: the event was stored; all its ancestors are stored.
	StatusStored PutStatus = iota + 1
	// StatusDuplicate: the event was already stored; nothing changed.
	StatusDuplicate
	// StatusPending: some parents are missing; the event is held (durably)
	// and will be stored when they arrive.
	StatusPending
	// StatusAlreadyPending: the event was already held as pending.
	StatusAlreadyPending
)

// String returns the status name.
func (s PutStatus) String() string {
	switch s {
	case StatusStored:
		return "stored"
	case StatusDuplicate:
		return "duplicate"
	case StatusPending:
		return "pending"
	case StatusAlreadyPending:
		return "already-pending"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// PutResult reports the outcome of a Put.
type PutResult struct {
	ID     EventID
	Status PutStatus
	// Missing lists, for StatusPending and StatusAlreadyPending, the parents
	// that are not stored yet, ascending.
	Missing []EventID
	// Released lists pending events that were stored because this event
	// arrived, in the order they were stored (topological: depth, then ID).
	Released []EventID
	// Dropped lists pending events that were discarded when their parents
	// arrived because a parent turned out to be in another room.
	Dropped []EventID
}

// Position is an event's place in a room's topological order: its depth
// (0 for the create event, else one more than its deepest parent, computed
// locally and never taken from the wire) and then its ID. Ordering by
// Position is a topological order of the DAG.
type Position struct {
	Depth uint64
	ID    EventID
}

// Compare orders positions by depth, then ID.
func (p Position) Compare(q Position) int {
	switch {
	case p.Depth < q.Depth:
		return -1
	case p.Depth > q.Depth:
		return 1
	}
	return p.ID.Compare(q.ID)
}

// LogEntry is one entry of a room's arrival log.
type LogEntry struct {
	Seq uint64 // 1 for the first event stored in the room, then +1 per event
	ID  EventID
}

// Meta is what a store records about a stored event besides its bytes.
type Meta struct {
	Room  RoomID
	Depth uint64
	Seq   uint64 // position in the room's arrival log
}

// Store keeps the events of many rooms. Implementations: [MemStore] and
// dag/badgerstore; both pass dag/dagtest.RunStoreTests. All methods are safe
// for concurrent use. An event is "stored" once it and all its ancestors are;
// events whose parents are missing are "pending" and are not visible through
// Get, Has, Tips, the log or Topo until they are stored.
type Store interface {
	// Room returns the room of a stored event (see [Lookup]).
	Room(id EventID) (room RoomID, ok bool, err error)

	// Put stores e, or holds it as pending if some parents are missing, and
	// releases pending events that e completes. It is idempotent. It checks
	// the structural and context rules (unknown room, foreign parent) and
	// returns a [*RejectError] for a violation, but it does not verify the
	// signature: callers run [Validate] or [Event.Verify] first. A store that
	// persists returns only once the outcome would survive a crash.
	Put(e *Event) (PutResult, error)
	// PutAll puts evs in order, exactly as len(evs) calls of Put would, and
	// returns each outcome: res[i] and errs[i] are what Put(evs[i]) would
	// have returned. A store that persists makes them durable together and
	// returns once all are, so a caller with many events (a sync answer, a
	// backfill) waits for one group commit instead of one per event.
	PutAll(evs []*Event) (res []PutResult, errs []error)
	// Get returns a stored event, or an error wrapping [ErrNotFound].
	Get(id EventID) (*Event, error)
	// Has reports whether an event is stored.
	Has(id EventID) (bool, error)
	// Meta returns the metadata of a stored event, or [ErrNotFound].
	Meta(id EventID) (Meta, error)
	// Tips returns the room's forward extremities (stored events without a
	// stored child), ascending.
	Tips(room RoomID) ([]EventID, error)
	// TipsAfter returns one page of Tips: up to limit tips above after
	// (from the lowest for the zero ID), ascending, and whether there are
	// more above the last one returned.
	TipsAfter(room RoomID, after EventID, limit int) (tips []EventID, more bool, err error)
	// Parents returns the parents of a stored event, ascending.
	Parents(id EventID) ([]EventID, error)
	// Children returns the stored children of a stored event, ascending.
	Children(id EventID) ([]EventID, error)
	// Topo returns up to limit stored events of the room that come strictly
	// after the position after, in topological order (depth, then ID). Pass
	// the zero Position to start at the create event, and the Position of
	// the last event returned to continue.
	Topo(room RoomID, after Position, limit int) ([]*Event, error)
	// Log returns up to limit entries of the room's arrival log with Seq
	// greater than after. Pass 0 to start, and the last Seq to resume.
	Log(room RoomID, after uint64, limit int) ([]LogEntry, error)
	// Missing returns up to limit IDs that are neither stored nor pending and
	// are needed to complete the given heads: the heads themselves if
	// unknown, and the missing ancestors reachable through pending events.
	// The walk is breadth first from the heads, each level in ID order.
	Missing(heads []EventID, limit int) ([]EventID, error)
	// Pending returns the IDs of the room's pending events, ascending.
	Pending(room RoomID) ([]EventID, error)
	// ExpirePending drops every pending event that has been held for
	// Limits.PendingTTL or longer at now, with what it waited for, and
	// returns how many it dropped. Their slots count no more against the
	// pending limits, and their missing parents are no longer reported by
	// Missing. A store that persists returns once the drop is durable.
	ExpirePending(now time.Time) (n int, err error)
	// PurgeRoom removes every stored and pending event of the room with all
	// its indexes (tips, arrival log, topological order, child edges), so
	// that the store looks as if the room had never been seen. It is
	// idempotent. A store that persists returns once the purge is durable,
	// and a crash during it leaves the room either whole or gone once the
	// store is open again, never in part (dag/badgerstore: docs/events.md
	// 4.3). After it, an event of the room is refused as of an unknown room
	// until its create event is put again, which starts the room afresh.
	PurgeRoom(room RoomID) error
	// Close releases the store.
	Close() error
}
