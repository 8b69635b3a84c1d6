package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// maxCommitAttempts bounds how often an own commit is rebuilt after losing
// a race or meeting a stale parent.
const maxCommitAttempts = 5

// Server names a participating server of a room.
type Server struct {
	ID     string `json:"server_id"` // 64 hex digits
	Domain string `json:"domain"`
}

// RoomInfo describes a room as the client sees it.
type RoomInfo struct {
	Room    RoomID  `json:"room"`
	Name    string  `json:"name"`
	RoomURI string  `json:"room_uri"`
	Members int     `json:"members"`
	Joined  bool    `json:"joined"` // this device holds the room's MLS group
	Epoch   uint64  `json:"epoch"`
	EpochID EventID `json:"epoch_id"`
}

// room returns the room by ID (with or without the '!').
func (c *Client) room(id string) (*room, error) {
	if c.id == nil {
		return nil, ErrNotRegistered
	}
	if !strings.HasPrefix(id, "!") {
		id = "!" + id
	}
	if _, err := dag.ParseRoomID(id); err != nil {
		return nil, fmt.Errorf("%w: room ID %q: a room ID looks like !Qm followed by base58 digits", ErrBadInput, id)
	}
	r := c.rooms[id]
	if r == nil {
		return nil, fmt.Errorf("%w (%s)", ErrUnknownRoom, id)
	}
	return r, nil
}

func (c *Client) joinedRoom(id string) (*room, error) {
	r, err := c.room(id)
	if err != nil {
		return nil, err
	}
	if r.left {
		return nil, fmt.Errorf("%w (%s)", ErrLeft, r.info.Room)
	}
	if r.g == nil {
		return nil, fmt.Errorf("%w (%s)", ErrNotJoined, r.info.Room)
	}
	return r, nil
}

// CreateRoom creates a room from a preset ("private-group" if empty) with
// this node and servers as its servers, and creates its MLS group on this
// device. It returns once the device holds the group.
func (c *Client) CreateRoom(ctx context.Context, preset, name string, servers ...Server) (RoomInfo, error) {
	c.mu.Lock()
	if c.id == nil {
		c.mu.Unlock()
		return RoomInfo{}, ErrNotRegistered
	}
	a := c.api()
	c.mu.Unlock()
	if preset == "" {
		preset = "private-group"
	}
	if _, ok := roomstate.ParsePreset(preset); !ok {
		return RoomInfo{}, fmt.Errorf("%w: preset %q: use private-group, public-room, announcement-channel or direct-message", ErrBadInput, preset)
	}
	sj := make([]clientapi.Server, len(servers))
	for i, s := range servers {
		sj[i] = clientapi.Server{ServerID: s.ID, Domain: s.Domain}
	}
	var resp clientapi.Submitted
	if err := a.postJSON(ctx, "/v1/rooms", clientapi.CreateRoomRequest{Preset: preset, Name: name, Servers: sj}, &resp); err != nil {
		return RoomInfo{}, err
	}
	err := c.await(ctx, "the room's create event", func() bool {
		r := c.rooms[resp.Room]
		return r != nil && r.g != nil
	})
	if err != nil {
		return RoomInfo{}, err
	}
	return c.roomInfo(resp.Room)
}

func (c *Client) roomInfo(id string) (RoomInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.room(id)
	if err != nil {
		return RoomInfo{}, err
	}
	return describeRoom(r), nil
}

func describeRoom(r *room) RoomInfo {
	ri := RoomInfo{Room: RoomID(r.info.Room), Joined: r.g != nil && !r.left, EpochID: EventID(r.epoch)}
	if r.state != nil {
		ri.Name, ri.RoomURI, ri.Members = r.state.Metadata().Name, string(r.state.Metadata().RoomURI), len(r.state.Participants())
	}
	if r.g != nil {
		ri.Epoch = r.g.Epoch()
	}
	return ri
}

// Rooms lists the rooms this device knows, in room ID order.
func (c *Client) Rooms() ([]RoomInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return nil, ErrNotRegistered
	}
	var out []RoomInfo
	for _, id := range slices.Sorted(maps.Keys(c.rooms)) {
		out = append(out, describeRoom(c.rooms[id]))
	}
	return out, nil
}

// Member is one participant of a room with the devices this client sees
// in the room's MLS group.
type Member struct {
	User    string   `json:"user"`
	Role    string   `json:"role"`
	Devices []string `json:"devices"`
}

// Members lists the room's participants (from the room state this device
// derived) and, for each, its devices in the MLS group.
func (c *Client) Members(id RoomID) ([]Member, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.room(string(id))
	if err != nil {
		return nil, err
	}
	devs := map[string][]string{}
	if r.g != nil {
		for _, l := range r.g.Members() {
			if d, ok := leafDevice(r.g, l); ok {
				devs[userOfDevice(d)] = append(devs[userOfDevice(d)], d)
			}
		}
	}
	var out []Member
	for _, p := range r.state.Participants() {
		name := fmt.Sprint(p.Role)
		if role, ok := r.state.Role(p.Role); ok {
			name = role.Name
		}
		out = append(out, Member{User: string(p.User), Role: name, Devices: devs[string(p.User)]})
	}
	return out, nil
}

// normalizeUser accepts a user URI or a bare name on this device's server.
func (c *Client) normalizeUser(user string) (string, error) {
	if !strings.Contains(user, "://") {
		dom := roomstate.URI(c.id.UserURI).Domain()
		user = "mimi://" + dom + "/u/" + user
	}
	if !roomstate.ValidUserURI(roomstate.URI(user)) {
		return "", fmt.Errorf("%w: user %q: give a name on your server (bob) or a user URI (mimi://other.example/u/bob)", ErrBadInput, user)
	}
	return user, nil
}

// InviteOptions name the home server of a user whose domain is not yet
// among the room's servers.
type InviteOptions struct {
	// ServerURL is the API URL of the user's home server; the client asks
	// it for its server ID (GET /v1/server).
	ServerURL string
	// Server names the home server directly.
	Server *Server
}

// Invite adds user to the room: if the room has no server of the user's
// domain yet, it first puts the user's home server in with a commit of its
// own (addServer), so that the server votes on the room's order; then it
// claims a KeyPackage of each of the user's devices (across the
// federation), and submits one commit adding all of them with the
// participant add stapled and the Welcome. It returns the event ID of the
// commit adding the user once it is applied on this device. Adding a
// server needs canChangeServers (admins in the presets).
func (c *Client) Invite(ctx context.Context, room RoomID, user string, opts *InviteOptions) (EventID, error) {
	id, err := c.invite(ctx, string(room), user, opts)
	return EventID(id), err
}

func (c *Client) invite(ctx context.Context, roomID, user string, opts *InviteOptions) (string, error) {
	c.mu.Lock()
	r, err := c.joinedRoom(roomID)
	if err != nil {
		c.mu.Unlock()
		return "", err
	}
	user, err = c.normalizeUser(user)
	if err != nil {
		c.mu.Unlock()
		return "", err
	}
	if r.state.RoleOf(roomstate.URI(user)) >= roomstate.RoleMember {
		c.mu.Unlock()
		return "", fmt.Errorf("%w: %s is already a participant of %s", ErrBadInput, user, r.info.Room)
	}
	domain := roomstate.URI(user).Domain()
	hasServer := false
	for _, s := range r.state.Servers() {
		hasServer = hasServer || s.Domain == domain
	}
	room := r.info.Room
	a := c.api()
	c.mu.Unlock()

	if !hasServer {
		srv, err := c.resolveServer(ctx, domain, opts)
		if err != nil {
			return "", err
		}
		if err := c.addServer(ctx, room, srv); err != nil {
			return "", err
		}
	}
	var claim clientapi.Claimed
	deadline := time.Now().Add(c.opts.WaitTimeout)
	// The other server may still be connecting, or not know the room yet:
	// retry with a backoff (each try spends one of the claimer's claims,
	// docs/api.md "POST /v1/keypackages/claim"), and past the claim rate
	// wait as the server asks.
	wait := 200 * time.Millisecond
	for {
		err := a.postJSON(ctx, "/v1/keypackages/claim", clientapi.ClaimRequest{User: user, Room: room, CipherSuites: []uint16{uint16(Suite)}}, &claim)
		if err == nil {
			break
		}
		limited := clientapi.HasCode(err, clientapi.CodeRateLimited)
		if !(limited || clientapi.HasCode(err, clientapi.CodeUnavailable) || clientapi.HasCode(err, clientapi.CodeNotFound)) || time.Now().After(deadline) {
			return "", fmt.Errorf("claim KeyPackages of %s: %w", user, err)
		}
		pause := wait
		if limited {
			pause = max(pause, time.Second)
		}
		wait = min(2*wait, 2*time.Second)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pause):
		}
	}
	plan := &commitPlan{Add: []string{user}, Purpose: "invite"}
	for _, cl := range claim.Clients {
		if cl.Status == "success" && len(cl.KeyPackage) > 0 {
			plan.KeyPackages = append(plan.KeyPackages, cl.KeyPackage)
		}
	}
	if claim.Status == "userUnknown" {
		return "", fmt.Errorf("%w (%s)", ErrUnknownUser, user)
	}
	if len(plan.KeyPackages) == 0 {
		return "", fmt.Errorf("%w (%s: %s)", ErrNoKeyPackages, user, claim.Status)
	}
	return c.submitPlan(ctx, room, plan)
}

// resolveServer finds the server ID of a domain from the options.
func (c *Client) resolveServer(ctx context.Context, domain string, opts *InviteOptions) (Server, error) {
	if opts != nil && opts.Server != nil {
		return *opts.Server, nil
	}
	if opts == nil || opts.ServerURL == "" {
		return Server{}, fmt.Errorf("%w: %w (%s): give the user's home server in InviteOptions", ErrBadInput, ErrNoServer, domain)
	}
	base, err := normalizeServer(opts.ServerURL)
	if err != nil {
		return Server{}, err
	}
	var info clientapi.ServerInfo
	if err := (&api{base: base, http: c.http}).get(ctx, "/v1/server", &info); err != nil {
		return Server{}, err
	}
	if info.ServerName != domain {
		return Server{}, fmt.Errorf("%w: %s serves %q, not %q: give the home server of the user", ErrBadInput, base, info.ServerName, domain)
	}
	return Server{ID: info.ServerID, Domain: info.ServerName}, nil
}

// addServer puts a server in the room with an own commit (a key update)
// that staples the servers change, and returns once the commit is applied
// on this device. A commit that changes the servers installs the room's
// electorate for the slots after it (docs/consensus.md, rule M1): from then
// on the new server seals and acks like the others. A standalone state
// event would change the server list but never the electorate. The commit
// needs canChangeServers. If another commit put the server in meanwhile,
// that one does.
func (c *Client) addServer(ctx context.Context, room string, s Server) error {
	id, err := parseServerID(s.ID)
	if err != nil {
		return err
	}
	_, err = c.submitPlan(ctx, room, &commitPlan{AddServers: []Server{s}, Update: true, Purpose: "add-server"})
	if err != nil && errors.Is(err, ErrBadInput) {
		c.mu.Lock()
		r := c.rooms[room]
		_, ok := r.state.Server(id)
		c.mu.Unlock()
		if ok {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("add server %s to %s: %w", s.Domain, room, err)
	}
	return nil
}

// postState submits a room-state change signed by this device.
func (c *Client) postState(ctx context.Context, room string, op roomstate.Op) error {
	c.mu.Lock()
	r, err := c.room(room)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	// On the state the next commit adopts it into: the current one with
	// the pending state events.
	st := r.pendingState()
	comp, update, err := roomstate.EncodeOp(st, op)
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("client: encode change: %w", err)
	}
	if _, err := roomstate.ApplyUpdate(st, actorJSON{User: c.id.UserURI, Client: c.id.DeviceURI}.actor(), comp, update); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: the room does not allow it: %v", ErrBadInput, err)
	}
	rid, _ := dag.ParseRoomID(room)
	ev := &roomevent.State{Sender: roomevent.Sender{User: c.id.UserURI, Client: c.id.DeviceURI}, Changes: []roomevent.Change{{Component: uint16(comp), Update: update}}}
	if err := ev.Sign(rid, ed25519.NewKeyFromSeed(c.sig.Bytes())); err != nil {
		c.mu.Unlock()
		return err
	}
	a := c.api()
	c.mu.Unlock()
	return a.postJSON(ctx, "/v1/rooms/"+url.PathEscape(room)+"/state", clientapi.StateRequest{
		Changes:   []clientapi.Change{{Component: uint16(comp), Update: update}},
		Signature: ev.Signature,
	}, nil)
}

// Remove removes user from the room: all of the user's clients leave the
// MLS group and the user leaves the participant list in one commit. If the
// user was the last participant of their domain and this user may change
// servers, the same commit takes that domain's server out of the room, so
// it leaves the electorate (planChanges).
func (c *Client) Remove(ctx context.Context, room RoomID, user string) (EventID, error) {
	id, err := c.remove(ctx, string(room), user)
	return EventID(id), err
}

func (c *Client) remove(ctx context.Context, roomID, user string) (string, error) {
	c.mu.Lock()
	r, err := c.joinedRoom(roomID)
	if err == nil {
		user, err = c.normalizeUser(user)
	}
	if err == nil && r.state.RoleOf(roomstate.URI(user)) == roomstate.RoleNone {
		err = fmt.Errorf("%w: %s is not a participant of %s", ErrBadInput, user, r.info.Room)
	}
	if err == nil && user == c.id.UserURI {
		err = fmt.Errorf("%w: a device removes its own user by leaving the room, not by Remove", ErrBadInput)
	}
	room := ""
	if r != nil {
		room = r.info.Room
	}
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	return c.submitPlan(ctx, room, &commitPlan{Remove: []string{user}, Purpose: "remove", Vacate: true})
}

// Leave leaves the room: the device proposes its own removal (SelfRemove),
// and its user leaves the participant list with a signed state change (in
// this order: the node takes submissions only from participants). The
// state event is pending until a commit adopts it: a remaining member
// commits the departure once it sees it (process.go, completeDepartures),
// and that commit adopts it (the node names it among the commit's
// parents), unlisting the user: the SelfRemove by reference (or a
// Remove of each of the user's clients, if the epoch moved on), and, when
// the user was the last participant of their domain, the removal of that
// domain's server, which roomstate allows any participant (a vacated
// server). That commit takes the server out of the electorate.
func (c *Client) Leave(ctx context.Context, id RoomID) error {
	room, err := c.proposeSelfRemove(ctx, string(id))
	if err != nil {
		return err
	}
	if err := c.postState(ctx, room, &roomstate.ParticipantUpdate{Removed: []roomstate.URI{roomstate.URI(c.id.UserURI)}}); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.joinedRoom(room)
	if err != nil {
		return err
	}
	b := newBatch()
	if err := c.logAndApply(b, r, &logEntry{Op: "leave", AtMS: c.now().UnixMilli()}); err != nil {
		return err
	}
	return c.st.commit(b)
}

// proposeSelfRemove submits a SelfRemove proposal in the room's current
// epoch, catching up and proposing again when the node's canonical epoch
// has moved on (stale_epoch). It returns the room's ID.
func (c *Client) proposeSelfRemove(ctx context.Context, roomID string) (string, error) {
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		r, err := c.joinedRoom(roomID)
		if err != nil {
			c.mu.Unlock()
			return "", err
		}
		room, epoch := r.info.Room, r.epoch
		prop, err := r.g.Propose(c.rand, &mls.SelfRemoveProposal{})
		if err != nil {
			c.mu.Unlock()
			return "", fmt.Errorf("client: self-remove proposal: %w", err)
		}
		raw, err := prop.Marshal()
		a := c.api()
		c.mu.Unlock()
		if err != nil {
			return "", err
		}
		err = a.do(ctx, "POST", "/v1/rooms/"+url.PathEscape(room)+"/proposals?epoch="+epoch, "application/octet-stream", raw, nil)
		if err == nil {
			return room, nil
		}
		if !clientapi.HasCode(err, clientapi.CodeStaleEpoch) || attempt+1 >= maxCommitAttempts {
			return "", err
		}
		if err := c.catchUp(ctx, room); err != nil {
			return "", err
		}
	}
}

// hasWork reports whether background work (re-sends, re-proposals) waits.
func (c *Client) hasWork() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rooms {
		if len(r.repropose) > 0 || len(r.resend) > 0 {
			return true
		}
	}
	return false
}

// flush re-sends own messages from undone epochs and re-proposes own
// commits that lost (dropping those no longer valid).
func (c *Client) flush(ctx context.Context) error {
	c.mu.Lock()
	type work struct {
		room   string
		plans  []*pendingCommit
		resend []string
	}
	var ws []work
	for _, id := range slices.Sorted(maps.Keys(c.rooms)) {
		r := c.rooms[id]
		if len(r.repropose)+len(r.resend) > 0 {
			ws = append(ws, work{id, r.repropose, r.resend})
			r.repropose, r.resend = nil, nil
		}
	}
	c.mu.Unlock()
	var first error
	for _, w := range ws {
		for _, mid := range w.resend {
			if err := c.resend(ctx, w.room, mid); err != nil && first == nil {
				first = err
			}
		}
		for _, p := range w.plans {
			if err := c.repropose(ctx, w.room, p.Plan); err != nil && !errors.Is(err, ErrBadInput) && first == nil {
				first = err
			}
		}
	}
	return first
}

// Update rotates this device's keys in the room with a commit carrying a
// fresh UpdatePath (post-compromise security, RFC 9420, Section 12.4.2).
func (c *Client) Update(ctx context.Context, room RoomID) (EventID, error) {
	id, err := c.update(ctx, string(room))
	return EventID(id), err
}

func (c *Client) update(ctx context.Context, roomID string) (string, error) {
	c.mu.Lock()
	r, err := c.joinedRoom(roomID)
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	return c.submitPlan(ctx, r.info.Room, &commitPlan{Update: true, Purpose: "update"})
}

// repropose makes an own undone commit again on the new tip: an invite
// claims fresh KeyPackages (the old ones may be spent), a removal is
// rebuilt; one that is no longer valid (the user was added or removed on
// the winning branch) is dropped with ErrBadInput.
func (c *Client) repropose(ctx context.Context, room string, plan *commitPlan) error {
	var err error
	switch {
	case plan.Purpose == "invite" && len(plan.Add) == 1:
		_, err = c.invite(ctx, room, plan.Add[0], nil)
	case plan.Purpose == "remove" && len(plan.Remove) == 1:
		_, err = c.remove(ctx, room, plan.Remove[0])
	default:
		_, err = c.submitPlan(ctx, room, plan)
	}
	return err
}
