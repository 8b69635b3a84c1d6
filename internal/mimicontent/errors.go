package mimicontent

import (
	"errors"
	"fmt"
)

// ErrMalformed is matched (with [errors.Is]) by every error [Decode] and
// [DecodeDerivedValues] return: the bytes are not a MIMI content message we
// accept. The more specific sentinels below say which rule was broken; each
// decode error matches ErrMalformed and exactly one of them.
var ErrMalformed = errors.New("mimicontent: malformed content")

// Specific decode failures. Each is wrapped in a [*DecodeError].
var (
	// ErrTruncated means the input ended inside a data item.
	ErrTruncated = errors.New("mimicontent: truncated cbor")
	// ErrTrailingBytes means bytes follow the single top-level data item.
	ErrTrailingBytes = errors.New("mimicontent: trailing bytes after cbor item")
	// ErrNotDeterministic means the input is valid CBOR but breaks the
	// core deterministic encoding rules of RFC 8949, Section 4.2.1:
	// a non-shortest integer, length or float, an indefinite length, an
	// unsorted map, or a bignum that fits an integer.
	ErrNotDeterministic = errors.New("mimicontent: cbor not in deterministic encoding")
	// ErrDuplicateKey means a map holds the same key twice.
	ErrDuplicateKey = errors.New("mimicontent: duplicate map key")
	// ErrUnsupported means a CBOR feature this format does not use or
	// allow: undefined, unassigned simple values, reserved additional
	// information values, a stray break code, or a NaN other than the
	// half-precision quiet NaN (draft-ietf-mimi-content-08, Section 6.2).
	ErrUnsupported = errors.New("mimicontent: unsupported cbor item")
	// ErrInvalidUTF8 means a text string is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("mimicontent: text string is not utf-8")
	// ErrTooDeep means NestedParts or extension values nest deeper than
	// the draft allows (Section 6.3).
	ErrTooDeep = errors.New("mimicontent: nesting too deep")
	// ErrTooLarge means the message, the topicId or the part count is
	// above our bounds (see [MaxSize], [MaxTopicIDSize], [MaxParts]).
	ErrTooLarge = errors.New("mimicontent: content too large")
	// ErrSchema means well-formed deterministic CBOR that does not match
	// the CDDL of Appendix A (wrong type, arity or value range).
	ErrSchema = errors.New("mimicontent: content does not match schema")
)

// DecodeError reports where and why decoding failed. Err is one of the
// specific sentinels (ErrTruncated, ErrSchema, ...); the error also matches
// [ErrMalformed].
type DecodeError struct {
	Offset int    // byte offset of the offending data item
	Field  string // the CDDL field being decoded, e.g. "nestedPart.contentType"
	Detail string // human-readable detail
	Err    error  // the specific sentinel
}

// Error implements error.
func (e *DecodeError) Error() string {
	s := fmt.Sprintf("%v at offset %d", e.Err, e.Offset)
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the specific sentinel.
func (e *DecodeError) Unwrap() error { return e.Err }

// Is reports whether target is ErrMalformed, so that every decode failure
// matches it besides its specific sentinel.
func (e *DecodeError) Is(target error) bool { return target == ErrMalformed }

// ErrInvalid is matched by every error [Content.Encode] and
// [Content.Validate] return: the value breaks a rule of the draft.
var ErrInvalid = errors.New("mimicontent: invalid content")

// Specific validation failures, wrapped in a [*ValidationError].
var (
	// ErrUnknownHashAlg means a message ID does not start with a hash
	// algorithm we know (only 0x01, SHA-256; Sections 3.3 and 9.1).
	ErrUnknownHashAlg = errors.New("mimicontent: unknown message id hash algorithm")
	// ErrNullBody means a NullPart is used where the draft does not permit
	// an empty body: only a delete or unlike (replaces set) may have one,
	// and only as the whole body (Section 4.4).
	ErrNullBody = errors.New("mimicontent: null part outside a delete")
	// ErrReactionTarget means a reaction does not name the message it
	// reacts to with inReplyTo (Section 5.3).
	ErrReactionTarget = errors.New("mimicontent: reaction without inReplyTo")
	// ErrSelfReference means a message lists the same ID in replaces and
	// inReplyTo, which cannot describe a real edit or reply.
	ErrSelfReference = errors.New("mimicontent: replaces equals inReplyTo")
	// ErrNotOriginalSender means an edit or delete comes from someone other
	// than the sender of the message it replaces (Section 9.3).
	ErrNotOriginalSender = errors.New("mimicontent: replacement by a different sender")
	// ErrChangedSemantics means an edit or delete changes a field other than
	// the NestedPart (Section 9.3), or its replaces does not name the first
	// version.
	ErrChangedSemantics = errors.New("mimicontent: replacement changes more than the body")
	// ErrReplyLoop means following inReplyTo from a message leads back
	// to a message already on the chain (Section 4.1).
	ErrReplyLoop = errors.New("mimicontent: inReplyTo chain loops")
	// ErrExpiry means an expiration lies more than a year away from the
	// given time (Section 9.1).
	ErrExpiry = errors.New("mimicontent: implausible expiration")
)

// ValidationError reports which rule a content value breaks. Err is a
// specific sentinel or ErrInvalid itself; the error always matches
// [ErrInvalid].
type ValidationError struct {
	Field  string // the CDDL field, e.g. "inReplyTo"
	Detail string // human-readable detail
	Err    error  // the specific sentinel, or ErrInvalid
}

// Error implements error.
func (e *ValidationError) Error() string {
	s := e.Err.Error()
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the specific sentinel.
func (e *ValidationError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, detail string) error {
	return &ValidationError{Field: field, Detail: detail, Err: ErrInvalid}
}

func invalidErr(field string, err error, detail string) error {
	return &ValidationError{Field: field, Detail: detail, Err: err}
}
