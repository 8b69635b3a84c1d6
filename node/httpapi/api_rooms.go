package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/roomstate"
)

func (s *Server) sender(d *device) roomevent.Sender {
	return roomevent.Sender{User: s.accounts.UserURI(d.User), Client: s.accounts.DeviceURI(d.User, d.Device)}
}

// submitted answers a stored event: its ID and its feed cursor.
func (s *Server) submitted(w http.ResponseWriter, ev *dag.Event, cur uint64) {
	writeJSON(w, http.StatusCreated, clientapi.Submitted{Room: ev.RoomID().String(), Event: ev.ID().String(), Cursor: cur})
}

func (s *Server) handleCreateRoom(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.CreateRoomRequest
	if err := readJSON(w, r, MaxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Preset == "" {
		req.Preset = roomstate.PresetPrivateGroup.String()
	}
	preset, ok := roomstate.ParsePreset(req.Preset)
	if !ok {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "unknown preset %q: use direct-message, private-group, public-room or announcement-channel", req.Preset))
		return
	}
	if req.RoomURI == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		req.RoomURI = "mimi://" + s.serverName + "/r/" + hex.EncodeToString(b[:])
	}
	servers := []roomstate.Server{{ID: roomstate.ServerID(s.self), Domain: s.serverName}}
	for i, sv := range req.Servers {
		id, err := parseServerID(sv.ServerID)
		if err != nil {
			s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "servers[%d].server_id: %v (GET /v1/server on that node shows it)", i, err))
			return
		}
		if sv.Domain == "" {
			s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "servers[%d].domain is empty: give the server_name of that node", i))
			return
		}
		if id == s.self {
			continue
		}
		servers = append(servers, roomstate.Server{ID: roomstate.ServerID(id), Domain: sv.Domain})
	}
	snd := s.sender(d)
	if preset == roomstate.PresetDirectMessage {
		if err := s.checkPeer(r.Context(), snd.User, req.Peer, servers); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	st, err := roomstate.NewRoom(preset, roomstate.RoomConfig{
		Room: roomstate.URI(req.RoomURI), Name: req.Name, Creator: roomstate.URI(snd.User), Peer: roomstate.URI(req.Peer), Servers: servers,
	})
	if err != nil {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "room settings: %v", err))
		return
	}
	comps, err := st.Components()
	if err != nil {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "room settings: %v", err))
		return
	}
	stateBytes, err := roomstate.MarshalComponents(comps)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	content, err := (&roomevent.Create{Creator: snd, Preset: preset.String(), State: stateBytes}).Marshal()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ev, cur, err := s.rooms.Submit(r.Context(), dag.RoomID{}, dag.KindCreate, content)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.submitted(w, ev, cur)
}

// roomFor parses the {room} path value and returns the room's state; the
// caller's user must be listed in the room (any role).
func (s *Server) roomFor(r *http.Request, d *device) (dag.RoomID, *roomstate.State, error) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		return room, nil, err
	}
	st, joined := s.rooms.State(room)
	if !joined || st == nil {
		return room, nil, apierror.RoomUnknown(room)
	}
	if st.RoleOf(roomstate.URI(s.accounts.UserURI(d.User))) == roomstate.RoleNone {
		return room, nil, apierror.New(http.StatusForbidden, clientapi.CodeForbidden, "user %s is not a participant of room %v; ask a member to add you", s.accounts.UserURI(d.User), room)
	}
	return room, st, nil
}

func (s *Server) handleListRooms(w http.ResponseWriter, r *http.Request, d *device) {
	me := roomstate.URI(s.accounts.UserURI(d.User))
	out := clientapi.RoomList{Rooms: []clientapi.RoomSummary{}}
	for _, id := range s.rooms.List() {
		st, _ := s.rooms.State(id)
		if st == nil || st.RoleOf(me) == roomstate.RoleNone {
			continue
		}
		out.Rooms = append(out.Rooms, clientapi.RoomSummary{
			Room: id.String(), Name: st.Metadata().Name, RoomURI: string(st.Metadata().RoomURI),
			Role: uint32(st.RoleOf(me)), Members: len(st.Participants()),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetRoom(w http.ResponseWriter, r *http.Request, d *device) {
	room, st, err := s.roomFor(r, d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := clientapi.Room{
		Room: room.String(), Name: st.Metadata().Name, RoomURI: string(st.Metadata().RoomURI),
		Members: []clientapi.Member{}, Servers: serversOf(st), Tips: []string{},
	}
	for _, p := range st.Participants() {
		name := ""
		if role, ok := st.Role(p.Role); ok {
			name = role.Name
		}
		out.Members = append(out.Members, clientapi.Member{User: string(p.User), Role: uint32(p.Role), RoleName: name})
	}
	tips, err := s.events.Tips(room)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, t := range tips {
		out.Tips = append(out.Tips, t.String())
	}
	writeJSON(w, http.StatusOK, out)
}

// serversOf lists a room's servers as the API shows them.
func serversOf(st *roomstate.State) []clientapi.Server {
	out := []clientapi.Server{}
	for _, sv := range st.Servers() {
		out = append(out, clientapi.Server{ServerID: dag.ServerID(sv.ID).String(), Domain: sv.Domain})
	}
	return out
}

func (s *Server) handleJoinRoom(w http.ResponseWriter, r *http.Request, d *device) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req clientapi.JoinRequest
	if err := readJSON(w, r, MaxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var via []dag.ServerID
	for i, v := range req.Via {
		id, err := parseServerID(v)
		if err != nil {
			s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "via[%d]: %v", i, err))
			return
		}
		via = append(via, id)
	}
	if st, joined := s.rooms.State(room); joined {
		writeJSON(w, http.StatusAccepted, clientapi.Joined{Room: room.String(), Known: st != nil})
		return
	}
	if len(via) == 0 {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "room %v is not known here yet: name at least one server of the room in \"via\"", room))
		return
	}
	if err := s.rooms.Join(r.Context(), d.User, room, via); err != nil {
		s.fail(w, r, err)
		return
	}
	st, _ := s.rooms.State(room)
	writeJSON(w, http.StatusAccepted, clientapi.Joined{Room: room.String(), Known: st != nil})
}

// handleSubmitBinary accepts a message or proposal: the MLSMessage bytes as
// the body and the epoch's commit event ID in ?epoch=.
func (s *Server) handleSubmitBinary(kind dag.Kind) func(w http.ResponseWriter, r *http.Request, d *device) {
	return func(w http.ResponseWriter, r *http.Request, d *device) {
		room, _, err := s.roomFor(r, d)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		epoch, err := parseEvent("epoch", r.URL.Query().Get("epoch"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		body, err := readBinary(w, r, dag.MaxEventSize)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var content []byte
		if kind == dag.KindMessage {
			content, err = (&roomevent.Message{Sender: s.sender(d), Epoch: epoch, Message: body}).Marshal()
		} else {
			content, err = (&roomevent.Proposal{Sender: s.sender(d), Epoch: epoch, Proposal: body}).Marshal()
		}
		if err != nil {
			s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "encode event: %v", err))
			return
		}
		ev, cur, err := s.rooms.Submit(r.Context(), room, kind, content)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.submitted(w, ev, cur)
	}
}

func decodeChanges(in []clientapi.Change) []roomevent.Change {
	out := make([]roomevent.Change, len(in))
	for i, c := range in {
		out[i] = roomevent.Change{Component: c.Component, Update: c.Update}
	}
	return out
}

func (s *Server) handleSubmitCommit(w http.ResponseWriter, r *http.Request, d *device) {
	room, _, err := s.roomFor(r, d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req clientapi.CommitRequest
	if err := readJSON(w, r, 2*dag.MaxEventSize, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c := &roomevent.Commit{Sender: s.sender(d), Commit: req.Commit, Changes: decodeChanges(req.Changes)}
	if c.Parent, err = parseEvent("parent", req.Parent); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.Welcome) > 0 {
		c.Welcome = req.Welcome
	}
	if len(req.GroupInfo) > 0 {
		c.GroupInfo = req.GroupInfo
	}
	content, err := c.Marshal()
	if err != nil {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "encode event: %v", err))
		return
	}
	ev, cur, err := s.rooms.Submit(r.Context(), room, dag.KindCommit, content)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.submitted(w, ev, cur)
}

func (s *Server) handleSubmitState(w http.ResponseWriter, r *http.Request, d *device) {
	room, _, err := s.roomFor(r, d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req clientapi.StateRequest
	if err := readJSON(w, r, 2*dag.MaxEventSize, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	st := &roomevent.State{Sender: s.sender(d), SignatureKey: d.SignatureKey, Changes: decodeChanges(req.Changes), Signature: req.Signature}
	if err := st.Verify(room); err != nil {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeRejected, "%v: sign the StateTBS of docs/api.md with the device's registered Ed25519 signature key", err))
		return
	}
	content, err := st.Marshal()
	if err != nil {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "encode event: %v", err))
		return
	}
	ev, cur, err := s.rooms.Submit(r.Context(), room, dag.KindState, content)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.submitted(w, ev, cur)
}
