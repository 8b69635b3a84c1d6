package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
)

// APIError is an error the client API reports to the client: an HTTP
// status, a stable machine-readable code and a human message that says how
// to fix the request. It is written as a [clientapi.ErrorBody].
type APIError struct {
	Status  int
	Code    clientapi.ErrorCode
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("node: api %d %s: %s", e.Status, e.Code, e.Message)
}

// APICode returns the error's code (it is a [clientapi.Coded]).
func (e *APIError) APICode() clientapi.ErrorCode { return e.Code }

func apiErr(status int, code clientapi.ErrorCode, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func isAPIError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = apiErr(http.StatusInternalServerError, clientapi.CodeInternal, "internal error; the server log has the detail")
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rhizome"`)
	}
	writeJSON(w, ae.Status, clientapi.ErrorBody{Code: ae.Code, Message: ae.Message})
}

func errRoomUnknown(room dag.RoomID) error {
	return apiErr(http.StatusNotFound, clientapi.CodeNotFound, "room %v is not known on this server: create it, or join it with POST /v1/rooms/{room}/join", room)
}
