package node

import (
	"net/http"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	engine "github.com/rhizome-chat/rhizome/room"
)

// codeStaleParent answers a commit whose parent is not this server's
// canonical tip (docs/api.md, "Ordering").
const codeStaleParent = "stale_parent"

// codeStaleEpoch answers a message or proposal whose epoch is not this
// server's canonical tip (docs/api.md, "Ordering").
const codeStaleEpoch = "stale_epoch"

// checkParent refuses a local commit whose parent is not the room's
// canonical tip here: another commit already holds that slot, so the client
// must rebuild its commit on the tip. The caller holds writeMu, so the tip
// cannot move between this check and the store.
func (rs *rooms) checkParent(room dag.RoomID, content []byte) error {
	c, err := roomevent.DecodeCommit(content)
	if err != nil {
		return &engine.RejectError{Reason: engine.ReasonMalformedContent, Err: err}
	}
	rs.mu.RLock()
	info := rs.m[room]
	rs.mu.RUnlock()
	if info == nil || info.eng == nil {
		return errRoomUnknown(room)
	}
	if tip := info.eng.Tip(); c.Parent != tip {
		return apiErr(http.StatusConflict, codeStaleParent,
			"parent %v is not the canonical tip of room %v on this server; the tip is %v: apply the commits up to it (GET /v1/rooms/%v/order) and build the commit on %v",
			c.Parent, room, tip, room, tip)
	}
	return nil
}

// checkCurrentEpoch refuses a local message or proposal that is not in
// the room's canonical epoch here. A member who joined in a later epoch
// could never decrypt it, so it would be acknowledged and yet lost for
// them; the client catches up and encrypts it again in the tip's epoch.
// The caller holds writeMu, as for checkParent.
func (rs *rooms) checkCurrentEpoch(room dag.RoomID, kind dag.Kind, content []byte) error {
	var epoch dag.EventID
	switch kind {
	case dag.KindMessage:
		c, err := roomevent.DecodeMessage(content)
		if err != nil {
			return &engine.RejectError{Reason: engine.ReasonMalformedContent, Err: err}
		}
		epoch = c.Epoch
	case dag.KindProposal:
		c, err := roomevent.DecodeProposal(content)
		if err != nil {
			return &engine.RejectError{Reason: engine.ReasonMalformedContent, Err: err}
		}
		epoch = c.Epoch
	default:
		return nil
	}
	rs.mu.RLock()
	info := rs.m[room]
	rs.mu.RUnlock()
	if info == nil || info.eng == nil {
		return errRoomUnknown(room)
	}
	if tip := info.eng.Tip(); epoch != tip {
		return apiErr(http.StatusConflict, codeStaleEpoch,
			"epoch %v is not the canonical epoch of room %v on this server; it is %v: apply the commits up to it (GET /v1/rooms/%v/order) and encrypt again in %v",
			epoch, room, tip, room, tip)
	}
	return nil
}

// orderLine is an order line of the event stream (docs/api.md, "Ordering").
type orderLine struct {
	Type          string   `json:"type"` // "order"
	Cursor        uint64   `json:"cursor"`
	Room          string   `json:"room"`
	Tip           string   `json:"tip"`
	Certified     string   `json:"certified"`
	Undone        []string `json:"undone"`
	Applied       []string `json:"applied"`
	RetainUntilMS int64    `json:"retain_until_ms"`
}

func describeOrder(cursor uint64, room dag.RoomID, rec *orderRecord) orderLine {
	l := orderLine{
		Type: "order", Cursor: cursor, Room: room.String(), Tip: rec.Tip, Certified: rec.Certified,
		Undone: rec.Undone, Applied: rec.Applied, RetainUntilMS: rec.RetainUntil,
	}
	if l.Undone == nil {
		l.Undone = []string{}
	}
	if l.Applied == nil {
		l.Applied = []string{}
	}
	return l
}

// handleGetOrder serves GET /v1/rooms/{room}/order: the room's canonical
// commit chain on this server, its tip and its last certified commit.
func (n *Node) handleGetOrder(w http.ResponseWriter, r *http.Request, d *device) {
	room, _, err := n.roomFor(r, d)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	v, ok := n.rooms.order(room)
	if !ok {
		n.fail(w, r, errRoomUnknown(room))
		return
	}
	canon := make([]string, len(v.chain))
	for i, c := range v.chain {
		canon[i] = c.String()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"room": room.String(), "tip": v.tip().String(), "certified": v.certified().String(), "canonical": canon,
	})
}
