package p2p

import (
	"time"

	"github.com/rhizome-chat/rhizome/dag"
)

// Default gossip event rates (docs/protocol.md, "Admission"). An honest
// server sends a few events per second per room, and a burst after a
// partition heals goes through sync, which these limits do not slow.
var (
	defaultOriginRate = Rate{PerSecond: 200, Burst: 1000}
	defaultRoomRate   = Rate{PerSecond: 500, Burst: 2000}
)

// roomOrigin keys the per-origin bucket of a room.
type roomOrigin struct {
	room   dag.RoomID
	origin dag.ServerID
}

// eventRate bounds the gossip events the validator lets through, per room
// and per (room, origin), with token buckets. Only events of writers reach
// it, so its maps are as small as the joined rooms and their writers.
type eventRate struct {
	origin *limiter[roomOrigin]
	room   *limiter[dag.RoomID]
}

func newEventRate(origin, room Rate, now func() time.Time) *eventRate {
	return &eventRate{origin: newLimiter[roomOrigin](origin, now), room: newLimiter[dag.RoomID](room, now)}
}

// allow takes a token for one event of origin in room from both buckets,
// and returns the rejection when one of them is empty (0 when allowed).
func (r *eventRate) allow(room dag.RoomID, origin dag.ServerID) Rejection {
	if !r.origin.allow(roomOrigin{room, origin}) {
		return RejectOriginRate
	}
	if !r.room.allow(room) {
		return RejectRoomRate
	}
	return 0
}
