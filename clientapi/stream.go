package clientapi

// LineType is the type of a stream line (docs/api.md, "Stream").
type LineType string

// The stream's line types.
const (
	// LineEvent carries one event of a room.
	LineEvent LineType = "event"
	// LineOrder reports a change of a room's canonical chain
	// (docs/api.md, "Order lines in GET /v1/stream").
	LineOrder LineType = "order"
	// LineHeartbeat is sent by an idle stream.
	LineHeartbeat LineType = "heartbeat"
)

// StreamLine is one line of GET /v1/stream (docs/api.md, "Stream"): an
// event line, an order line or a heartbeat. An event line carries the whole
// signed DAG event and the metadata to route it; the content (sender, MLS
// bytes, parent or epoch, changes) is read from Raw, whose signature the
// client can check itself.
type StreamLine struct {
	Type LineType `json:"type"`
	// Cursor is the line's position in the server's feed: resume with
	// since=Cursor.
	Cursor uint64 `json:"cursor"`
	// Room is the room of an event or order line.
	Room string `json:"room,omitempty"`

	// Event is the event's ID (event lines).
	Event string `json:"event,omitempty"`
	// Kind is the event's kind: create, state, commit, proposal or
	// message (event lines).
	Kind string `json:"kind,omitempty"`
	// Origin is the hex ID of the server that wrote the event (event
	// lines).
	Origin string `json:"origin,omitempty"`
	// TS is the origin's timestamp, unix ms (event lines).
	TS int64 `json:"ts,omitempty"`
	// Raw is the whole signed DAG event (event lines; docs/events.md).
	Raw []byte `json:"raw,omitempty"`

	// Tip is the last commit of the canonical chain, or the create event
	// (order lines).
	Tip string `json:"tip,omitempty"`
	// Certified is the last certified commit, or the create event (order
	// lines).
	Certified string `json:"certified,omitempty"`
	// Undone are the commits removed from the canonical chain, newest
	// first. Order lines always carry it, [] when empty (a non-nil empty
	// slice); other lines never (nil).
	Undone []string `json:"undone,omitzero"`
	// Applied are the commits added to the canonical chain, oldest first;
	// present as Undone is.
	Applied []string `json:"applied,omitzero"`
	// RetainUntilMS is, when Undone is not empty, the unix time (ms) until
	// which clients keep the undone epochs' secrets; absent (0) otherwise.
	RetainUntilMS int64 `json:"retain_until_ms,omitempty"`
}

// CursorRequest is the body of POST /v1/cursor (docs/api.md, "Stream").
type CursorRequest struct {
	// Cursor is the cursor of the last line processed; nil is refused.
	Cursor *uint64 `json:"cursor"`
}

// CursorStored is the answer of POST /v1/cursor (docs/api.md, "Stream").
type CursorStored struct {
	Cursor uint64 `json:"cursor"`
}
