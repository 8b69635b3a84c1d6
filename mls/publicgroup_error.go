package mls

import (
	"errors"
	"fmt"
)

// Rejections by an external observer ([PublicGroup]).

// ErrUnreadable reports a handshake message an external observer cannot
// read: a proposal or commit sent as a PrivateMessage. Its content is
// encrypted under keys only members hold, so the observer can check
// neither its sender nor its effect.
var ErrUnreadable = errors.New("mls: encrypted handshake message: an external observer cannot read it")

// ObserverReason classifies why a [PublicGroup] rejected a message or a
// GroupInfo, for a server to report and score (the String form is the
// reason a server can put on the wire, e.g. "mls-replay").
type ObserverReason uint8

// The observer's rejection reasons.
const (
	// ObserverReasonNone is not a rejection.
	ObserverReasonNone ObserverReason = iota
	// ObserverMalformed: no message, the wrong wire format or content
	// type, bytes that do not decode, or a sender type that cannot send it.
	ObserverMalformed
	// ObserverReplay: a message for another group or another epoch
	// ([ErrWrongGroup], [ErrWrongEpoch]): a replay of an earlier epoch's
	// commit, a commit of another room, or one built on a state this
	// branch does not have.
	ObserverReplay
	// ObserverNotMember: the sender is not a member of the epoch (a blank
	// or out-of-range leaf, an unknown external sender).
	ObserverNotMember
	// ObserverBadSignature: the FramedContent signature does not verify
	// with the sender's key over this epoch's GroupContext (a relabelled
	// sender, a tampered message, another epoch's signature).
	ObserverBadSignature
	// ObserverInvalidProposal: a proposal, or the proposal list of a
	// commit, breaks RFC 9420, Sections 12.1-12.3 (a bad KeyPackage, a
	// remove of a blank leaf, duplicate adds, an unknown reference, ...).
	ObserverInvalidProposal
	// ObserverInvalidPath: the UpdatePath is missing where required or
	// fails the checks that need no secret (leaf node, parent hashes,
	// path length, ciphertext counts, duplicate keys).
	ObserverInvalidPath
	// ObserverInvalidCommit: another rule of a commit (sender type, a
	// missing or wrong-sized confirmation tag, a group that was
	// reinitialized, ...).
	ObserverInvalidCommit
	// ObserverUnreadable: a PrivateMessage proposal or commit
	// ([ErrUnreadable]).
	ObserverUnreadable
	// ObserverInvalidGroupInfo: a GroupInfo and tree that cannot bootstrap
	// an observer (bad tree, tree hash, leaf, extension or signature).
	ObserverInvalidGroupInfo
)

var observerReasonNames = [...]string{"none", "mls-malformed", "mls-replay", "mls-not-member", "mls-bad-signature",
	"mls-invalid-proposal", "mls-invalid-path", "mls-invalid-commit", "mls-unreadable", "mls-invalid-group-info"}

// String returns the reason's wire name, such as "mls-replay".
func (r ObserverReason) String() string {
	if int(r) < len(observerReasonNames) {
		return observerReasonNames[r]
	}
	return fmt.Sprintf("mls-reason(%d)", uint8(r))
}

// ObserverError is every rejection by a [PublicGroup]: a Reason for the
// server and the cause, which keeps the package's sentinels (errors.Is
// with [ErrWrongEpoch], [ErrBadSignature], [ErrInvalidProposal], ... and
// [RejectReason] work through it).
type ObserverError struct {
	Reason ObserverReason
	Err    error
}

// Error describes the rejection.
func (e *ObserverError) Error() string {
	return "mls: observer: " + e.Reason.String() + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *ObserverError) Unwrap() error { return e.Err }

// ObserverReasonOf returns the Reason of an [*ObserverError] in err's
// chain, or ObserverReasonNone.
func ObserverReasonOf(err error) ObserverReason {
	var oe *ObserverError
	if errors.As(err, &oe) {
		return oe.Reason
	}
	return ObserverReasonNone
}

func observerErr(r ObserverReason, err error) error { return &ObserverError{Reason: r, Err: err} }
