package node

import (
	"net/http"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
)

// describeOrder turns an order record into its stream line. Undone and
// Applied are never nil: order lines always carry them.
func describeOrder(cursor uint64, room dag.RoomID, rec *orderRecord) clientapi.StreamLine {
	l := clientapi.StreamLine{
		Type: clientapi.LineOrder, Cursor: cursor, Room: room.String(), Tip: rec.Tip, Certified: rec.Certified,
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
	writeJSON(w, http.StatusOK, clientapi.Order{Room: room.String(), Tip: v.tip().String(), Certified: v.certified().String(), Canonical: canon})
}
