package p2p

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// maxInviteAnswer bounds an encoded invite answer (status and diagnostic).
const maxInviteAnswer = 1 + 2 + maxStatusMessage

// InviteNotice tells a server that it was invited into a room: the room and
// the event that invited it (the create event listing it, a state change
// or commit adding it to the servers, or one adding a user of its domain).
// The receiver verifies both events with the notifier before it joins.
//
//	struct {
//	    opaque room<V>;                 // 34-byte sha2-256 multihash
//	    opaque invitation<V>;           // EventID, 34-byte sha2-256 multihash
//	} InviteNotice;
type InviteNotice struct {
	Room       dag.RoomID
	Invitation dag.EventID
}

// InviteStatus is the answer code of an invite notice.
type InviteStatus uint8

// Invite answer codes.
const (
	// InviteAccepted: the notice is taken; the receiver verifies it and
	// joins, or not, on its own time.
	InviteAccepted InviteStatus = 0
	// InviteBadRequest: the notice could not be decoded.
	InviteBadRequest InviteStatus = 1
	// InviteRateLimited: the notifier sent notices too fast.
	InviteRateLimited InviteStatus = 2
	// InviteBusy: the receiver is verifying as many notices as it allows;
	// retry later.
	InviteBusy InviteStatus = 3
)

var inviteStatusNames = [...]string{"accepted", "bad_request", "rate_limited", "busy"}

// String returns the status name used in docs/protocol.md.
func (s InviteStatus) String() string {
	if int(s) < len(inviteStatusNames) {
		return inviteStatusNames[s]
	}
	return fmt.Sprintf("inviteStatus(%d)", uint8(s))
}

// InviteAnswer is the receiver's answer to a notice:
//
//	struct {
//	    InviteStatus status;            // uint8
//	    opaque message<V>;              // UTF-8 diagnostic, at most 256 bytes
//	} InviteAnswer;
type InviteAnswer struct {
	Status  InviteStatus
	Message string
}

func (n *InviteNotice) check() error {
	if n.Room.IsZero() || n.Invitation.IsZero() {
		return fmt.Errorf("%w: zero room or invitation", ErrMalformedMessage)
	}
	return nil
}

// Marshal encodes the notice.
func (n *InviteNotice) Marshal() ([]byte, error) {
	if err := n.check(); err != nil {
		return nil, err
	}
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		tlspl.AddOpaque(b, n.Room[:])
		tlspl.AddOpaque(b, n.Invitation[:])
	})
}

// UnmarshalInviteNotice decodes a notice strictly.
func UnmarshalInviteNotice(data []byte) (*InviteNotice, error) {
	n := &InviteNotice{}
	var fieldErr error
	err := tlspl.Unmarshal(data, "p2p.InviteNotice", func(s *cryptobyte.String) bool {
		var room, inv cryptobyte.String
		if !tlspl.ReadVector(s, &room) || !tlspl.ReadVector(s, &inv) {
			return false
		}
		id, err := dag.EventIDFromBytes(room)
		if err != nil {
			fieldErr = fmt.Errorf("room: %w", err)
			return false
		}
		n.Room = dag.RoomID(id)
		if n.Invitation, err = dag.EventIDFromBytes(inv); err != nil {
			fieldErr = fmt.Errorf("invitation: %w", err)
			return false
		}
		return true
	})
	if err := decodeErr("invite notice", fieldErr, err); err != nil {
		return nil, err
	}
	if err := n.check(); err != nil {
		return nil, err
	}
	return n, nil
}

func (a *InviteAnswer) check() error {
	if int(a.Status) >= len(inviteStatusNames) {
		return fmt.Errorf("%w: unknown invite status %d", ErrMalformedMessage, uint8(a.Status))
	}
	if len(a.Message) > maxStatusMessage {
		return fmt.Errorf("%w: message of %d bytes", ErrMalformedMessage, len(a.Message))
	}
	return nil
}

// Marshal encodes the answer.
func (a *InviteAnswer) Marshal() ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(a.Status))
		tlspl.AddOpaque(b, []byte(a.Message))
	})
}

// UnmarshalInviteAnswer decodes an answer strictly.
func UnmarshalInviteAnswer(data []byte) (*InviteAnswer, error) {
	a := &InviteAnswer{}
	err := tlspl.Unmarshal(data, "p2p.InviteAnswer", func(s *cryptobyte.String) bool {
		var status uint8
		var msg []byte
		if !s.ReadUint8(&status) || !tlspl.ReadOpaque(s, &msg) {
			return false
		}
		a.Status, a.Message = InviteStatus(status), string(msg)
		return true
	})
	if err := decodeErr("invite answer", nil, err); err != nil {
		return nil, err
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	return a, nil
}
