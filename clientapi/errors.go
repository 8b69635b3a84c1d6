package clientapi

import "errors"

// ErrorCode is the stable, machine-readable code of an error answer
// (docs/api.md, "Errors"): the "error" field of [ErrorBody].
type ErrorCode string

// The error codes of the client API (docs/api.md, "Errors").
const (
	// CodeBadRequest: malformed JSON, an unknown field, a bad name, ID or
	// base64 (400).
	CodeBadRequest ErrorCode = "bad_request"
	// CodeBadKeyPackage: an uploaded KeyPackage does not decode, verify or
	// belong to the device (400).
	CodeBadKeyPackage ErrorCode = "bad_key_package"
	// CodeRejected: the event is malformed (400), or the room state
	// forbids it (403).
	CodeRejected ErrorCode = "rejected"
	// CodeUnauthorized: a missing, malformed or unknown bearer token (401).
	CodeUnauthorized ErrorCode = "unauthorized"
	// CodeForbidden: the user is not a participant of the room,
	// registration is closed or needs a valid token, or an admin request
	// does not come over loopback (403).
	CodeForbidden ErrorCode = "forbidden"
	// CodeNotFound: an unknown endpoint, room or user, or no server known
	// for a domain (404).
	CodeNotFound ErrorCode = "not_found"
	// CodeConflict: the user or device exists, or a store limit is reached
	// (409).
	CodeConflict ErrorCode = "conflict"
	// CodeStaleParent: a commit's parent is not the room's canonical tip on
	// the server (409; docs/api.md, "Ordering").
	CodeStaleParent ErrorCode = "stale_parent"
	// CodeStaleEpoch: a message's or proposal's epoch is not the room's
	// canonical tip on the server (409; docs/api.md, "Ordering").
	CodeStaleEpoch ErrorCode = "stale_epoch"
	// CodeTooLarge: the body is over the limit (413).
	CodeTooLarge ErrorCode = "too_large"
	// CodeUnsupportedMediaType: the wrong Content-Type (415).
	CodeUnsupportedMediaType ErrorCode = "unsupported_media_type"
	// CodeRateLimited: over a rate limit; Retry-After gives the seconds to
	// wait (429; docs/api.md, "Rate limits").
	CodeRateLimited ErrorCode = "rate_limited"
	// CodeUnavailable: another server did not answer (502, 504), or the
	// server is busy (503, with Retry-After).
	CodeUnavailable ErrorCode = "unavailable"
	// CodeInternal: a server fault; the server log has the detail (500).
	CodeInternal ErrorCode = "internal"
)

// Codes returns every declared error code, in the order of docs/api.md's
// error table.
func Codes() []ErrorCode {
	return []ErrorCode{
		CodeBadRequest, CodeBadKeyPackage, CodeRejected, CodeUnauthorized, CodeForbidden,
		CodeNotFound, CodeConflict, CodeStaleParent, CodeStaleEpoch, CodeTooLarge,
		CodeUnsupportedMediaType, CodeRateLimited, CodeUnavailable, CodeInternal,
	}
}

// Known reports whether c is one of the declared codes.
func (c ErrorCode) Known() bool {
	for _, k := range Codes() {
		if c == k {
			return true
		}
	}
	return false
}

// ErrorBody is the JSON body of every error answer (docs/api.md,
// "Errors"): {"error": code, "message": how to fix the request}.
type ErrorBody struct {
	Code    ErrorCode `json:"error"`
	Message string    `json:"message"`
}

// Coded is an error that carries a client API error code: the node's
// APIError and the client's.
type Coded interface {
	error
	// APICode returns the error's code.
	APICode() ErrorCode
}

// CodeOf returns the code of the first error in err's tree that is
// [Coded], or "" if there is none.
func CodeOf(err error) ErrorCode {
	var c Coded
	if errors.As(err, &c) {
		return c.APICode()
	}
	return ""
}

// HasCode reports whether err carries the error code code ([CodeOf]).
func HasCode(err error, code ErrorCode) bool {
	return code != "" && CodeOf(err) == code
}
