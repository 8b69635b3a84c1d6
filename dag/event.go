package dag

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Limits of the event format (docs/events.md, "Limits").
const (
	// MaxEventSize is the largest encoding accepted, signature included.
	MaxEventSize = 64 << 10
	// MaxParents is the largest number of prev parents an event may list.
	MaxParents = 20
	// SignatureSize is the size of the origin's Ed25519 signature.
	SignatureSize = ed25519.SignatureSize
)

// Version is the event format version.
type Version uint8

// Version1 is the only format version defined so far.
const Version1 Version = 1

// Kind says what an event carries. The content of each kind is defined by the
// package that interprets it (roomstate, mls, consensus); dag treats content
// as opaque bytes.
type Kind uint8

// Event kinds (design brief, "Event model"). The values are wire constants.
const (
	KindCreate   Kind = 1 // a room's genesis event
	KindState    Kind = 2 // a room-state change
	KindCommit   Kind = 3 // an MLS commit with the state changes it carries
	KindProposal Kind = 4 // an MLS proposal by reference
	KindMessage  Kind = 5 // an MLS application message
	KindSeal     Kind = 6 // the hub's seal of a commit for a slot
	KindAck      Kind = 7 // a server's ack of a sealed commit
	KindSuspect  Kind = 8 // a vote that the term's hub failed
)

var kindNames = [...]string{
	KindCreate: "create", KindState: "state", KindCommit: "commit", KindProposal: "proposal",
	KindMessage: "message", KindSeal: "seal", KindAck: "ack", KindSuspect: "suspect",
}

// Valid reports whether k is a defined kind.
func (k Kind) Valid() bool { return k >= KindCreate && k <= KindSuspect }

// String returns the kind's lowercase name.
func (k Kind) String() string {
	if !k.Valid() {
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
	return kindNames[k]
}

// signatureLabel separates event signatures from every other use of a
// server's Ed25519 key (the same key is the libp2p identity).
const signatureLabel = "rhizome/v1/event-signature\x00"

// Event is one signed node of a room's Merkle DAG.
//
// Build an event by filling the exported fields and calling [Event.Sign], or
// obtain one from [Decode]. After either, the event remembers its encoding and
// ID and must not be modified.
type Event struct {
	Version   Version
	Room      RoomID // zero for a create event: the room ID is the create event's own ID
	Kind      Kind
	Origin    ServerID  // the origin server's Ed25519 public key
	Prev      []EventID // parents, strictly ascending byte order, at most MaxParents
	Timestamp int64     // origin time in Unix milliseconds: display and tiebreak only, never trusted
	Content   []byte
	Signature []byte // Ed25519 over signatureLabel || ID

	raw []byte  // full encoding (as received, or as produced by Sign)
	id  EventID // sha2-256 multihash of raw[:len(raw)-SignatureSize]
}

// marshalTBS appends the to-be-signed part of the encoding:
//
//	struct {
//	    uint8 version;
//	    uint8 kind;
//	    opaque room<V>;          // empty iff kind == create
//	    opaque origin[32];
//	    opaque prev<V><V>;       // each a 34-byte sha2-256 multihash, ascending
//	    uint64 origin_ts;
//	    opaque content<V>;
//	} EventTBS;
func (e *Event) marshalTBS(b *cryptobyte.Builder) {
	b.AddUint8(uint8(e.Version))
	b.AddUint8(uint8(e.Kind))
	if e.Room.IsZero() {
		tlspl.AddOpaque(b, nil)
	} else {
		tlspl.AddOpaque(b, e.Room[:])
	}
	b.AddBytes(e.Origin[:])
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, p := range e.Prev {
			tlspl.AddOpaque(b, p[:])
		}
	})
	b.AddUint64(uint64(e.Timestamp))
	tlspl.AddOpaque(b, e.Content)
}

// encodeTBS returns the to-be-signed encoding after checking the structural
// rules, so that an event that could never be decoded is never produced.
func (e *Event) encodeTBS() ([]byte, error) {
	if err := e.checkFields(); err != nil {
		return nil, err
	}
	tbs, err := tlspl.Marshal(e.marshalTBS)
	if err != nil {
		return nil, &RejectError{Reason: ReasonMalformed, Err: err}
	}
	if len(tbs)+SignatureSize > MaxEventSize {
		return nil, reject(ReasonOversize, "encoding of %d bytes exceeds %d", len(tbs)+SignatureSize, MaxEventSize)
	}
	return tbs, nil
}

// Sign checks the event's fields, sets Origin to priv's public key, signs the
// event and caches its encoding and ID.
func (e *Event) Sign(priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("dag: sign: ed25519 private key of %d bytes", len(priv))
	}
	origin, err := ServerIDFromKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	e.Origin = origin
	tbs, err := e.encodeTBS()
	if err != nil {
		return fmt.Errorf("dag: sign: %w", err)
	}
	id := hashID(tbs)
	sig := ed25519.Sign(priv, signedMessage(id))
	e.Signature = sig
	e.raw = append(tbs, sig...)
	e.id = id
	return nil
}

// signedMessage returns the bytes the origin signs: a domain label and the
// event ID. Signing the ID binds every field, since the ID hashes them all.
func signedMessage(id EventID) []byte {
	m := make([]byte, 0, len(signatureLabel)+IDLen)
	m = append(m, signatureLabel...)
	return append(m, id[:]...)
}

// ID returns the event's ID. For an event that was neither signed nor decoded
// it is computed from the current fields (the zero ID if they are invalid).
func (e *Event) ID() EventID {
	if e.raw != nil {
		return e.id
	}
	tbs, err := e.encodeTBS()
	if err != nil {
		return EventID{}
	}
	return hashID(tbs)
}

// RoomID returns the room the event belongs to: Room, or for a create event
// its own ID.
func (e *Event) RoomID() RoomID {
	if e.Kind == KindCreate {
		return RoomID(e.ID())
	}
	return e.Room
}

// Bytes returns the event's encoding: the bytes it was decoded from, or the
// bytes Sign produced. It returns nil for an event that was never signed or
// decoded. The caller must not modify the result.
func (e *Event) Bytes() []byte { return e.raw }

// Size returns the length of the encoding.
func (e *Event) Size() int { return len(e.raw) }

// Verify checks the origin's signature over the event ID, by the rule of
// docs/events.md section 1.4 (cofactored Ed25519 with canonical encodings;
// see [VerifyBatch] for many events). It fails with a [*RejectError] of
// reason [ReasonBadSignature].
func (e *Event) Verify() error {
	if e.raw == nil {
		return reject(ReasonBadSignature, "event %v was never signed", e.ID())
	}
	if len(e.Signature) != SignatureSize {
		return reject(ReasonBadSignature, "signature of %d bytes", len(e.Signature))
	}
	in, ok := e.signatureInput()
	if !ok {
		return reject(ReasonBadSignature, "event %v from %v: non-canonical signature or key", e.id, e.Origin)
	}
	if !verifyOne(in) {
		return reject(ReasonBadSignature, "event %v from %v", e.id, e.Origin)
	}
	return nil
}

// Decode parses one event from b, strictly: the encoding must be canonical
// (minimal lengths, sorted parents, no trailing bytes) and within
// [MaxEventSize]. It keeps a copy of b as the event's encoding and computes
// the ID from it. Decode does not verify the signature (see [Event.Verify]
// and [Validate]). Every error is a [*RejectError].
func Decode(b []byte) (*Event, error) {
	if len(b) > MaxEventSize {
		return nil, reject(ReasonOversize, "encoding of %d bytes exceeds %d", len(b), MaxEventSize)
	}
	raw := append([]byte(nil), b...)
	e := &Event{}
	var fieldErr error
	err := tlspl.Unmarshal(raw, "dag.Event", func(s *cryptobyte.String) bool {
		var (
			version, kind uint8
			room, origin  []byte
			prev          cryptobyte.String
			ts            uint64
		)
		if !s.ReadUint8(&version) || !s.ReadUint8(&kind) ||
			!tlspl.ReadVector(s, (*cryptobyte.String)(&room)) ||
			!s.ReadBytes(&origin, len(e.Origin)) ||
			!tlspl.ReadVector(s, &prev) ||
			!s.ReadUint64(&ts) ||
			!tlspl.ReadVector(s, (*cryptobyte.String)(&e.Content)) ||
			!s.ReadBytes(&e.Signature, SignatureSize) {
			return false
		}
		e.Version, e.Kind, e.Timestamp = Version(version), Kind(kind), int64(ts)
		copy(e.Origin[:], origin)
		if len(room) > 0 {
			id, err := EventIDFromBytes(room)
			if err != nil {
				fieldErr = fmt.Errorf("room: %w", err)
				return false
			}
			e.Room = RoomID(id)
		}
		for !prev.Empty() {
			var p []byte
			if !tlspl.ReadVector(&prev, (*cryptobyte.String)(&p)) {
				return false
			}
			if len(e.Prev) == MaxParents {
				fieldErr = reject(ReasonTooManyParents, "more than %d parents", MaxParents)
				return false
			}
			id, err := EventIDFromBytes(p)
			if err != nil {
				fieldErr = fmt.Errorf("prev[%d]: %w", len(e.Prev), err)
				return false
			}
			e.Prev = append(e.Prev, id)
		}
		return true
	})
	if fieldErr != nil {
		var re *RejectError
		if errors.As(fieldErr, &re) {
			return nil, re
		}
		if errors.Is(fieldErr, ErrBadHash) {
			return nil, &RejectError{Reason: ReasonBadHash, Err: fieldErr}
		}
		return nil, &RejectError{Reason: ReasonMalformed, Err: fieldErr}
	}
	if err != nil {
		return nil, &RejectError{Reason: ReasonMalformed, Err: err}
	}
	if err := e.checkFields(); err != nil {
		return nil, err
	}
	if e.Content == nil {
		e.Content = []byte{}
	}
	e.raw = raw
	e.id = hashID(raw[:len(raw)-SignatureSize])
	return e, nil
}

// checkFields enforces the structural rules that the encoding alone does not
// (docs/events.md, "Validation", rules 1-6).
func (e *Event) checkFields() error {
	if e.Version != Version1 {
		return reject(ReasonMalformed, "unsupported version %d", e.Version)
	}
	if !e.Kind.Valid() {
		return reject(ReasonMalformed, "unknown kind %d", uint8(e.Kind))
	}
	if e.Timestamp < 0 {
		return reject(ReasonMalformed, "negative timestamp %d", e.Timestamp)
	}
	if len(e.Prev) > MaxParents {
		return reject(ReasonTooManyParents, "%d parents, at most %d", len(e.Prev), MaxParents)
	}
	for i, p := range e.Prev {
		if p.IsZero() {
			return reject(ReasonMalformed, "prev[%d] is the zero ID", i)
		}
		if i == 0 {
			continue
		}
		switch p.Compare(e.Prev[i-1]) {
		case 0:
			return reject(ReasonDuplicateParent, "parent %v listed twice", p)
		case -1:
			return reject(ReasonMalformed, "parents not in ascending order at prev[%d]", i)
		}
	}
	if e.Kind == KindCreate {
		if !e.Room.IsZero() {
			return reject(ReasonMalformed, "create event names room %v", e.Room)
		}
		if len(e.Prev) != 0 {
			return reject(ReasonMalformed, "create event has %d parents", len(e.Prev))
		}
	} else {
		if e.Room.IsZero() {
			return reject(ReasonMalformed, "%v event without a room", e.Kind)
		}
		if len(e.Prev) == 0 {
			return reject(ReasonMalformed, "%v event without parents", e.Kind)
		}
	}
	return nil
}

// NewSigned is a convenience that builds and signs an event of version 1.
// prev is sorted and may be in any order; it must not hold duplicates.
func NewSigned(priv ed25519.PrivateKey, room RoomID, kind Kind, prev []EventID, ts int64, content []byte) (*Event, error) {
	e := &Event{
		Version:   Version1,
		Room:      room,
		Kind:      kind,
		Prev:      SortIDs(append([]EventID(nil), prev...)),
		Timestamp: ts,
		Content:   append([]byte{}, content...),
	}
	if err := e.Sign(priv); err != nil {
		return nil, err
	}
	return e, nil
}

// GenerateServerKey returns an Ed25519 key pair read from rand. Tests pass a
// seeded reader; production code passes crypto/rand.Reader.
func GenerateServerKey(rand io.Reader) (ed25519.PrivateKey, ServerID, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, ServerID{}, fmt.Errorf("dag: generate key: %w", err)
	}
	id, err := ServerIDFromKey(pub)
	return priv, id, err
}
