package mls

import (
	"errors"
	"fmt"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Sentinel errors for peer input that decodes but cannot be accepted. Every
// decoding failure wraps [tlspl.ErrMalformed] (or [tlspl.ErrTrailingData]);
// [RejectReason] maps any error of this package to the small reason set that
// p2p uses to score peers.
var (
	// ErrUnknownValue is wrapped by every [*UnknownValueError].
	ErrUnknownValue = errors.New("mls: unknown enum value")
	// ErrDuplicateExtension reports two extensions of one type in a list
	// (RFC 9420, Section 13.4).
	ErrDuplicateExtension = errors.New("mls: duplicate extension type")
	// ErrBadMembershipTag reports a PublicMessage membership tag mismatch
	// (RFC 9420, Section 6.2).
	ErrBadMembershipTag = errors.New("mls: membership tag mismatch")
	// ErrBadConfirmationTag reports a confirmation tag mismatch
	// (RFC 9420, Section 8.2).
	ErrBadConfirmationTag = errors.New("mls: confirmation tag mismatch")
	// ErrDecrypt reports an AEAD or HPKE decryption failure on peer input.
	ErrDecrypt = errors.New("mls: decryption failed")
	// ErrWrongGroup reports a message for another group.
	ErrWrongGroup = errors.New("mls: message for another group")
	// ErrWrongEpoch reports a message for another epoch.
	ErrWrongEpoch = errors.New("mls: message for another epoch")
	// ErrBadPadding reports non-zero padding in a PrivateMessageContent
	// (RFC 9420, Section 6.3.1).
	ErrBadPadding = errors.New("mls: non-zero padding")
	// ErrInvalidMessage reports a well-formed message that breaks a framing
	// rule, e.g. a PrivateMessage from a non-member sender.
	ErrInvalidMessage = errors.New("mls: invalid message")
)

// UnknownValueError reports an enumerated value that RFC 9420 requires a
// receiver to reject (an unknown wire format, content type, sender type,
// proposal type, credential type, ...). It matches both [ErrUnknownValue]
// and [tlspl.ErrMalformed] with errors.Is.
type UnknownValueError struct {
	Type  string // the enum, e.g. "ProposalType"
	Value uint64
}

// Error describes the unknown value.
func (e *UnknownValueError) Error() string {
	return fmt.Sprintf("mls: unknown %s %d", e.Type, e.Value)
}

// Unwrap returns [ErrUnknownValue] and [tlspl.ErrMalformed].
func (e *UnknownValueError) Unwrap() []error { return []error{ErrUnknownValue, tlspl.ErrMalformed} }

// Reason classifies why peer input was rejected, like a TLS alert, so that
// the network layer can score the peer without matching error strings.
type Reason uint8

// The rejection reasons. ReasonNone means "not a rejection of peer input"
// (nil or a local error).
const (
	ReasonNone         Reason = iota
	ReasonMalformed           // undecodable bytes or an unknown enum value
	ReasonBadSignature        // a signature, MAC or tag did not verify
	ReasonDecrypt             // AEAD/HPKE decryption failed
	ReasonWrongEpoch          // another group or epoch
	ReasonReplay              // a message key that was already used
	ReasonUnsupported         // a cipher suite or feature this build lacks
	ReasonInvalid             // well formed but breaks a protocol rule
)

var reasonNames = [...]string{"none", "malformed", "bad-signature", "decrypt", "wrong-epoch", "replay", "unsupported", "invalid"}

// String returns a short lowercase name such as "malformed".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// RejectReason maps an error returned by this package to a [Reason].
func RejectReason(err error) Reason {
	switch {
	case err == nil:
		return ReasonNone
	case errors.Is(err, tlspl.ErrMalformed), errors.Is(err, tlspl.ErrTrailingData),
		errors.Is(err, ErrDuplicateExtension):
		return ReasonMalformed
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrBadMembershipTag),
		errors.Is(err, ErrBadConfirmationTag):
		return ReasonBadSignature
	case errors.Is(err, ErrReplay), errors.Is(err, ErrGenerationConsumed), errors.Is(err, ErrGenerationTooOld):
		return ReasonReplay
	case errors.Is(err, ErrDecrypt), errors.Is(err, ErrBadPadding),
		errors.Is(err, ErrAEADOpen), errors.Is(err, ErrHPKE):
		return ReasonDecrypt
	case errors.Is(err, ErrWrongGroup), errors.Is(err, ErrWrongEpoch):
		return ReasonWrongEpoch
	case errors.Is(err, ErrUnsupportedCipherSuite):
		return ReasonUnsupported
	case errors.Is(err, ErrInvalidMessage), errors.Is(err, ErrLeafOutOfRange),
		errors.Is(err, ErrGenerationTooFarAhead), errors.Is(err, ErrRatchetExhausted):
		return ReasonInvalid
	}
	return ReasonNone
}

// ErrReplay reports a PrivateMessage whose (sender, generation) key was
// already used or deleted: the secret tree erases a key once it has
// decrypted a message (RFC 9420, Section 9.2), so a replay fails.
var ErrReplay = errors.New("mls: message key already used (replay)")
