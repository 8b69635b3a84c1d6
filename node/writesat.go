package node

import (
	"slices"
	"sync"

	"github.com/rhizome-chat/rhizome/dag"
	engine "github.com/rhizome-chat/rhizome/room"
)

// maxCachedEpochs bounds the epochs whose servers are cached per room;
// past it the room's cache starts over (each epoch costs one engine lookup
// again).
const maxCachedEpochs = 4096

// epochCache caches, per room, the servers of epochs WritesAt looked up
// (room.Engine.ServersAt): they never change once the engine accepted the
// epoch's commit (servers change only through commits), and an epoch the
// engine refused after settling stays refused (a nil entry). The zero
// value is ready to use.
type epochCache struct {
	mu sync.RWMutex
	m  map[dag.RoomID]map[dag.EventID]*[]dag.ServerID // nil: not an epoch
}

func (c *epochCache) get(room dag.RoomID, epoch dag.EventID) (servers *[]dag.ServerID, cached bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	servers, cached = c.m[room][epoch]
	return servers, cached
}

func (c *epochCache) put(room dag.RoomID, epoch dag.EventID, servers *[]dag.ServerID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[dag.RoomID]map[dag.EventID]*[]dag.ServerID{}
	}
	m := c.m[room]
	if m == nil || len(m) >= maxCachedEpochs {
		m = map[dag.EventID]*[]dag.ServerID{}
		c.m[room] = m
	}
	m[epoch] = servers
}

// drop forgets room (it was left or purged).
func (c *epochCache) drop(room dag.RoomID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, room)
}

// WritesAt implements p2p.RoomACL: an event that names a commit (its
// parent or epoch, one of its parents by the engine's rule R) is admitted
// only if its origin is a server of the room in the state after that
// commit: a server of the room at the event's parents. The answer comes
// from the room's engine (ServersAt) and is cached. An epoch not cached is
// looked up only if the store holds it; the room's stored events are
// processed first (as Settle does), so that a commit stored a moment ago
// counts. Events that name no commit (votes, state events) are left to
// Writer and the engine.
func (rs *rooms) WritesAt(room dag.RoomID, ev *dag.Event) bool {
	epoch, ok := engine.Named(ev)
	if !ok {
		return true
	}
	servers, cached := rs.epochs.get(room, epoch)
	if !cached {
		if has, err := rs.store.Has(epoch); err != nil || !has {
			return false // not an epoch yet: a later pull brings the event back
		}
		var lookedUp bool
		if servers, lookedUp = rs.lookupEpoch(room, epoch); !lookedUp {
			return false
		}
		rs.epochs.put(room, epoch, servers)
	}
	return servers != nil && slices.Contains(*servers, ev.Origin)
}

// lookupEpoch processes room's stored events and asks its engine for the
// servers of epoch (nil if the engine has not accepted it). lookedUp is
// false when the room is not loaded or processing failed: nothing to
// cache.
func (rs *rooms) lookupEpoch(room dag.RoomID, epoch dag.EventID) (servers *[]dag.ServerID, lookedUp bool) {
	rs.writeMu.Lock()
	defer rs.writeMu.Unlock()
	if !rs.settleLocked(room) {
		return nil, false
	}
	rs.mu.RLock()
	info := rs.m[room]
	rs.mu.RUnlock()
	if info == nil || info.eng == nil {
		return nil, false
	}
	s, known := info.eng.ServersAt(epoch)
	if !known {
		return nil, true
	}
	return &s, true
}
