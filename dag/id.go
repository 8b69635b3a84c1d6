package dag

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	mh "github.com/multiformats/go-multihash"
)

// IDLen is the length in bytes of an [EventID]: a sha2-256 multihash, that is
// the code 0x12, the digest length 0x20 and the 32-byte digest.
const IDLen = 2 + 32

// ErrBadID is wrapped by every failure to parse an event or room ID.
var ErrBadID = errors.New("dag: bad event ID")

// EventID names an event: the sha2-256 multihash of the event's encoding
// without its signature (docs/events.md, "Event ID"). It is a comparable
// fixed-size array so it can key maps; the zero value is no ID. Byte order
// of IDs is the deterministic tiebreak used throughout the DAG.
type EventID [IDLen]byte

// hashID returns the sha2-256 multihash of tbs.
func hashID(tbs []byte) EventID {
	sum, err := mh.Sum(tbs, mh.SHA2_256, -1)
	if err != nil || len(sum) != IDLen {
		// sha2-256 is always registered in go-multihash and always 32 bytes:
		// this is a programmer invariant, not peer input.
		panic(fmt.Sprintf("dag: sha2-256 multihash: %v (len %d)", err, len(sum)))
	}
	var id EventID
	copy(id[:], sum)
	return id
}

// EventIDFromBytes checks that b is a sha2-256 multihash and returns it as an
// EventID. A well-formed multihash of any other function fails with an error
// wrapping [ErrBadHash]; anything else wraps [ErrBadID].
func EventIDFromBytes(b []byte) (EventID, error) {
	var id EventID
	if len(b) == IDLen && b[0] == mh.SHA2_256 && b[1] == 32 {
		copy(id[:], b)
		return id, nil
	}
	if dm, err := mh.Decode(b); err == nil {
		return id, fmt.Errorf("%w: multihash function %s (0x%x), length %d", ErrBadHash, dm.Name, dm.Code, dm.Length)
	}
	return id, fmt.Errorf("%w: not a sha2-256 multihash (%d bytes)", ErrBadID, len(b))
}

// IsZero reports whether id is the zero value (no ID).
func (id EventID) IsZero() bool { return id == EventID{} }

// Bytes returns the multihash bytes of id.
func (id EventID) Bytes() []byte { return append([]byte(nil), id[:]...) }

// Compare orders IDs byte-wise, returning -1, 0 or +1.
func (id EventID) Compare(other EventID) int { return bytes.Compare(id[:], other[:]) }

// String returns the text form of id: the multihash in base58btc, as IPFS
// writes multihashes ("Qm..."). The zero ID prints as "-".
func (id EventID) String() string {
	if id.IsZero() {
		return "-"
	}
	return mh.Multihash(id[:]).B58String()
}

// ParseEventID parses the text form produced by [EventID.String].
func ParseEventID(s string) (EventID, error) {
	m, err := mh.FromB58String(s)
	if err != nil {
		return EventID{}, fmt.Errorf("%w: %q: %v", ErrBadID, s, err)
	}
	return EventIDFromBytes(m)
}

// RoomID names a room: it is the [EventID] of the room's create event
// (docs/events.md, "Room ID"). The create event itself carries the zero
// RoomID on the wire, since it cannot contain its own hash.
type RoomID EventID

// IsZero reports whether r is the zero value (no room).
func (r RoomID) IsZero() bool { return r == RoomID{} }

// CreateID returns the ID of the room's create event.
func (r RoomID) CreateID() EventID { return EventID(r) }

// String returns "!" followed by the text form of the create event's ID.
func (r RoomID) String() string { return "!" + EventID(r).String() }

// ParseRoomID parses the text form produced by [RoomID.String].
func ParseRoomID(s string) (RoomID, error) {
	if len(s) < 2 || s[0] != '!' {
		return RoomID{}, fmt.Errorf("%w: room ID %q lacks the '!' prefix", ErrBadID, s)
	}
	id, err := ParseEventID(s[1:])
	return RoomID(id), err
}

// ServerID is a server's identity: its Ed25519 public key, which is also its
// libp2p peer ID's key. It is comparable so it can key maps.
type ServerID [ed25519.PublicKeySize]byte

// ServerIDFromKey returns the ServerID of an Ed25519 public key.
func ServerIDFromKey(pub ed25519.PublicKey) (ServerID, error) {
	var s ServerID
	if len(pub) != ed25519.PublicKeySize {
		return s, fmt.Errorf("dag: ed25519 public key of %d bytes", len(pub))
	}
	copy(s[:], pub)
	return s, nil
}

// PublicKey returns the key as an [ed25519.PublicKey].
func (s ServerID) PublicKey() ed25519.PublicKey { return append(ed25519.PublicKey(nil), s[:]...) }

// String returns the key in lowercase hex.
func (s ServerID) String() string { return hex.EncodeToString(s[:]) }

// SortIDs sorts ids in ascending byte order, in place, and returns them.
func SortIDs(ids []EventID) []EventID {
	slices.SortFunc(ids, EventID.Compare)
	return ids
}
