package node

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

type serverJSON struct {
	ServerID string `json:"server_id"`
	Domain   string `json:"domain"`
}

func (n *Node) sender(d *device) roomevent.Sender {
	return roomevent.Sender{User: n.accounts.userURI(d.User), Client: n.accounts.deviceURI(d.User, d.Device)}
}

// submitted answers a stored event: its ID and its feed cursor.
func (n *Node) submitted(w http.ResponseWriter, ev *dag.Event, cur uint64) {
	writeJSON(w, http.StatusCreated, map[string]any{"room": ev.RoomID().String(), "event": ev.ID().String(), "cursor": cur})
}

func (n *Node) handleCreateRoom(w http.ResponseWriter, r *http.Request, d *device) {
	var req struct {
		Preset  string       `json:"preset"`
		Name    string       `json:"name"`
		RoomURI string       `json:"room_uri"`
		Peer    string       `json:"peer"`
		Servers []serverJSON `json:"servers"`
	}
	if err := readJSON(w, r, maxJSONBody, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	if req.Preset == "" {
		req.Preset = roomstate.PresetPrivateGroup.String()
	}
	preset, ok := roomstate.ParsePreset(req.Preset)
	if !ok {
		n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "unknown preset %q: use direct-message, private-group, public-room or announcement-channel", req.Preset))
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
			n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "servers[%d].server_id: %v (GET /v1/server on that node shows it)", i, err))
			return
		}
		if s.Domain == "" {
			n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "servers[%d].domain is empty: give the server_name of that node", i))
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
		n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "room settings: %v", err))
		return
	}
	comps, err := st.Components()
	if err != nil {
		n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "room settings: %v", err))
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
	if st.RoleOf(roomstate.URI(n.accounts.userURI(d.User))) == roomstate.RoleNone {
		return room, nil, apiErr(http.StatusForbidden, codeForbidden, "user %s is not a participant of room %v; ask a member to add you", n.accounts.userURI(d.User), room)
	}
	return room, st, nil
}

func (n *Node) handleListRooms(w http.ResponseWriter, r *http.Request, d *device) {
	me := roomstate.URI(n.accounts.userURI(d.User))
	out := []map[string]any{}
	for _, id := range n.rooms.list() {
		st, _ := n.rooms.state(id)
		if st == nil || st.RoleOf(me) == roomstate.RoleNone {
			continue
		}
		out = append(out, map[string]any{
			"room": id.String(), "name": st.Metadata().Name, "room_uri": string(st.Metadata().RoomURI),
			"role": st.RoleOf(me), "members": len(st.Participants()),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

func (n *Node) handleGetRoom(w http.ResponseWriter, r *http.Request, d *device) {
	room, st, err := n.roomFor(r, d)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	members := []map[string]any{}
	for _, p := range st.Participants() {
		name := ""
		if role, ok := st.Role(p.Role); ok {
			name = role.Name
		}
		members = append(members, map[string]any{"user": string(p.User), "role": p.Role, "role_name": name})
	}
	servers := []serverJSON{}
	for _, s := range st.Servers() {
		servers = append(servers, serverJSON{ServerID: dag.ServerID(s.ID).String(), Domain: s.Domain})
	}
	tips, err := n.store.Tips(room)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	tipStr := make([]string, len(tips))
	for i, t := range tips {
		tipStr[i] = t.String()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"room": room.String(), "name": st.Metadata().Name, "room_uri": string(st.Metadata().RoomURI),
		"members": members, "servers": servers, "tips": tipStr,
	})
}

func (n *Node) handleJoinRoom(w http.ResponseWriter, r *http.Request, d *device) {
	room, err := parseRoom(r.PathValue("room"))
	if err != nil {
		n.fail(w, r, err)
		return
	}
	var req struct {
		Via []string `json:"via"`
	}
	if err := readJSON(w, r, maxJSONBody, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	var via []dag.ServerID
	for i, v := range req.Via {
		id, err := parseServerID(v)
		if err != nil {
			n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "via[%d]: %v", i, err))
			return
		}
		via = append(via, id)
	}
	if st, joined := n.rooms.state(room); joined {
		writeJSON(w, http.StatusAccepted, map[string]any{"room": room.String(), "known": st != nil})
		return
	}
	if len(via) == 0 {
		n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "room %v is not known here yet: name at least one server of the room in \"via\"", room))
		return
	}
	if err := n.joins.viaAPI(r.Context(), d.User, room, via); err != nil {
		var je *joinError
		if errors.As(err, &je) {
			err = je.apiError(w)
		}
		n.fail(w, r, err)
		return
	}
	st, _ := n.rooms.state(room)
	writeJSON(w, http.StatusAccepted, map[string]any{"room": room.String(), "known": st != nil})
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
			n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "encode event: %v", err))
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

type changeJSON struct {
	Component uint16 `json:"component"`
	Update    string `json:"update"`
}

func decodeChanges(in []changeJSON) ([]roomevent.Change, error) {
	out := make([]roomevent.Change, len(in))
	for i, c := range in {
		u, err := b64("changes["+strconv.Itoa(i)+"].update", c.Update)
		if err != nil {
			return nil, err
		}
		out[i] = roomevent.Change{Component: c.Component, Update: u}
	}
	return out, nil
}

func (n *Node) handleSubmitCommit(w http.ResponseWriter, r *http.Request, d *device) {
	room, _, err := n.roomFor(r, d)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	var req struct {
		Parent    string       `json:"parent"`
		Commit    string       `json:"commit"`
		Changes   []changeJSON `json:"changes"`
		Welcome   string       `json:"welcome"`
		GroupInfo string       `json:"group_info"`
	}
	if err := readJSON(w, r, 2*dag.MaxEventSize, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	c := &roomevent.Commit{Sender: n.sender(d)}
	if c.Parent, err = parseEvent("parent", req.Parent); err != nil {
		n.fail(w, r, err)
		return
	}
	if c.Commit, err = b64("commit", req.Commit); err != nil {
		n.fail(w, r, err)
		return
	}
	if req.Welcome != "" {
		if c.Welcome, err = b64("welcome", req.Welcome); err != nil {
			n.fail(w, r, err)
			return
		}
	}
	if req.GroupInfo != "" {
		if c.GroupInfo, err = b64("group_info", req.GroupInfo); err != nil {
			n.fail(w, r, err)
			return
		}
	}
	if c.Changes, err = decodeChanges(req.Changes); err != nil {
		n.fail(w, r, err)
		return
	}
	content, err := c.Marshal()
	if err != nil {
		n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "encode event: %v", err))
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
	var req struct {
		Changes   []changeJSON `json:"changes"`
		Signature string       `json:"signature"`
	}
	if err := readJSON(w, r, 2*dag.MaxEventSize, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	st := &roomevent.State{Sender: n.sender(d), SignatureKey: d.rec.SignatureKey}
	if st.Changes, err = decodeChanges(req.Changes); err != nil {
		n.fail(w, r, err)
		return
	}
	if st.Signature, err = b64("signature", req.Signature); err != nil {
		n.fail(w, r, err)
		return
	}
	if err := st.Verify(room); err != nil {
		n.fail(w, r, apiErr(http.StatusBadRequest, codeRejected, "%v: sign the StateTBS of docs/api.md with the device's registered Ed25519 signature key", err))
		return
	}
	content, err := st.Marshal()
	if err != nil {
		n.fail(w, r, apiErr(http.StatusBadRequest, codeBadRequest, "encode event: %v", err))
		return
	}
	ev, cur, err := n.rooms.submit(r.Context(), room, dag.KindState, content)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	n.submitted(w, ev, cur)
}

func b64s(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
