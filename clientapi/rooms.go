package clientapi

// Server is one server of a room (docs/api.md, "Rooms").
type Server struct {
	// ServerID is the 64 hex digits of the server's Ed25519 key.
	ServerID string `json:"server_id"`
	// Domain is the server's name, the domain of its users' URIs.
	Domain string `json:"domain"`
}

// CreateRoomRequest is the body of POST /v1/rooms (docs/api.md, "Rooms").
// Every field is optional, except Peer in a direct message.
type CreateRoomRequest struct {
	// Preset is direct-message, private-group (the default), public-room
	// or announcement-channel.
	Preset string `json:"preset,omitempty"`
	// Name is the room's display name.
	Name string `json:"name,omitempty"`
	// RoomURI is the room's MIMI URI (default mimi://<server>/r/<random>).
	RoomURI string `json:"room_uri,omitempty"`
	// Peer is the other user of a direct message.
	Peer string `json:"peer,omitempty"`
	// Servers are the room's servers besides the creating one.
	Servers []Server `json:"servers,omitempty"`
}

// Submitted is the answer of POST /v1/rooms and of every submission
// (docs/api.md, "Submitting events"): the stored event and its stream
// cursor.
type Submitted struct {
	Room   string `json:"room"`
	Event  string `json:"event"`
	Cursor uint64 `json:"cursor"`
}

// RoomList is the answer of GET /v1/rooms (docs/api.md, "Rooms").
type RoomList struct {
	Rooms []RoomSummary `json:"rooms"`
}

// RoomSummary is one room of a [RoomList].
type RoomSummary struct {
	Room    string `json:"room"`
	Name    string `json:"name"`
	RoomURI string `json:"room_uri"`
	// Role is the caller's role index in the room.
	Role uint32 `json:"role"`
	// Members counts the room's participants.
	Members int `json:"members"`
}

// Room is the answer of GET /v1/rooms/{room} and
// GET /v1/rooms/{room}/members (docs/api.md, "Rooms").
type Room struct {
	Room    string   `json:"room"`
	Name    string   `json:"name"`
	RoomURI string   `json:"room_uri"`
	Members []Member `json:"members"`
	Servers []Server `json:"servers"`
	// Tips are the room's DAG tips on the server.
	Tips []string `json:"tips"`
}

// Member is one participant of a [Room].
type Member struct {
	User     string `json:"user"`
	Role     uint32 `json:"role"`
	RoleName string `json:"role_name"`
}

// JoinRequest is the body of POST /v1/rooms/{room}/join (docs/api.md,
// "Rooms").
type JoinRequest struct {
	// Via are hex server IDs of servers of the room (at most 4).
	Via []string `json:"via"`
}

// Joined is the answer of POST /v1/rooms/{room}/join (docs/api.md,
// "Rooms").
type Joined struct {
	Room string `json:"room"`
	// Known tells whether the room's state is known yet.
	Known bool `json:"known"`
}

// Change is one room-state change (docs/api.md, "Submitting events"): a
// component ID and the update bytes of an AppDataUpdate.
type Change struct {
	Component uint16 `json:"component"`
	Update    []byte `json:"update"`
}

// CommitRequest is the body of POST /v1/rooms/{room}/commits (docs/api.md,
// "Submitting events").
type CommitRequest struct {
	// Parent is the commit event whose epoch the commit builds on (the
	// create event for the first commit).
	Parent string `json:"parent"`
	// Commit is the MLSMessage (mls_public_message, content type commit).
	Commit []byte `json:"commit"`
	// Changes are the room-state changes the commit carries.
	Changes []Change `json:"changes"`
	// Welcome is the MLSMessage Welcome for new members, if any.
	Welcome []byte `json:"welcome,omitempty"`
	// GroupInfo is the epoch-0 GroupInfo with its ratchet tree: the
	// group's first commit only.
	GroupInfo []byte `json:"group_info,omitempty"`
}

// StateRequest is the body of POST /v1/rooms/{room}/state (docs/api.md,
// "Submitting events"): a room-state change outside a commit.
type StateRequest struct {
	Changes []Change `json:"changes"`
	// Signature is the device's Ed25519 signature of the StateTBS.
	Signature []byte `json:"signature"`
}

// Order is the answer of GET /v1/rooms/{room}/order (docs/api.md,
// "Ordering"): the room's canonical chain on the server.
type Order struct {
	Room string `json:"room"`
	// Tip is the chain's last commit, or the create event.
	Tip string `json:"tip"`
	// Certified is the last certified commit, or the create event.
	Certified string `json:"certified"`
	// Canonical is the chain from the first commit to the tip.
	Canonical []string `json:"canonical"`
}
