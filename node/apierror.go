package node

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
)

func apiErr(status int, code clientapi.ErrorCode, format string, args ...any) *apierror.Error {
	return apierror.New(status, code, format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apierror.Error
	if !errors.As(err, &ae) {
		ae = apiErr(http.StatusInternalServerError, clientapi.CodeInternal, "internal error; the server log has the detail")
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Seconds())+1))
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rhizome"`)
	}
	writeJSON(w, ae.Status, clientapi.ErrorBody{Code: ae.Code, Message: ae.Message})
}

func errRoomUnknown(room dag.RoomID) error {
	return apiErr(http.StatusNotFound, clientapi.CodeNotFound, "room %v is not known on this server: create it, or join it with POST /v1/rooms/{room}/join", room)
}
