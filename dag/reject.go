package dag

import (
	"errors"
	"fmt"
)

// Reason classifies why an event from a peer was rejected, so that p2p can
// score the peer that sent it (like a TLS alert). The set is small on purpose;
// the wrapped error carries the detail.
type Reason uint8

// Rejection reasons (docs/events.md, "Validation").
const (
	// ReasonMalformed: the bytes are not a canonical event encoding, or a
	// field breaks a structural rule (version, kind, unsorted parents, a
	// create event with a room or parents, ...).
	ReasonMalformed Reason = iota + 1
	// ReasonOversize: the encoding exceeds [MaxEventSize].
	ReasonOversize
	// ReasonBadSignature: the origin's Ed25519 signature does not verify.
	ReasonBadSignature
	// ReasonBadHash: a referenced ID is a multihash of a function other than
	// sha2-256, or an ID does not match the event it names.
	ReasonBadHash
	// ReasonUnknownRoom: the room's create event is not known here.
	ReasonUnknownRoom
	// ReasonTooManyParents: more than [MaxParents] parents.
	ReasonTooManyParents
	// ReasonForeignParent: a parent belongs to another room.
	ReasonForeignParent
	// ReasonDuplicateParent: a parent is listed twice.
	ReasonDuplicateParent
)

// Sentinel errors, one per [Reason]. A [*RejectError] matches its reason's
// sentinel under errors.Is.
var (
	ErrMalformed       = errors.New("dag: malformed event")
	ErrOversize        = errors.New("dag: event too large")
	ErrBadSignature    = errors.New("dag: bad signature")
	ErrBadHash         = errors.New("dag: bad hash")
	ErrUnknownRoom     = errors.New("dag: unknown room")
	ErrTooManyParents  = errors.New("dag: too many parents")
	ErrForeignParent   = errors.New("dag: parent from another room")
	ErrDuplicateParent = errors.New("dag: duplicate parent")
)

var reasonInfo = [...]struct {
	name string
	err  error
}{
	ReasonMalformed:       {"malformed", ErrMalformed},
	ReasonOversize:        {"oversize", ErrOversize},
	ReasonBadSignature:    {"bad-signature", ErrBadSignature},
	ReasonBadHash:         {"bad-hash", ErrBadHash},
	ReasonUnknownRoom:     {"unknown-room", ErrUnknownRoom},
	ReasonTooManyParents:  {"too-many-parents", ErrTooManyParents},
	ReasonForeignParent:   {"foreign-parent", ErrForeignParent},
	ReasonDuplicateParent: {"duplicate-parent", ErrDuplicateParent},
}

// String returns a short lowercase name for the reason, e.g. "bad-signature".
func (r Reason) String() string {
	if r == 0 || int(r) >= len(reasonInfo) {
		return fmt.Sprintf("reason(%d)", uint8(r))
	}
	return reasonInfo[r].name
}

// Sentinel returns the sentinel error of the reason, or nil for an unknown
// reason.
func (r Reason) Sentinel() error {
	if r == 0 || int(r) >= len(reasonInfo) {
		return nil
	}
	return reasonInfo[r].err
}

// RejectError reports that an event was rejected. Callers that score peers
// branch on Reason; errors.Is matches the reason's sentinel (for example
// [ErrBadSignature]) and the wrapped cause.
type RejectError struct {
	Reason Reason
	Err    error // detail; may be nil
}

func (e *RejectError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("dag: event rejected (%s)", e.Reason)
	}
	return fmt.Sprintf("dag: event rejected (%s): %v", e.Reason, e.Err)
}

// Unwrap returns the reason's sentinel and the detail error.
func (e *RejectError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if s := e.Reason.Sentinel(); s != nil {
		errs = append(errs, s)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// reject builds a *RejectError with a formatted detail.
func reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason of the first [*RejectError] in err's chain.
func ReasonOf(err error) (Reason, bool) {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason, true
	}
	return 0, false
}
