package room

import (
	"fmt"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// authorize checks event ev of a room against st, the room state the event
// applies to (nil only for the create event), and returns the state after
// it. The rules (docs/api.md, "What the server checks"):
//
//   - create: the content decodes, the initial state decodes and lists the
//     origin server, and the creator is a user of the origin's domain;
//   - every other kind: the origin is one of the room's servers in st;
//   - state, commit, proposal, message: the sender is a user (and client)
//     of the origin's domain, since a server vouches only for its own users;
//   - state: the client signature verifies; each change applies through
//     roomstate.ApplyUpdate with the sender as actor (the engine does not
//     call authorize for standalone state events: it checks them when a
//     commit adopts them, see adoptStates);
//   - commit: an MLS PublicMessage carrying a commit, an optional Welcome,
//     and the carried changes apply as for state;
//   - proposal: an MLS PublicMessage carrying a proposal;
//   - message: an MLS PrivateMessage whose sender's user may send messages;
//   - seal, ack, suspect: from a room server (their content is the ordering
//     machine's to check).
//
// Which state st is (the epoch's, the parent's, the canonical one) is the
// caller's choice; see Engine.accept.
func authorize(st *roomstate.State, ev *dag.Event) (*roomstate.State, error) {
	if ev.Kind == dag.KindCreate {
		return authorizeCreate(ev)
	}
	if st == nil {
		return nil, reject(ReasonNoState, "room %v has no create event processed", ev.RoomID())
	}
	origin, ok := st.Server(roomstate.ServerID(ev.Origin))
	if !ok {
		return nil, reject(ReasonNotARoomServer, "origin %v is not a server of room %v", ev.Origin, ev.RoomID())
	}
	var snd roomevent.Sender
	switch ev.Kind {
	case dag.KindSeal, dag.KindAck, dag.KindSuspect:
		return st, nil
	case dag.KindState, dag.KindCommit, dag.KindProposal, dag.KindMessage:
		var err error
		if snd, err = roomevent.SenderOf(ev.Kind, ev.Content); err != nil {
			return nil, rejectErr(ReasonMalformedContent, err)
		}
		if err := checkDomain(snd, origin.Domain); err != nil {
			return nil, err
		}
	default:
		return nil, reject(ReasonMalformedContent, "unknown kind %v", ev.Kind)
	}
	actor := actorOf(ev, snd)
	switch ev.Kind {
	case dag.KindState:
		c, _ := roomevent.DecodeState(ev.Content)
		if err := c.Verify(ev.RoomID()); err != nil {
			return nil, rejectErr(ReasonBadClientSignature, err)
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
		return applyChanges(st, actor, c.Changes)
	case dag.KindProposal:
		c, _ := roomevent.DecodeProposal(ev.Content)
		return st, checkMLS(c.Proposal, mls.WireFormatPublicMessage, mls.ContentTypeProposal)
	default: // message
		c, _ := roomevent.DecodeMessage(ev.Content)
		if err := checkMLS(c.Message, mls.WireFormatPrivateMessage, 0); err != nil {
			return nil, err
		}
		if !st.Has(actor.User, roomstate.CanSendMessage) {
			return nil, reject(ReasonRoomState, "user %s may not send messages in room %v (role %d)", actor.User, ev.RoomID(), st.RoleOf(actor.User))
		}
		return st, nil
	}
}

// InitialState authorizes a room's create event and returns the room's
// initial state.
func InitialState(create *dag.Event) (*roomstate.State, error) {
	if create.Kind != dag.KindCreate {
		return nil, reject(ReasonNoState, "event %v is a %v, not a create event", create.ID(), create.Kind)
	}
	return authorizeCreate(create)
}

func authorizeCreate(ev *dag.Event) (*roomstate.State, error) {
	c, err := roomevent.DecodeCreate(ev.Content)
	if err != nil {
		return nil, rejectErr(ReasonMalformedContent, err)
	}
	comps, err := roomstate.ParseComponents(c.State)
	if err != nil {
		return nil, rejectErr(ReasonMalformedContent, err)
	}
	st, err := roomstate.FromComponents(comps)
	if err != nil {
		return nil, rejectErr(ReasonRoomState, err)
	}
	origin, ok := st.Server(roomstate.ServerID(ev.Origin))
	if !ok {
		return nil, reject(ReasonNotARoomServer, "create event's origin %v is not in the room's initial server list", ev.Origin)
	}
	if err := checkDomain(c.Creator, origin.Domain); err != nil {
		return nil, err
	}
	return st, nil
}

// checkDomain requires the sender's user and client URIs to be of domain.
func checkDomain(s roomevent.Sender, domain string) error {
	if roomstate.URI(s.User).Domain() != domain || roomstate.URI(s.Client).Domain() != domain {
		return reject(ReasonForeignSender, "sender %s (%s) is not a user of the origin's domain %q", s.User, s.Client, domain)
	}
	return nil
}

// actorOf is the room-state actor of an event sent by snd through the
// event's origin server.
func actorOf(ev *dag.Event, snd roomevent.Sender) roomstate.Actor {
	return roomstate.Actor{Kind: roomstate.ActorUser, User: roomstate.URI(snd.User), Client: roomstate.ClientID(snd.Client), Server: roomstate.ServerID(ev.Origin)}
}

// adoptStates applies the state events a commit adopts to st, in order
// (adoptState); the first that does not apply fails the commit
// (ReasonAdoptedState, wrapping why).
func adoptStates(st *roomstate.State, adopted []StateEntry) (*roomstate.State, error) {
	for _, a := range adopted {
		next, err := adoptState(st, &a)
		if err != nil {
			return nil, rejectErr(ReasonAdoptedState, fmt.Errorf("adopted state event %v: %w", a.ID, err))
		}
		st = next
	}
	return st, nil
}

// adoptState applies state event a to st with its sender as actor, held to
// what authorize checks of a state event against st: its origin is a
// server of the room, its sender a user (and client) of the origin's
// domain, and each change applies.
func adoptState(st *roomstate.State, a *StateEntry) (*roomstate.State, error) {
	origin, ok := st.Server(a.Actor.Server)
	if !ok {
		return nil, reject(ReasonNotARoomServer, "origin %v is not a server of the room", dag.ServerID(a.Actor.Server))
	}
	if err := checkDomain(roomevent.Sender{User: string(a.Actor.User), Client: string(a.Actor.Client)}, origin.Domain); err != nil {
		return nil, err
	}
	return applyChanges(st, a.Actor, a.Changes)
}

func applyChanges(st *roomstate.State, actor roomstate.Actor, changes []roomevent.Change) (*roomstate.State, error) {
	for i, ch := range changes {
		next, err := roomstate.ApplyUpdate(st, actor, roomstate.ComponentID(ch.Component), ch.Update)
		if err != nil {
			return nil, rejectErr(ReasonRoomState, fmt.Errorf("change %d (component 0x%04x): %w", i, ch.Component, err))
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
		return rejectErr(ReasonMalformedMLS, err)
	}
	if msg.WireFormat != wf {
		return reject(ReasonMalformedMLS, "MLS wire format %d, want %d", msg.WireFormat, wf)
	}
	if ct != 0 && msg.PublicMessage.Content.ContentType != ct {
		return reject(ReasonMalformedMLS, "MLS content type %d, want %d", msg.PublicMessage.Content.ContentType, ct)
	}
	return nil
}

// ApplyState applies the changes of a standalone state event sent by
// actor (its Server the event's origin) to st, as a commit adopting the
// event does: the origin is a server of the room, the sender a user of the
// origin's domain, and each change applies through roomstate.ApplyUpdate.
// Clients fold adopted state events with it, as servers do.
func ApplyState(st *roomstate.State, actor roomstate.Actor, changes []roomevent.Change) (*roomstate.State, error) {
	return adoptState(st, &StateEntry{Kind: dag.KindState, Actor: actor, Changes: changes})
}
