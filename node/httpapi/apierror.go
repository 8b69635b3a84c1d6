package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apierror.Error
	if !errors.As(err, &ae) {
		ae = apierror.New(http.StatusInternalServerError, clientapi.CodeInternal, "internal error; the server log has the detail")
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Seconds())+1))
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rhizome"`)
	}
	writeJSON(w, ae.Status, clientapi.ErrorBody{Code: ae.Code, Message: ae.Message})
}
