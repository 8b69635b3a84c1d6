package node

import (
	"net/http"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Admin API for rooms (docs/api.md, "Admin API"): list the rooms this node
// replicates, leave one (forget it, keep its events), purge one (forget it
// and delete its events).

// adminRoomRoutes registers the admin room endpoints on mux.
func (n *Node) adminRoomRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/admin/rooms", n.admin(n.handleAdminListRooms))
	mux.HandleFunc("POST /v1/admin/rooms/{room}/leave", n.admin(n.handleAdminLeaveRoom))
	mux.HandleFunc("POST /v1/admin/rooms/{room}/purge", n.admin(n.handleAdminPurgeRoom))
}

func (n *Node) handleAdminListRooms(w http.ResponseWriter, r *http.Request) {
	recs, err := n.local.Rooms()
	if err != nil {
		n.fail(w, r, err)
		return
	}
	out := clientapi.AdminRooms{Rooms: []clientapi.AdminRoom{}}
	for _, id := range n.rooms.list() {
		rec := recs[id]
		ar := clientapi.AdminRoom{Room: id.String(), How: rec.How, Via: rec.Via, Awaiting: rec.Pending, LocalParticipants: []string{}, Servers: []clientapi.Server{}}
		if ar.Via == nil {
			ar.Via = []string{}
		}
		if rec.Since > 0 {
			ar.Since = time.UnixMilli(rec.Since).UTC().Format(time.RFC3339)
		}
		st, processed := n.rooms.summary(id)
		ar.Events = processed
		if st != nil {
			ar.Name = st.Metadata().Name
			for _, p := range st.Participants() {
				if _, ok := n.accounts.LocalUser(string(p.User)); ok {
					ar.LocalParticipants = append(ar.LocalParticipants, string(p.User))
				}
			}
			ar.Participants = len(st.Participants())
			ar.Servers = serversOf(st)
		}
		out.Rooms = append(out.Rooms, ar)
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleAdminLeaveRoom(w http.ResponseWriter, r *http.Request) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		n.fail(w, r, err)
		return
	}
	if _, joined := n.rooms.state(room); !joined {
		n.fail(w, r, apiErr(http.StatusNotFound, clientapi.CodeNotFound, "room %v is not joined here; rhizome admin rooms list shows the joined rooms (purge works for a left room too)", room))
		return
	}
	if err := n.rooms.forget(room); err != nil {
		n.fail(w, r, err)
		return
	}
	n.joins.unreserve(room)
	n.log.Info("room left by the operator", "sys", "api", "room", room)
	writeJSON(w, http.StatusOK, clientapi.RoomLeft{Room: room.String(), Left: true})
}

func (n *Node) handleAdminPurgeRoom(w http.ResponseWriter, r *http.Request) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		n.fail(w, r, err)
		return
	}
	_, joined := n.rooms.state(room)
	if err := n.rooms.purge(room); err != nil {
		n.fail(w, r, err)
		return
	}
	n.joins.unreserve(room)
	n.log.Info("room purged by the operator", "sys", "api", "room", room, "was_joined", joined)
	writeJSON(w, http.StatusOK, clientapi.RoomPurged{Room: room.String(), Purged: true, WasJoined: joined})
}

// summary returns a room's state (nil before its create event is
// processed) and its arrival-log position processed so far.
func (rs *rooms) summary(room dag.RoomID) (st *roomstate.State, processed uint64) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if info := rs.m[room]; info != nil {
		return info.state, info.processed
	}
	return nil, 0
}
