package clientapi

// IssueTokenRequest is the optional body of POST /v1/admin/tokens
// (docs/api.md, "Registration tokens").
type IssueTokenRequest struct {
	// ExpiresInSeconds is the token's lifetime: nil means 7 days, 0 never.
	ExpiresInSeconds *int64 `json:"expires_in_seconds,omitempty"`
	// Note is the operator's note (at most 200 bytes).
	Note string `json:"note,omitempty"`
}

// RegistrationToken is an outstanding registration token as the admin API
// lists it (docs/api.md, "Registration tokens"): never its secret.
type RegistrationToken struct {
	// ID is the first 16 hex digits of the token's SHA-256 hash.
	ID string `json:"id"`
	// Created is the issue time, unix ms.
	Created int64 `json:"created"`
	// Expires is the expiry time, unix ms; 0 never.
	Expires int64  `json:"expires"`
	Note    string `json:"note,omitempty"`
}

// IssuedToken is the answer of POST /v1/admin/tokens (docs/api.md,
// "Registration tokens"): the token, shown this once, and its record.
type IssuedToken struct {
	Token string `json:"token"`
	RegistrationToken
}

// TokenList is the answer of GET /v1/admin/tokens (docs/api.md,
// "Registration tokens").
type TokenList struct {
	// Registration is the node's effective registration mode: open, token
	// or closed.
	Registration string              `json:"registration"`
	Tokens       []RegistrationToken `json:"tokens"`
}

// TokenRevoked is the answer of DELETE /v1/admin/tokens/{id} (docs/api.md,
// "Registration tokens").
type TokenRevoked struct {
	ID      string `json:"id"`
	Revoked bool   `json:"revoked"`
}

// AdminRooms is the answer of GET /v1/admin/rooms (docs/api.md, "Admin API:
// rooms").
type AdminRooms struct {
	Rooms []AdminRoom `json:"rooms"`
}

// AdminRoom is one room of [AdminRooms].
type AdminRoom struct {
	Room string `json:"room"`
	Name string `json:"name"`
	// How is how the node joined: created, invite, api, or "" for rooms
	// recorded before this was kept.
	How string `json:"how"`
	// Via are the servers the node joined through.
	Via []string `json:"via"`
	// Since is when the node joined (RFC 3339; "" if not recorded).
	Since string `json:"since"`
	// Awaiting is set while no user of this server takes part: the room
	// is left and purged when the grace period ends.
	Awaiting bool `json:"awaiting"`
	// LocalParticipants are the room's participants who are users of this
	// server; Participants counts all.
	LocalParticipants []string `json:"local_participants"`
	Participants      int      `json:"participants"`
	Servers           []Server `json:"servers"`
	// Events is the number of the room's events stored and processed.
	Events uint64 `json:"events"`
}

// RoomLeft is the answer of POST /v1/admin/rooms/{room}/leave (docs/api.md,
// "Admin API: rooms").
type RoomLeft struct {
	Room string `json:"room"`
	Left bool   `json:"left"`
}

// RoomPurged is the answer of POST /v1/admin/rooms/{room}/purge
// (docs/api.md, "Admin API: rooms").
type RoomPurged struct {
	Room   string `json:"room"`
	Purged bool   `json:"purged"`
	// WasJoined tells whether the room was joined before the purge.
	WasJoined bool `json:"was_joined"`
}
