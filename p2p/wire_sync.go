package p2p

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// ErrMalformedMessage is wrapped by every failure to decode a p2p protocol
// message (together with the *tlspl.DecodeError when the codec failed).
var ErrMalformedMessage = errors.New("p2p: malformed message")

// Sync protocol bounds (docs/protocol.md, "Sync").
const (
	// MaxRequestIDs bounds each ID list in a sync request (known, heads,
	// ids) and the heads in a response: a heads answer is one page of at
	// most this many.
	MaxRequestIDs = 256
	// MaxMissingLimit bounds the limit of a get-missing request.
	MaxMissingLimit = 4096
	// maxStatusMessage bounds the diagnostic text of a refusal.
	maxStatusMessage = 256
)

// SyncKind is the operation of a sync request.
type SyncKind uint8

// Sync operations.
const (
	// SyncHeads asks for one page of the server's forward extremities of a
	// room: those after a cursor, in ID order.
	SyncHeads SyncKind = 1
	// SyncGetMissing asks for the ancestors of some heads, walking back
	// until events the requester knows.
	SyncGetMissing SyncKind = 2
	// SyncGetEvents asks for events by ID.
	SyncGetEvents SyncKind = 3
)

// String returns the operation name used in docs/protocol.md.
func (k SyncKind) String() string {
	switch k {
	case SyncHeads:
		return "heads"
	case SyncGetMissing:
		return "get_missing"
	case SyncGetEvents:
		return "get_events"
	}
	return fmt.Sprintf("sync_kind(%d)", uint8(k))
}

// SyncStatus is the answer code of a sync response.
type SyncStatus uint8

// Sync answer codes.
const (
	// StatusOK: the request was served.
	StatusOK SyncStatus = 0
	// StatusBadRequest: the request could not be decoded or broke a bound.
	StatusBadRequest SyncStatus = 1
	// StatusForbidden: the requester does not participate in the room.
	StatusForbidden SyncStatus = 2
	// StatusBusy: the server is at its concurrency limit; retry later.
	StatusBusy SyncStatus = 3
	// StatusRateLimited: the requester exceeded its request rate.
	StatusRateLimited SyncStatus = 4
	// StatusUnknownRoom: the server holds no events of the room.
	StatusUnknownRoom SyncStatus = 5
	// StatusInternal: the server failed (for example a storage error).
	StatusInternal SyncStatus = 6
)

var syncStatusNames = [...]string{"ok", "bad_request", "forbidden", "busy", "rate_limited", "unknown_room", "internal"}

// String returns the status name used in docs/protocol.md.
func (s SyncStatus) String() string {
	if int(s) < len(syncStatusNames) {
		return syncStatusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// SyncRequest is one request of the sync protocol:
//
//	struct {
//	    SyncKind kind;                  // uint8
//	    opaque room<V>;                 // 34-byte sha2-256 multihash
//	    select (kind) {
//	        case heads:       optional<EventID> after;
//	        case get_missing: EventID known<V>; EventID heads<V>; uint16 limit;
//	        case get_events:  EventID ids<V>;
//	    };
//	} SyncRequest;
//
// where EventID is opaque<V> holding a 34-byte sha2-256 multihash, and every
// ID list is strictly ascending and holds at most [MaxRequestIDs] IDs.
type SyncRequest struct {
	Kind SyncKind
	Room dag.RoomID
	// After is the cursor of a heads request: the answer lists the heads
	// above it. The zero ID (absent on the wire) starts at the lowest.
	After dag.EventID
	// Known are events the requester holds (get_missing): the walk stops at
	// them.
	Known []dag.EventID
	// IDs are the heads to walk back from (get_missing) or the events wanted
	// (get_events).
	IDs []dag.EventID
	// Limit bounds the number of events in a get_missing answer, 1 to
	// [MaxMissingLimit].
	Limit uint16
}

// SyncResponse is one response of the sync protocol:
//
//	struct {
//	    SyncKind kind;                  // echoes the request
//	    SyncStatus status;              // uint8
//	    select (status) {
//	        case ok: select (kind) {
//	            case heads:       EventID heads<V>; bool more;
//	            case get_missing: Event events<V>; bool complete;
//	            case get_events:  Event events<V>;
//	        };
//	        default: opaque message<V>; // UTF-8 diagnostic, at most 256 bytes
//	    };
//	} SyncResponse;
//
// where Event is opaque<V> holding one canonical event encoding
// (docs/events.md) of at most 64 KiB. A heads answer with more set has at
// least one head: the requester asks again after the last.
type SyncResponse struct {
	Kind   SyncKind
	Status SyncStatus
	// Heads are the server's forward extremities above the request's
	// cursor, ascending, at most [MaxRequestIDs] (heads, status ok).
	Heads []dag.EventID
	// More is set in a heads answer when the server has heads above the
	// last one listed.
	More bool
	// Events are raw event encodings (get_missing, get_events; status ok).
	// The requester decodes and verifies each one.
	Events [][]byte
	// Complete is set in a get_missing answer when the walk ended because
	// every path reached a known event or the create event, not because of
	// the limit or the size budget.
	Complete bool
	// Message is a diagnostic for a refusal.
	Message string
}

func addIDs(b *cryptobyte.Builder, ids []dag.EventID) {
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, id := range ids {
			tlspl.AddOpaque(b, id[:])
		}
	})
}

// readIDs reads a strictly ascending list of at most MaxRequestIDs IDs.
func readIDs(s *cryptobyte.String, out *[]dag.EventID, fieldErr *error) bool {
	var ids []dag.EventID
	ok := tlspl.ReadList(s, func(s *cryptobyte.String) bool {
		var raw cryptobyte.String
		if !tlspl.ReadVector(s, &raw) {
			return false
		}
		id, err := dag.EventIDFromBytes(raw)
		if err != nil {
			*fieldErr = err
			return false
		}
		if len(ids) == MaxRequestIDs {
			*fieldErr = fmt.Errorf("more than %d IDs", MaxRequestIDs)
			return false
		}
		if n := len(ids); n > 0 && ids[n-1].Compare(id) >= 0 {
			*fieldErr = errors.New("IDs not strictly ascending")
			return false
		}
		ids = append(ids, id)
		return true
	})
	*out = ids
	return ok
}

func decodeErr(what string, fieldErr, err error) error {
	if fieldErr != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformedMessage, what, fieldErr)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedMessage, err)
	}
	return nil
}

// Marshal encodes the request. It fails for a request that
// [UnmarshalSyncRequest] would refuse.
func (r *SyncRequest) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(r.Kind))
		tlspl.AddOpaque(b, r.Room[:])
		switch r.Kind {
		case SyncHeads:
			tlspl.AddOptional(b, !r.After.IsZero())
			if !r.After.IsZero() {
				tlspl.AddOpaque(b, r.After[:])
			}
		case SyncGetMissing:
			addIDs(b, r.Known)
			addIDs(b, r.IDs)
			b.AddUint16(r.Limit)
		case SyncGetEvents:
			addIDs(b, r.IDs)
		}
	})
}

func checkIDs(ids []dag.EventID) error {
	if len(ids) > MaxRequestIDs {
		return fmt.Errorf("%w: %d IDs, at most %d", ErrMalformedMessage, len(ids), MaxRequestIDs)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1].Compare(ids[i]) >= 0 {
			return fmt.Errorf("%w: IDs not strictly ascending", ErrMalformedMessage)
		}
	}
	return nil
}

func (r *SyncRequest) check() error {
	if r.Room.IsZero() {
		return fmt.Errorf("%w: zero room", ErrMalformedMessage)
	}
	switch r.Kind {
	case SyncHeads:
		if len(r.Known) != 0 || len(r.IDs) != 0 || r.Limit != 0 {
			return fmt.Errorf("%w: heads request with arguments", ErrMalformedMessage)
		}
		return nil
	}
	if !r.After.IsZero() {
		return fmt.Errorf("%w: cursor in a %s request", ErrMalformedMessage, r.Kind)
	}
	switch r.Kind {
	case SyncGetMissing:
		if r.Limit == 0 || r.Limit > MaxMissingLimit {
			return fmt.Errorf("%w: limit %d out of 1..%d", ErrMalformedMessage, r.Limit, MaxMissingLimit)
		}
		if len(r.IDs) == 0 {
			return fmt.Errorf("%w: get_missing without heads", ErrMalformedMessage)
		}
		if err := checkIDs(r.Known); err != nil {
			return err
		}
		return checkIDs(r.IDs)
	case SyncGetEvents:
		if len(r.Known) != 0 || r.Limit != 0 || len(r.IDs) == 0 {
			return fmt.Errorf("%w: get_events needs ids and nothing else", ErrMalformedMessage)
		}
		return checkIDs(r.IDs)
	default:
		return fmt.Errorf("%w: unknown sync kind %d", ErrMalformedMessage, uint8(r.Kind))
	}
}

// UnmarshalSyncRequest decodes a request strictly.
func UnmarshalSyncRequest(data []byte) (*SyncRequest, error) {
	r := &SyncRequest{}
	var fieldErr error
	err := tlspl.Unmarshal(data, "p2p.SyncRequest", func(s *cryptobyte.String) bool {
		var kind uint8
		var room cryptobyte.String
		if !s.ReadUint8(&kind) || !tlspl.ReadVector(s, &room) {
			return false
		}
		r.Kind = SyncKind(kind)
		id, err := dag.EventIDFromBytes(room)
		if err != nil {
			fieldErr = fmt.Errorf("room: %w", err)
			return false
		}
		r.Room = dag.RoomID(id)
		switch r.Kind {
		case SyncHeads:
			var present bool
			if !tlspl.ReadOptional(s, &present) {
				return false
			}
			if !present {
				return true
			}
			var raw cryptobyte.String
			if !tlspl.ReadVector(s, &raw) {
				return false
			}
			if r.After, err = dag.EventIDFromBytes(raw); err != nil {
				fieldErr = fmt.Errorf("after: %w", err)
				return false
			}
			return true
		case SyncGetMissing:
			return readIDs(s, &r.Known, &fieldErr) && readIDs(s, &r.IDs, &fieldErr) && s.ReadUint16(&r.Limit)
		case SyncGetEvents:
			return readIDs(s, &r.IDs, &fieldErr)
		default:
			fieldErr = fmt.Errorf("unknown sync kind %d", kind)
			return false
		}
	})
	if err := decodeErr("sync request", fieldErr, err); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// Marshal encodes the response.
func (r *SyncResponse) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(r.Kind))
		b.AddUint8(uint8(r.Status))
		if r.Status != StatusOK {
			tlspl.AddOpaque(b, []byte(r.Message))
			return
		}
		switch r.Kind {
		case SyncHeads:
			addIDs(b, r.Heads)
			tlspl.AddBool(b, r.More)
		case SyncGetMissing, SyncGetEvents:
			tlspl.AddVector(b, func(b *cryptobyte.Builder) {
				for _, ev := range r.Events {
					tlspl.AddOpaque(b, ev)
				}
			})
			if r.Kind == SyncGetMissing {
				tlspl.AddBool(b, r.Complete)
			}
		}
	})
}

func (r *SyncResponse) check() error {
	if r.Kind < SyncHeads || r.Kind > SyncGetEvents {
		return fmt.Errorf("%w: unknown sync kind %d", ErrMalformedMessage, uint8(r.Kind))
	}
	if int(r.Status) >= len(syncStatusNames) {
		return fmt.Errorf("%w: unknown status %d", ErrMalformedMessage, uint8(r.Status))
	}
	if r.Status != StatusOK {
		if len(r.Message) > maxStatusMessage || len(r.Heads) != 0 || len(r.Events) != 0 || r.Complete || r.More {
			return fmt.Errorf("%w: refusal with a body", ErrMalformedMessage)
		}
		return nil
	}
	if r.Message != "" {
		return fmt.Errorf("%w: message on success", ErrMalformedMessage)
	}
	if r.Kind == SyncHeads {
		if len(r.Events) != 0 || r.Complete {
			return fmt.Errorf("%w: heads answer with events", ErrMalformedMessage)
		}
		if r.More && len(r.Heads) == 0 {
			return fmt.Errorf("%w: heads answer with more but no head", ErrMalformedMessage)
		}
		return checkIDs(r.Heads)
	}
	if len(r.Heads) != 0 || r.More || (r.Kind == SyncGetEvents && r.Complete) {
		return fmt.Errorf("%w: events answer with heads", ErrMalformedMessage)
	}
	for _, ev := range r.Events {
		if len(ev) == 0 || len(ev) > dag.MaxEventSize {
			return fmt.Errorf("%w: event of %d bytes", ErrMalformedMessage, len(ev))
		}
	}
	return nil
}

// UnmarshalSyncResponse decodes a response strictly. It does not decode the
// events inside; the requester runs dag.Decode and verification on each.
func UnmarshalSyncResponse(data []byte) (*SyncResponse, error) {
	r := &SyncResponse{}
	var fieldErr error
	err := tlspl.Unmarshal(data, "p2p.SyncResponse", func(s *cryptobyte.String) bool {
		var kind, status uint8
		if !s.ReadUint8(&kind) || !s.ReadUint8(&status) {
			return false
		}
		r.Kind, r.Status = SyncKind(kind), SyncStatus(status)
		if r.Status != StatusOK {
			var msg []byte
			if !tlspl.ReadOpaque(s, &msg) {
				return false
			}
			r.Message = string(msg)
			return true
		}
		switch r.Kind {
		case SyncHeads:
			return readIDs(s, &r.Heads, &fieldErr) && tlspl.ReadBool(s, &r.More)
		case SyncGetMissing, SyncGetEvents:
			ok := tlspl.ReadList(s, func(s *cryptobyte.String) bool {
				var ev []byte
				if !tlspl.ReadOpaque(s, &ev) {
					return false
				}
				r.Events = append(r.Events, ev)
				return true
			})
			if ok && r.Kind == SyncGetMissing {
				ok = tlspl.ReadBool(s, &r.Complete)
			}
			return ok
		default:
			fieldErr = fmt.Errorf("unknown sync kind %d", kind)
			return false
		}
	})
	if err := decodeErr("sync response", fieldErr, err); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}
