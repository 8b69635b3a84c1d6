package httpapi

import (
	"net/http"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	engine "github.com/rhizome-chat/rhizome/room"
)

// describeOrder turns an order record into its stream line. Undone and
// Applied are never nil: order lines always carry them.
func describeOrder(cursor uint64, room dag.RoomID, rec *engine.OrderRecord) clientapi.StreamLine {
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
func (s *Server) handleGetOrder(w http.ResponseWriter, r *http.Request, d *device) {
	room, _, err := s.roomFor(r, d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, ok := s.rooms.Order(room)
	if !ok {
		s.fail(w, r, apierror.RoomUnknown(room))
		return
	}
	canon := make([]string, len(v.Chain))
	for i, c := range v.Chain {
		canon[i] = c.String()
	}
	writeJSON(w, http.StatusOK, clientapi.Order{Room: room.String(), Tip: v.Tip.String(), Certified: v.Certified.String(), Canonical: canon})
}
