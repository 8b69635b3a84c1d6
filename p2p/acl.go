package p2p

import (
	"sync"

	"github.com/rhizome-chat/rhizome/dag"
)

// RoomACL answers the one question the transport asks about room state:
// does a server participate in a room. The node implements it from the room
// state (the set of participating servers); p2p never derives membership
// itself. It must be safe for concurrent use and fast (it is called per
// request and per gossip peer).
type RoomACL interface {
	// Participates reports whether server takes part in room.
	Participates(room dag.RoomID, server dag.ServerID) bool
}

// MemACL is an in-memory [RoomACL] for tests and simple setups.
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
