package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

func (n *Node) sender(d *device) roomevent.Sender {
	return roomevent.Sender{User: n.accounts.UserURI(d.User), Client: n.accounts.DeviceURI(d.User, d.Device)}
}

// submitted answers a stored event: its ID and its feed cursor.
func (n *Node) submitted(w http.ResponseWriter, ev *dag.Event, cur uint64) {
	writeJSON(w, http.StatusCreated, clientapi.Submitted{Room: ev.RoomID().String(), Event: ev.ID().String(), Cursor: cur})
}

func (n *Node) handleCreateRoom(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.CreateRoomRequest
	if err := readJSON(w, r, maxJSONBody, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	if req.Preset == "" {
		req.Preset = roomstate.PresetPrivateGroup.String()
	}
	preset, ok := roomstate.ParsePreset(req.Preset)
	if !ok {
		n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "unknown preset %q: use direct-message, private-group, public-room or announcement-channel", req.Preset))
		return
	}
	if req.RoomURI == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		req.RoomURI = "mimi://" + n.cfg.ServerName + "/r/" + hex.EncodeToString(b[:])
	}
	servers := []roomstate.Server{{ID: roomstate.ServerID(n.ServerID()), Domain: n.cfg.ServerName}}
	for i, s := range req.Servers {
		id, err := parseServerID(s.ServerID)
		if err != nil {
			n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "servers[%d].server_id: %v (GET /v1/server on that node shows it)", i, err))
			return
		}
		if s.Domain == "" {
			n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "servers[%d].domain is empty: give the server_name of that node", i))
			return
		}
		if id == n.ServerID() {
			continue
		}
		servers = append(servers, roomstate.Server{ID: roomstate.ServerID(id), Domain: s.Domain})
	}
	snd := n.sender(d)
	if preset == roomstate.PresetDirectMessage {
		if err := n.checkPeer(r.Context(), snd.User, req.Peer, servers); err != nil {
			n.fail(w, r, err)
			return
		}
	}
	st, err := roomstate.NewRoom(preset, roomstate.RoomConfig{
		Room: roomstate.URI(req.RoomURI), Name: req.Name, Creator: roomstate.URI(snd.User), Peer: roomstate.URI(req.Peer), Servers: servers,
	})
	if err != nil {
		n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "room settings: %v", err))
		return
	}
	comps, err := st.Components()
	if err != nil {
		n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "room settings: %v", err))
		return
	}
	stateBytes, err := roomstate.MarshalComponents(comps)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	content, err := (&roomevent.Create{Creator: snd, Preset: preset.String(), State: stateBytes}).Marshal()
	if err != nil {
		n.fail(w, r, err)
		return
	}
	ev, cur, err := n.rooms.submit(r.Context(), dag.RoomID{}, dag.KindCreate, content)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	n.submitted(w, ev, cur)
}

// roomFor parses the {room} path value and returns the room's state; the
// caller's user must be listed in the room (any role).
func (n *Node) roomFor(r *http.Request, d *device) (dag.RoomID, *roomstate.State, error) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		return room, nil, err
	}
	st, joined := n.rooms.state(room)
	if !joined || st == nil {
		return room, nil, errRoomUnknown(room)
	}
	if st.RoleOf(roomstate.URI(n.accounts.UserURI(d.User))) == roomstate.RoleNone {
		return room, nil, apiErr(http.StatusForbidden, clientapi.CodeForbidden, "user %s is not a participant of room %v; ask a member to add you", n.accounts.UserURI(d.User), room)
	}
	return room, st, nil
}

func (n *Node) handleListRooms(w http.ResponseWriter, r *http.Request, d *device) {
	me := roomstate.URI(n.accounts.UserURI(d.User))
	out := clientapi.RoomList{Rooms: []clientapi.RoomSummary{}}
	for _, id := range n.rooms.list() {
		st, _ := n.rooms.state(id)
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

func (n *Node) handleGetRoom(w http.ResponseWriter, r *http.Request, d *device) {
	room, st, err := n.roomFor(r, d)
	if err != nil {
		n.fail(w, r, err)
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
	tips, err := n.store.Tips(room)
	if err != nil {
		n.fail(w, r, err)
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
	for _, s := range st.Servers() {
		out = append(out, clientapi.Server{ServerID: dag.ServerID(s.ID).String(), Domain: s.Domain})
	}
	return out
}

func (n *Node) handleJoinRoom(w http.ResponseWriter, r *http.Request, d *device) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		n.fail(w, r, err)
		return
	}
	var req clientapi.JoinRequest
	if err := readJSON(w, r, maxJSONBody, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	var via []dag.ServerID
	for i, v := range req.Via {
		id, err := parseServerID(v)
		if err != nil {
			n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "via[%d]: %v", i, err))
			return
		}
		via = append(via, id)
	}
	if st, joined := n.rooms.state(room); joined {
		writeJSON(w, http.StatusAccepted, clientapi.Joined{Room: room.String(), Known: st != nil})
		return
	}
	if len(via) == 0 {
		n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "room %v is not known here yet: name at least one server of the room in \"via\"", room))
		return
	}
	if err := n.joins.viaAPI(r.Context(), d.User, room, via); err != nil {
		var je *joinError
		if errors.As(err, &je) {
			err = je.apiError()
		}
		n.fail(w, r, err)
		return
	}
	st, _ := n.rooms.state(room)
	writeJSON(w, http.StatusAccepted, clientapi.Joined{Room: room.String(), Known: st != nil})
}

// handleSubmitBinary accepts a message or proposal: the MLSMessage bytes as
// the body and the epoch's commit event ID in ?epoch=.
func (n *Node) handleSubmitBinary(kind dag.Kind) func(w http.ResponseWriter, r *http.Request, d *device) {
	return func(w http.ResponseWriter, r *http.Request, d *device) {
		room, _, err := n.roomFor(r, d)
		if err != nil {
			n.fail(w, r, err)
			return
		}
		epoch, err := parseEvent("epoch", r.URL.Query().Get("epoch"))
		if err != nil {
			n.fail(w, r, err)
			return
		}
		body, err := readBinary(w, r, dag.MaxEventSize)
		if err != nil {
			n.fail(w, r, err)
			return
		}
		var content []byte
		if kind == dag.KindMessage {
			content, err = (&roomevent.Message{Sender: n.sender(d), Epoch: epoch, Message: body}).Marshal()
		} else {
			content, err = (&roomevent.Proposal{Sender: n.sender(d), Epoch: epoch, Proposal: body}).Marshal()
		}
		if err != nil {
			n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "encode event: %v", err))
			return
		}
		ev, cur, err := n.rooms.submit(r.Context(), room, kind, content)
		if err != nil {
			n.fail(w, r, err)
			return
		}
		n.submitted(w, ev, cur)
	}
}

func decodeChanges(in []clientapi.Change) []roomevent.Change {
	out := make([]roomevent.Change, len(in))
	for i, c := range in {
		out[i] = roomevent.Change{Component: c.Component, Update: c.Update}
	}
	return out
}

func (n *Node) handleSubmitCommit(w http.ResponseWriter, r *http.Request, d *device) {
	room, _, err := n.roomFor(r, d)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	var req clientapi.CommitRequest
	if err := readJSON(w, r, 2*dag.MaxEventSize, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	c := &roomevent.Commit{Sender: n.sender(d), Commit: req.Commit, Changes: decodeChanges(req.Changes)}
	if c.Parent, err = parseEvent("parent", req.Parent); err != nil {
		n.fail(w, r, err)
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
		n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "encode event: %v", err))
		return
	}
	ev, cur, err := n.rooms.submit(r.Context(), room, dag.KindCommit, content)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	n.submitted(w, ev, cur)
}

func (n *Node) handleSubmitState(w http.ResponseWriter, r *http.Request, d *device) {
	room, _, err := n.roomFor(r, d)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	var req clientapi.StateRequest
	if err := readJSON(w, r, 2*dag.MaxEventSize, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	st := &roomevent.State{Sender: n.sender(d), SignatureKey: d.SignatureKey, Changes: decodeChanges(req.Changes), Signature: req.Signature}
	if err := st.Verify(room); err != nil {
		n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeRejected, "%v: sign the StateTBS of docs/api.md with the device's registered Ed25519 signature key", err))
		return
	}
	content, err := st.Marshal()
	if err != nil {
		n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "encode event: %v", err))
		return
	}
	ev, cur, err := n.rooms.submit(r.Context(), room, dag.KindState, content)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	n.submitted(w, ev, cur)
}
