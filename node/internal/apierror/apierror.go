// Package apierror is the error the node's client API answers with: an HTTP
// status, a stable machine-readable code and a human message that says how
// to fix the request. The packages below the HTTP handlers (accounts, the
// room driver) return it; the handlers write it as a [clientapi.ErrorBody].
package apierror

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
)

// Error is an error the client API reports to the client.
type Error struct {
	Status  int
	Code    clientapi.ErrorCode
	Message string
	// RetryAfter, when positive, is sent as a Retry-After header: its whole
	// seconds plus one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("node: api %d %s: %s", e.Status, e.Code, e.Message)
}

// APICode returns the error's code (it is a [clientapi.Coded]).
func (e *Error) APICode() clientapi.ErrorCode { return e.Code }

// New returns an Error with a formatted message.
func New(status int, code clientapi.ErrorCode, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Is reports whether err is or wraps an *Error.
func Is(err error) bool {
	var ae *Error
	return errors.As(err, &ae)
}

// RoomUnknown is the answer about a room this server does not take part in.
func RoomUnknown(room dag.RoomID) *Error {
	return New(http.StatusNotFound, clientapi.CodeNotFound, "room %v is not known on this server: create it, or join it with POST /v1/rooms/{room}/join", room)
}
