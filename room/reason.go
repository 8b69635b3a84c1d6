package room

import (
	"errors"
	"fmt"
)

// ErrRejected is wrapped by every rejection of an event by the engine.
var ErrRejected = errors.New("room: event not accepted")

// Reason classifies why an event was not accepted. The strings are metric
// labels (rhizome_events_rejected_total) and appear in API errors.
type Reason string

// The reasons. Those a peer causes by sending bytes that no honest server
// sends are [Reason.Malformed]; the others are decisions of room state.
const (
	ReasonMalformedContent   Reason = "malformed-content"    // content does not decode
	ReasonMalformedMLS       Reason = "malformed-mls"        // MLS bytes, wire format or content type
	ReasonMalformedVote      Reason = "malformed-vote"       // a seal, ack or suspect does not decode
	ReasonNoState            Reason = "no-state"             // an event before the room's create event
	ReasonDuplicateCreate    Reason = "duplicate-create"     // a second create event
	ReasonNotARoomServer     Reason = "not-a-room-server"    // origin is not a server of the room
	ReasonForeignSender      Reason = "foreign-sender"       // sender is not a user of the origin's domain
	ReasonBadClientSignature Reason = "bad-client-signature" // a state event's device signature
	ReasonUnknownEpoch       Reason = "unknown-epoch"        // epoch or parent is no accepted commit
	ReasonRoomState          Reason = "roomstate"            // room policy forbids it
	ReasonVote               Reason = "vote-rejected"        // the ordering machine refused a vote
	ReasonStaleParent        Reason = "stale-parent"         // a local commit not on the canonical tip
	ReasonStaleEpoch         Reason = "stale-epoch"          // a local message or proposal outside the tip's epoch
	ReasonServersByCommit    Reason = "servers-by-commit"    // a standalone state event changing the servers
	ReasonAdoptedState       Reason = "adopted-state"        // a state event a commit adopts does not apply
)

// Malformed reports whether the reason means the bytes themselves are
// bad, which no honest server produces (the sender can be scored down).
func (r Reason) Malformed() bool {
	switch r {
	case ReasonMalformedContent, ReasonMalformedMLS, ReasonMalformedVote, ReasonDuplicateCreate:
		return true
	}
	return false
}

// RejectError reports why an event was not accepted.
type RejectError struct {
	Reason Reason
	Err    error
}

// Error describes the rejection.
func (e *RejectError) Error() string {
	return fmt.Sprintf("room: event not accepted (%s): %v", e.Reason, e.Err)
}

// Unwrap returns ErrRejected and the detail.
func (e *RejectError) Unwrap() []error { return []error{ErrRejected, e.Err} }

func reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Err: fmt.Errorf(format, args...)}
}

func rejectErr(r Reason, err error) *RejectError { return &RejectError{Reason: r, Err: err} }
