package node

import (
	"net/http"

	"github.com/rhizome-chat/rhizome/dag"
)

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
