package node

import (
	"errors"
	"fmt"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// ErrUnauthorized is wrapped by every authorization rejection of an event
// against its room's state.
var ErrUnauthorized = errors.New("node: event not authorized")

// AuthError reports why an event was not accepted into a room: a short
// reason for metrics and the detail.
type AuthError struct {
	Reason string // e.g. "malformed-content", "not-a-room-server", "roomstate"
	Err    error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("node: event not authorized (%s): %v", e.Reason, e.Err)
}

// Unwrap returns ErrUnauthorized and the detail.
func (e *AuthError) Unwrap() []error { return []error{ErrUnauthorized, e.Err} }

func authErr(reason string, format string, args ...any) *AuthError {
	return &AuthError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// parentLookup tells authorization what it needs about stored events.
type parentLookup interface {
	Get(id dag.EventID) (*dag.Event, error)
}

// authorize checks a stored or candidate event against the room's state
// before it (nil before the create event) and returns the state after it.
// The rules (docs/api.md, "What the server checks"):
//
//   - create: the content decodes, the initial state decodes and lists the
//     origin server, and the creator is a user of the origin's domain;
//   - every other kind: the origin is one of the room's servers;
//   - state, commit, proposal, message: the sender is a user (and client)
//     of the origin's domain, since a server vouches only for its own users;
//   - state: the client signature verifies; each change applies through
//     roomstate.ApplyUpdate with the sender as actor;
//   - commit: an MLS PublicMessage carrying a commit, an optional Welcome,
//     the parent a stored commit or create event of the room, and the
//     carried changes apply as for state;
//   - proposal: an MLS PublicMessage carrying a proposal;
//   - message: an MLS PrivateMessage whose sender's user may send messages;
//   - seal, ack, suspect: from a room server (their content is checked by
//     the ordering layer).
func authorize(st *roomstate.State, ev *dag.Event, parents parentLookup) (*roomstate.State, error) {
	if ev.Kind == dag.KindCreate {
		return authorizeCreate(ev)
	}
	if st == nil {
		return nil, authErr("no-state", "room %v has no create event processed", ev.RoomID())
	}
	origin, ok := st.Server(roomstate.ServerID(ev.Origin))
	if !ok {
		return nil, authErr("not-a-room-server", "origin %v is not a server of room %v", ev.Origin, ev.RoomID())
	}
	var snd roomevent.Sender
	switch ev.Kind {
	case dag.KindSeal, dag.KindAck, dag.KindSuspect:
		return st, nil
	case dag.KindState, dag.KindCommit, dag.KindProposal, dag.KindMessage:
		var err error
		if snd, err = roomevent.SenderOf(ev.Kind, ev.Content); err != nil {
			return nil, &AuthError{Reason: "malformed-content", Err: err}
		}
		if err := checkDomain(snd, origin.Domain); err != nil {
			return nil, err
		}
	default:
		return nil, authErr("malformed-content", "unknown kind %v", ev.Kind)
	}
	actor := roomstate.Actor{Kind: roomstate.ActorUser, User: roomstate.URI(snd.User), Client: roomstate.ClientID(snd.Client), Server: roomstate.ServerID(ev.Origin)}
	switch ev.Kind {
	case dag.KindState:
		c, _ := roomevent.DecodeState(ev.Content)
		if err := c.Verify(ev.RoomID()); err != nil {
			return nil, &AuthError{Reason: "bad-client-signature", Err: err}
		}
		return applyChanges(st, actor, c.Changes)
	case dag.KindCommit:
		c, _ := roomevent.DecodeCommit(ev.Content)
		if err := checkMLS(c.Commit, mls.WireFormatPublicMessage, mls.ContentTypeCommit); err != nil {
			return nil, err
		}
		if c.Welcome != nil {
			if err := checkMLS(c.Welcome, mls.WireFormatWelcome, 0); err != nil {
				return nil, err
			}
		}
		if err := checkEpoch(ev, c.Parent, parents); err != nil {
			return nil, err
		}
		return applyChanges(st, actor, c.Changes)
	case dag.KindProposal:
		c, _ := roomevent.DecodeProposal(ev.Content)
		if err := checkMLS(c.Proposal, mls.WireFormatPublicMessage, mls.ContentTypeProposal); err != nil {
			return nil, err
		}
		return st, checkEpoch(ev, c.Epoch, parents)
	default: // message
		c, _ := roomevent.DecodeMessage(ev.Content)
		if err := checkMLS(c.Message, mls.WireFormatPrivateMessage, 0); err != nil {
			return nil, err
		}
		if !st.Has(actor.User, roomstate.CanSendMessage) {
			return nil, authErr("roomstate", "user %s may not send messages in room %v (role %d)", actor.User, ev.RoomID(), st.RoleOf(actor.User))
		}
		return st, checkEpoch(ev, c.Epoch, parents)
	}
}

func authorizeCreate(ev *dag.Event) (*roomstate.State, error) {
	c, err := roomevent.DecodeCreate(ev.Content)
	if err != nil {
		return nil, &AuthError{Reason: "malformed-content", Err: err}
	}
	comps, err := roomstate.ParseComponents(c.State)
	if err != nil {
		return nil, &AuthError{Reason: "malformed-content", Err: err}
	}
	st, err := roomstate.FromComponents(comps)
	if err != nil {
		return nil, &AuthError{Reason: "roomstate", Err: err}
	}
	origin, ok := st.Server(roomstate.ServerID(ev.Origin))
	if !ok {
		return nil, authErr("not-a-room-server", "create event's origin %v is not in the room's initial server list", ev.Origin)
	}
	if err := checkDomain(c.Creator, origin.Domain); err != nil {
		return nil, err
	}
	return st, nil
}

// checkDomain requires the sender's user and client URIs to be of domain.
func checkDomain(s roomevent.Sender, domain string) error {
	if roomstate.URI(s.User).Domain() != domain || roomstate.URI(s.Client).Domain() != domain {
		return authErr("foreign-sender", "sender %s (%s) is not a user of the origin's domain %q", s.User, s.Client, domain)
	}
	return nil
}

func applyChanges(st *roomstate.State, actor roomstate.Actor, changes []roomevent.Change) (*roomstate.State, error) {
	for i, ch := range changes {
		next, err := roomstate.ApplyUpdate(st, actor, roomstate.ComponentID(ch.Component), ch.Update)
		if err != nil {
			return nil, &AuthError{Reason: "roomstate", Err: fmt.Errorf("change %d (component 0x%04x): %w", i, ch.Component, err)}
		}
		st = next
	}
	return st, nil
}

// checkMLS decodes an MLSMessage and checks its wire format (and, for a
// PublicMessage, its content type).
func checkMLS(raw []byte, wf mls.WireFormat, ct mls.ContentType) error {
	msg, err := mls.UnmarshalMLSMessage(raw)
	if err != nil {
		return &AuthError{Reason: "malformed-mls", Err: err}
	}
	if msg.WireFormat != wf {
		return authErr("malformed-mls", "MLS wire format %d, want %d", msg.WireFormat, wf)
	}
	if ct != 0 && msg.PublicMessage.Content.ContentType != ct {
		return authErr("malformed-mls", "MLS content type %d, want %d", msg.PublicMessage.Content.ContentType, ct)
	}
	return nil
}

// checkEpoch requires the named epoch (a commit's parent, or the epoch of a
// proposal or message) to be a stored commit or create event of the room.
func checkEpoch(ev *dag.Event, epoch dag.EventID, parents parentLookup) error {
	p, err := parents.Get(epoch)
	if errors.Is(err, dag.ErrNotFound) {
		return authErr("unknown-epoch", "epoch event %v is not stored", epoch)
	}
	if err != nil {
		return err
	}
	if p.RoomID() != ev.RoomID() || (p.Kind != dag.KindCommit && p.Kind != dag.KindCreate) {
		return authErr("unknown-epoch", "epoch event %v is a %v of room %v, want a commit or create event of room %v", epoch, p.Kind, p.RoomID(), ev.RoomID())
	}
	return nil
}
