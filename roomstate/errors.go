package roomstate

import (
	"errors"
	"fmt"
)

// ErrRejected is wrapped by every [*RejectError], so callers that only need
// to know "the change was refused" can use errors.Is.
var ErrRejected = errors.New("roomstate: change rejected")

// Reason classifies why a change, proposal, commit or message was refused.
// The set is small on purpose: servers map it onto peer scoring and onto the
// MIMI UpdateResponseCode (notAllowed, invalidProposal).
type Reason uint8

// The reasons a [*RejectError] can carry.
const (
	// ReasonNotAllowed: the actor's role lacks the capability, or the room's
	// base policy (fixed membership, join rule) forbids the action.
	ReasonNotAllowed Reason = iota + 1
	// ReasonUnknownUser: the target user (or client, or server) is not in
	// the participant list (roster, server set).
	ReasonUnknownUser
	// ReasonLimitExceeded: a minimum or maximum participant, active
	// participant, user or client constraint would be violated.
	ReasonLimitExceeded
	// ReasonInvalidTransition: the requested role change is not in the
	// actor's authorized_role_changes, or the target is already in the
	// requested state (for example adding a listed user).
	ReasonInvalidTransition
	// ReasonBanned: the target or the actor holds the banned role (index 1).
	ReasonBanned
	// ReasonMalformed: the change is not well formed (bad URI, duplicate
	// entry, undecodable bytes, unknown role index, empty change).
	ReasonMalformed
	// ReasonIncomplete: a commit lacks a change that must travel with
	// another: adding a user's clients without the participant add, or
	// removing or banning a user without removing all of that user's
	// clients (draft-ietf-mimi-protocol-06, Section 5.3).
	ReasonIncomplete
)

var reasonNames = [...]string{
	ReasonNotAllowed:        "NotAllowed",
	ReasonUnknownUser:       "UnknownUser",
	ReasonLimitExceeded:     "LimitExceeded",
	ReasonInvalidTransition: "InvalidTransition",
	ReasonBanned:            "Banned",
	ReasonMalformed:         "Malformed",
	ReasonIncomplete:        "Incomplete",
}

// String returns the reason's name, e.g. "NotAllowed".
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// ParseReason returns the reason named s, as printed by [Reason.String].
func ParseReason(s string) (Reason, bool) {
	for i, n := range reasonNames {
		if n == s && n != "" {
			return Reason(i), true
		}
	}
	return 0, false
}

// RejectError is returned when a change, commit or message is refused. The
// state passed in is left unchanged.
type RejectError struct {
	Reason Reason
	// Detail says what was refused, for logs and tests; never parse it.
	Detail string
	// Err is an optional underlying cause (for example a *tlspl.DecodeError).
	Err error
}

// Error formats the rejection as "roomstate: <Reason>: <detail>".
func (e *RejectError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("roomstate: %s: %s: %v", e.Reason, e.Detail, e.Err)
	}
	return fmt.Sprintf("roomstate: %s: %s", e.Reason, e.Detail)
}

// Unwrap returns ErrRejected and the underlying cause, if any.
func (e *RejectError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrRejected, e.Err}
	}
	return []error{ErrRejected}
}

// ReasonOf returns the reason of the first *RejectError in err's chain, or 0.
func ReasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return 0
}

func reject(r Reason, format string, args ...any) error {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}
