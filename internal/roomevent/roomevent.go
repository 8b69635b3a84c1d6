package roomevent

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Limits of the content encodings. The whole event is bounded by
// dag.MaxEventSize; these bound the parts so that a forged length is refused
// early.
const (
	// MaxURI is the longest user or client URI accepted.
	MaxURI = 512
	// MaxChanges is the most room-state changes one commit or state event
	// may carry.
	MaxChanges = 64
)

// ErrMalformed is matched by every decoding error of this package.
var ErrMalformed = errors.New("roomevent: malformed content")

// ErrBadSignature is returned by [State.Verify] for a client signature that
// does not verify.
var ErrBadSignature = errors.New("roomevent: bad client signature")

// DecodeError reports which content could not be decoded and why. It
// matches [ErrMalformed] under errors.Is.
type DecodeError struct {
	What string // "create", "state", "commit", "proposal" or "message"
	Err  error  // detail
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("roomevent: decode %s: %v", e.What, e.Err)
}

// Unwrap returns ErrMalformed and the detail.
func (e *DecodeError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

func decodeErr(what string, err error) error { return &DecodeError{What: what, Err: err} }

// Sender names the user and the client (device) on whose behalf the origin
// server wrote an event:
//
//	struct {
//	    opaque user<V>;    // MIMI user URI, mimi://<domain>/u/<name>
//	    opaque client<V>;  // MIMI client URI, mimi://<domain>/d/<name>/<device>
//	} Sender;
type Sender struct {
	User   string `json:"user"`
	Client string `json:"client"`
}

func (s Sender) marshal(b *cryptobyte.Builder) {
	tlspl.AddOpaque(b, []byte(s.User))
	tlspl.AddOpaque(b, []byte(s.Client))
}

func readText(s *cryptobyte.String, out *string, max int) bool {
	var v []byte
	if !tlspl.ReadOpaque(s, &v) || len(v) > max || !utf8.Valid(v) {
		return false
	}
	*out = string(v)
	return true
}

func (s *Sender) unmarshal(in *cryptobyte.String) bool {
	return readText(in, &s.User, MaxURI) && readText(in, &s.Client, MaxURI)
}

// check enforces the non-empty, no-control-character rule on both URIs.
func (s Sender) check() error {
	for _, u := range []string{s.User, s.Client} {
		if u == "" || !strings.HasPrefix(u, "mimi://") {
			return fmt.Errorf("sender URI %q is not a mimi:// URI", u)
		}
		for _, r := range u {
			if r < 0x20 || r == 0x7f {
				return fmt.Errorf("sender URI %q holds a control character", u)
			}
		}
	}
	return nil
}

// Change is one room-state change: a component ID and the update bytes of
// an AppDataUpdate proposal (roomstate.EncodeOp, roomstate.ApplyUpdate):
//
//	struct {
//	    uint16 component_id;
//	    opaque update<V>;
//	} Change;
type Change struct {
	Component uint16
	Update    []byte
}

func addChanges(b *cryptobyte.Builder, cs []Change) {
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, c := range cs {
			b.AddUint16(c.Component)
			tlspl.AddOpaque(b, c.Update)
		}
	})
}

func readChanges(s *cryptobyte.String, out *[]Change) bool {
	*out = nil
	return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
		var c Change
		if len(*out) == MaxChanges || !s.ReadUint16(&c.Component) || !tlspl.ReadOpaque(s, &c.Update) {
			return false
		}
		*out = append(*out, c)
		return true
	})
}

func addID(b *cryptobyte.Builder, id dag.EventID) { tlspl.AddOpaque(b, id[:]) }

func readID(s *cryptobyte.String, out *dag.EventID) bool {
	var v []byte
	if !tlspl.ReadOpaque(s, &v) {
		return false
	}
	id, err := dag.EventIDFromBytes(v)
	if err != nil {
		return false
	}
	*out = id
	return true
}

// Create is the content of a room's create event:
//
//	struct {
//	    Sender creator;
//	    opaque preset<V>;      // preset name, e.g. "private-group"
//	    opaque state<V>;       // roomstate.MarshalComponents of the initial state,
//	                           // including the initial server list
//	} Create;
type Create struct {
	Creator Sender
	Preset  string
	State   []byte
}

// Marshal encodes c.
func (c *Create) Marshal() ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		c.Creator.marshal(b)
		tlspl.AddOpaque(b, []byte(c.Preset))
		tlspl.AddOpaque(b, c.State)
	})
}

// DecodeCreate decodes a create event's content strictly.
func DecodeCreate(data []byte) (*Create, error) {
	var c Create
	err := tlspl.Unmarshal(data, "create", func(s *cryptobyte.String) bool {
		return c.Creator.unmarshal(s) && readText(s, &c.Preset, 64) && tlspl.ReadOpaque(s, &c.State)
	})
	if err != nil {
		return nil, decodeErr("create", err)
	}
	if err := c.Creator.check(); err != nil {
		return nil, decodeErr("create", err)
	}
	return &c, nil
}

// stateLabel separates client signatures over state changes from every other
// use of a client's key.
const stateLabel = "rhizome/v1/state-change\x00"

// State is the content of a state event: room-state changes asked for by a
// client outside an MLS commit, signed by that client:
//
//	struct {
//	    Sender sender;
//	    Change changes<V>;
//	    opaque signature_key<V>;   // the client's Ed25519 public key (32 bytes)
//	    opaque signature<V>;       // Ed25519 over label || StateTBS (64 bytes)
//	} State;
//
// StateTBS is the encoding of room ID (opaque<V>), sender and changes; the
// room ID binds the signature to one room.
type State struct {
	Sender       Sender
	Changes      []Change
	SignatureKey []byte
	Signature    []byte
}

func (st *State) tbs(room dag.RoomID) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		b.AddBytes([]byte(stateLabel))
		tlspl.AddOpaque(b, room[:])
		st.Sender.marshal(b)
		addChanges(b, st.Changes)
	})
}

// Sign sets SignatureKey and Signature for room with the client's key.
func (st *State) Sign(room dag.RoomID, priv ed25519.PrivateKey) error {
	tbs, err := st.tbs(room)
	if err != nil {
		return fmt.Errorf("roomevent: sign state: %w", err)
	}
	st.SignatureKey = append([]byte(nil), priv.Public().(ed25519.PublicKey)...)
	st.Signature = ed25519.Sign(priv, tbs)
	return nil
}

// Verify checks the client's signature for room.
func (st *State) Verify(room dag.RoomID) error {
	if len(st.SignatureKey) != ed25519.PublicKeySize || len(st.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: key of %d bytes, signature of %d bytes", ErrBadSignature, len(st.SignatureKey), len(st.Signature))
	}
	tbs, err := st.tbs(room)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !ed25519.Verify(st.SignatureKey, tbs, st.Signature) {
		return ErrBadSignature
	}
	return nil
}

// Marshal encodes st.
func (st *State) Marshal() ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		st.Sender.marshal(b)
		addChanges(b, st.Changes)
		tlspl.AddOpaque(b, st.SignatureKey)
		tlspl.AddOpaque(b, st.Signature)
	})
}

// DecodeState decodes a state event's content strictly. It does not verify
// the signature (see [State.Verify]).
func DecodeState(data []byte) (*State, error) {
	var st State
	err := tlspl.Unmarshal(data, "state", func(s *cryptobyte.String) bool {
		return st.Sender.unmarshal(s) && readChanges(s, &st.Changes) &&
			tlspl.ReadOpaque(s, &st.SignatureKey) && tlspl.ReadOpaque(s, &st.Signature)
	})
	if err != nil {
		return nil, decodeErr("state", err)
	}
	if err := st.Sender.check(); err != nil {
		return nil, decodeErr("state", err)
	}
	if len(st.Changes) == 0 {
		return nil, decodeErr("state", errors.New("no changes"))
	}
	if len(st.SignatureKey) != ed25519.PublicKeySize || len(st.Signature) != ed25519.SignatureSize {
		return nil, decodeErr("state", fmt.Errorf("signature key of %d bytes and signature of %d bytes, want %d and %d",
			len(st.SignatureKey), len(st.Signature), ed25519.PublicKeySize, ed25519.SignatureSize))
	}
	return &st, nil
}

// Commit is the content of a commit event: an MLS commit, the room-state
// changes it carries, the Welcome for new members if any, and the commit
// event whose epoch it builds on:
//
//	struct {
//	    Sender sender;
//	    opaque parent<V>;      // event ID (sha2-256 multihash) of the parent
//	                           // commit event, or of the create event for
//	                           // the group's first commit
//	    opaque commit<V>;      // MLSMessage, wire format mls_public_message
//	    Change changes<V>;     // the AppDataUpdates the commit carries
//	    optional<opaque welcome<V>>;  // MLSMessage, wire format mls_welcome
//	    optional<opaque group_info<V>>;  // MLSMessage, wire format
//	                           // mls_group_info: the epoch-0 GroupInfo with
//	                           // its ratchet tree, on a first commit only
//	} Commit;
//
// Servers verify every commit as MLS external observers (package room);
// the group's first commit carries the GroupInfo of epoch 0 that they
// start from.
type Commit struct {
	Sender    Sender
	Parent    dag.EventID
	Commit    []byte
	Changes   []Change
	Welcome   []byte // nil when absent
	GroupInfo []byte // nil when absent
}

// Marshal encodes c.
func (c *Commit) Marshal() ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		c.Sender.marshal(b)
		addID(b, c.Parent)
		tlspl.AddOpaque(b, c.Commit)
		addChanges(b, c.Changes)
		tlspl.AddOptional(b, c.Welcome != nil)
		if c.Welcome != nil {
			tlspl.AddOpaque(b, c.Welcome)
		}
		tlspl.AddOptional(b, c.GroupInfo != nil)
		if c.GroupInfo != nil {
			tlspl.AddOpaque(b, c.GroupInfo)
		}
	})
}

// DecodeCommit decodes a commit event's content strictly.
func DecodeCommit(data []byte) (*Commit, error) {
	var c Commit
	err := tlspl.Unmarshal(data, "commit", func(s *cryptobyte.String) bool {
		var hasWelcome, hasGroupInfo bool
		if !c.Sender.unmarshal(s) || !readID(s, &c.Parent) || !tlspl.ReadOpaque(s, &c.Commit) ||
			!readChanges(s, &c.Changes) || !tlspl.ReadOptional(s, &hasWelcome) {
			return false
		}
		if hasWelcome && !tlspl.ReadOpaque(s, &c.Welcome) {
			return false
		}
		if !tlspl.ReadOptional(s, &hasGroupInfo) {
			return false
		}
		if hasGroupInfo {
			return tlspl.ReadOpaque(s, &c.GroupInfo)
		}
		return true
	})
	if err != nil {
		return nil, decodeErr("commit", err)
	}
	if err := c.Sender.check(); err != nil {
		return nil, decodeErr("commit", err)
	}
	if len(c.Commit) == 0 {
		return nil, decodeErr("commit", errors.New("empty MLS commit"))
	}
	return &c, nil
}

// Proposal is the content of a proposal event: an MLS proposal sent by
// reference, in the epoch of the commit event Epoch:
//
//	struct {
//	    Sender sender;
//	    opaque epoch<V>;       // event ID of the epoch's commit (or create) event
//	    opaque proposal<V>;    // MLSMessage, wire format mls_public_message
//	} Proposal;
type Proposal struct {
	Sender   Sender
	Epoch    dag.EventID
	Proposal []byte
}

// Marshal encodes p.
func (p *Proposal) Marshal() ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		p.Sender.marshal(b)
		addID(b, p.Epoch)
		tlspl.AddOpaque(b, p.Proposal)
	})
}

// DecodeProposal decodes a proposal event's content strictly.
func DecodeProposal(data []byte) (*Proposal, error) {
	var p Proposal
	err := tlspl.Unmarshal(data, "proposal", func(s *cryptobyte.String) bool {
		return p.Sender.unmarshal(s) && readID(s, &p.Epoch) && tlspl.ReadOpaque(s, &p.Proposal)
	})
	if err != nil {
		return nil, decodeErr("proposal", err)
	}
	if err := p.Sender.check(); err != nil {
		return nil, decodeErr("proposal", err)
	}
	if len(p.Proposal) == 0 {
		return nil, decodeErr("proposal", errors.New("empty MLS proposal"))
	}
	return &p, nil
}

// Message is the content of a message event: an MLS application message
// (PrivateMessage) of the epoch whose commit event is Epoch:
//
//	struct {
//	    Sender sender;
//	    opaque epoch<V>;       // event ID of the epoch's commit (or create) event
//	    opaque message<V>;     // MLSMessage, wire format mls_private_message
//	} Message;
type Message struct {
	Sender  Sender
	Epoch   dag.EventID
	Message []byte
}

// Marshal encodes m.
func (m *Message) Marshal() ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		m.Sender.marshal(b)
		addID(b, m.Epoch)
		tlspl.AddOpaque(b, m.Message)
	})
}

// DecodeMessage decodes a message event's content strictly.
func DecodeMessage(data []byte) (*Message, error) {
	var m Message
	err := tlspl.Unmarshal(data, "message", func(s *cryptobyte.String) bool {
		return m.Sender.unmarshal(s) && readID(s, &m.Epoch) && tlspl.ReadOpaque(s, &m.Message)
	})
	if err != nil {
		return nil, decodeErr("message", err)
	}
	if err := m.Sender.check(); err != nil {
		return nil, decodeErr("message", err)
	}
	if len(m.Message) == 0 {
		return nil, decodeErr("message", errors.New("empty MLS message"))
	}
	return &m, nil
}

// SenderOf decodes the content of an event of kind create, state, commit,
// proposal or message and returns its sender. Other kinds have none.
func SenderOf(kind dag.Kind, content []byte) (Sender, error) {
	switch kind {
	case dag.KindCreate:
		c, err := DecodeCreate(content)
		if err != nil {
			return Sender{}, err
		}
		return c.Creator, nil
	case dag.KindState:
		c, err := DecodeState(content)
		if err != nil {
			return Sender{}, err
		}
		return c.Sender, nil
	case dag.KindCommit:
		c, err := DecodeCommit(content)
		if err != nil {
			return Sender{}, err
		}
		return c.Sender, nil
	case dag.KindProposal:
		c, err := DecodeProposal(content)
		if err != nil {
			return Sender{}, err
		}
		return c.Sender, nil
	case dag.KindMessage:
		c, err := DecodeMessage(content)
		if err != nil {
			return Sender{}, err
		}
		return c.Sender, nil
	}
	return Sender{}, decodeErr(kind.String(), errors.New("kind carries no room-event sender"))
}
