package consensus

import (
	"errors"
	"fmt"
)

// Sentinel errors. Step wraps them in a [*RejectError].
var (
	// ErrMalformed reports an input that breaks the wire format or the
	// structure of an event (no content, empty IDs, unsorted lists).
	ErrMalformed = errors.New("consensus: malformed input")
	// ErrNotMember reports a vote whose origin is not a server of the room.
	ErrNotMember = errors.New("consensus: vote from a server outside the room")
)

// Reason classifies why a peer's input was rejected, so that p2p can score
// the peer without matching error strings.
type Reason uint8

// Rejection reasons.
const (
	// ReasonMalformed: the input does not decode or is structurally invalid.
	ReasonMalformed Reason = iota + 1
	// ReasonUnauthorized: the origin may not cast this vote.
	ReasonUnauthorized
)

// String returns the reason's name.
func (r Reason) String() string {
	switch r {
	case ReasonMalformed:
		return "malformed"
	case ReasonUnauthorized:
		return "unauthorized"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// RejectError is the error Step returns for an input it will not record.
type RejectError struct {
	Reason Reason
	ID     EventID
	Err    error
}

// Error describes the rejection.
func (e *RejectError) Error() string {
	return fmt.Sprintf("consensus: reject event %x (%v): %v", string(e.ID), e.Reason, e.Err)
}

// Unwrap returns the underlying sentinel.
func (e *RejectError) Unwrap() error { return e.Err }

func reject(r Reason, id EventID, err error) error {
	return &RejectError{Reason: r, ID: id, Err: err}
}
