package httpapi

import (
	"net/http"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
)

// Admin API for rooms (docs/api.md, "Admin API"): list the rooms this node
// replicates, leave one (forget it, keep its events), purge one (forget it
// and delete its events).

// adminRoomRoutes registers the admin room endpoints on mux.
func (s *Server) adminRoomRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/admin/rooms", s.admin(s.handleAdminListRooms))
	mux.HandleFunc("POST /v1/admin/rooms/{room}/leave", s.admin(s.handleAdminLeaveRoom))
	mux.HandleFunc("POST /v1/admin/rooms/{room}/purge", s.admin(s.handleAdminPurgeRoom))
}

func (s *Server) handleAdminListRooms(w http.ResponseWriter, r *http.Request) {
	recs, err := s.feed.Rooms()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := clientapi.AdminRooms{Rooms: []clientapi.AdminRoom{}}
	for _, id := range s.rooms.List() {
		rec := recs[id]
		ar := clientapi.AdminRoom{Room: id.String(), How: rec.How, Via: rec.Via, Awaiting: rec.Pending, LocalParticipants: []string{}, Servers: []clientapi.Server{}}
		if ar.Via == nil {
			ar.Via = []string{}
		}
		if rec.Since > 0 {
			ar.Since = time.UnixMilli(rec.Since).UTC().Format(time.RFC3339)
		}
		st, processed := s.rooms.Summary(id)
		ar.Events = processed
		if st != nil {
			ar.Name = st.Metadata().Name
			for _, p := range st.Participants() {
				if _, ok := s.accounts.LocalUser(string(p.User)); ok {
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

func (s *Server) handleAdminLeaveRoom(w http.ResponseWriter, r *http.Request) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, joined := s.rooms.State(room); !joined {
		s.fail(w, r, apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "room %v is not joined here; rhizome admin rooms list shows the joined rooms (purge works for a left room too)", room))
		return
	}
	if err := s.rooms.Leave(room); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("room left by the operator", "sys", "api", "room", room)
	writeJSON(w, http.StatusOK, clientapi.RoomLeft{Room: room.String(), Left: true})
}

func (s *Server) handleAdminPurgeRoom(w http.ResponseWriter, r *http.Request) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, joined := s.rooms.State(room)
	if err := s.rooms.Purge(room); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("room purged by the operator", "sys", "api", "room", room, "was_joined", joined)
	writeJSON(w, http.StatusOK, clientapi.RoomPurged{Room: room.String(), Purged: true, WasJoined: joined})
}
