package p2p

import (
	"sync"

	"github.com/rhizome-chat/rhizome/dag"
)

// RoomACL answers the questions the transport asks about room state: which
// servers participate in a room (who may read it and serve or ask for its
// events), and whose events may be stored in it (who may write it). The
// node implements it from the room state; p2p never derives membership
// itself. It must be safe for concurrent use, and Participates and Writer
// must be fast (they are called per request, per gossip message and per
// gossip peer).
type RoomACL interface {
	// Participates reports whether server takes part in room: it may
	// receive the room's gossip and use the sync protocol for it.
	Participates(room dag.RoomID, server dag.ServerID) bool
	// Writer reports whether events whose origin is server may be stored
	// in room: server is a server of the room in some room state the node
	// has accepted (the create event's initial server list, or a state
	// that an accepted commit or state event produced, on any branch).
	// This is the union over the states seen, not the exact state at an
	// event's parents (docs/protocol.md, "Admission"). A room's create
	// event is admitted without asking: its ID is the room ID.
	Writer(room dag.RoomID, server dag.ServerID) bool
	// WritesAt reports whether ev's origin may write room at the event's
	// parents, for an event Writer admits: a server of the room in the
	// state the event builds on (the node reads it from the room engine:
	// the state after the commit the event names, which room's rule R
	// makes one of its parents). It answers false while that state is not
	// known here (the mesh settles and asks again; a later pull brings
	// the event back), and true for events that name no state (votes,
	// state events: the engine judges them).
	WritesAt(room dag.RoomID, ev *dag.Event) bool
	// Settle brings Participates, Writer and WritesAt up to date with the room's
	// events already in the store (the node processes the stored events it
	// has not processed yet) and returns when done. The mesh calls it
	// before it refuses a pulled event for its origin, so that a server
	// added by an event stored a moment ago is known. It may block for the
	// time that processing takes; it must not wait for the mesh.
	Settle(room dag.RoomID)
}

// MemACL is an in-memory [RoomACL] for tests and simple setups: the
// participants of a room are also its writers, and Settle does nothing.
type MemACL struct {
	mu    sync.RWMutex
	rooms map[dag.RoomID]map[dag.ServerID]bool
}

// NewMemACL returns an empty ACL: nobody participates anywhere.
func NewMemACL() *MemACL {
	return &MemACL{rooms: make(map[dag.RoomID]map[dag.ServerID]bool)}
}

// Allow makes servers participants of room.
func (a *MemACL) Allow(room dag.RoomID, servers ...dag.ServerID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.rooms[room]
	if m == nil {
		m = make(map[dag.ServerID]bool)
		a.rooms[room] = m
	}
	for _, s := range servers {
		m[s] = true
	}
}

// Revoke removes servers from room's participants.
func (a *MemACL) Revoke(room dag.RoomID, servers ...dag.ServerID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range servers {
		delete(a.rooms[room], s)
	}
}

// Participates implements [RoomACL].
func (a *MemACL) Participates(room dag.RoomID, server dag.ServerID) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.rooms[room][server]
}

// Writer implements [RoomACL]: the participants are the writers.
func (a *MemACL) Writer(room dag.RoomID, server dag.ServerID) bool {
	return a.Participates(room, server)
}

// WritesAt implements [RoomACL]: a MemACL knows no room states, so every
// event of a writer is admitted.
func (a *MemACL) WritesAt(dag.RoomID, *dag.Event) bool { return true }

// Settle implements [RoomACL]; a MemACL is always up to date.
func (a *MemACL) Settle(dag.RoomID) {}
