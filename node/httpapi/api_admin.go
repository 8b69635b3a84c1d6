package httpapi

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
)

// The admin API (docs/api.md, "Admin API") is for the node's operator, as
// used by rhizome admin. It is reachable only over loopback, and only with
// the admin token the node keeps in its data folder.
const (
	// AdminTokenFile is the file in the node's data folder that holds the
	// admin bearer token (mode 0600); refusals name it.
	AdminTokenFile = "admin-token"
	// defaultRegTokenExpiry is the lifetime of a registration token when
	// the request names none.
	defaultRegTokenExpiry = 7 * 24 * time.Hour
	// maxRegTokenExpiry bounds a registration token's lifetime.
	maxRegTokenExpiry = 366 * 24 * time.Hour
)

// isLoopback reports whether a request's remote address is a loopback one.
func isLoopback(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		host, _, err := net.SplitHostPort(remoteAddr)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(host)
		return err == nil && a.Unmap().IsLoopback()
	}
	return ap.Addr().Unmap().IsLoopback()
}

// admin wraps an admin API handler: the request must come over loopback,
// not through a proxy (no Forwarded or X-Forwarded-For header), and carry
// the admin token as its bearer token. Use it for every /v1/admin/ route.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r.RemoteAddr) || r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
			s.log.Warn("admin request refused: not from loopback", "sys", "api", "remote", r.RemoteAddr, "path", r.URL.Path)
			writeError(w, apierror.New(http.StatusForbidden, clientapi.CodeForbidden, "the admin API answers only on loopback, not through a proxy: run rhizome admin on the node's machine"))
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || s.adminToken == "" || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.adminToken)) != 1 {
			writeError(w, apierror.New(http.StatusUnauthorized, clientapi.CodeUnauthorized, "the admin API needs 'Authorization: Bearer <token>' with the token in the node's data folder (%s)", AdminTokenFile))
			return
		}
		h(w, r)
	}
}

// adminRoutes registers the admin API on mux.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/tokens", s.admin(s.handleIssueRegToken))
	mux.HandleFunc("GET /v1/admin/tokens", s.admin(s.handleListRegTokens))
	mux.HandleFunc("DELETE /v1/admin/tokens/{id}", s.admin(s.handleRevokeRegToken))
	s.adminRoomRoutes(mux)
}

func (s *Server) handleIssueRegToken(w http.ResponseWriter, r *http.Request) {
	var req clientapi.IssueTokenRequest
	if r.ContentLength != 0 {
		if err := readJSON(w, r, MaxJSONBody, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	var expires time.Time
	life := defaultRegTokenExpiry
	if req.ExpiresInSeconds != nil {
		secs := *req.ExpiresInSeconds
		if secs < 0 || secs > int64(maxRegTokenExpiry/time.Second) {
			s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "expires_in_seconds must be 0 (never) to %d, got %d", int64(maxRegTokenExpiry/time.Second), secs))
			return
		}
		life = time.Duration(secs) * time.Second
	}
	if life > 0 {
		expires = s.now().Add(life)
	}
	token, rec, err := s.accounts.IssueRegToken(expires, req.Note)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("registration token issued", "sys", "api", "id", rec.ID, "expires", rec.Expires, "note", rec.Note)
	writeJSON(w, http.StatusCreated, clientapi.IssuedToken{Token: token, RegistrationToken: wireRegToken(rec)})
}

// wire is the token's record as the admin API lists it.
func wireRegToken(t accounts.RegToken) clientapi.RegistrationToken {
	return clientapi.RegistrationToken{ID: t.ID, Created: t.Created, Expires: t.Expires, Note: t.Note}
}

func (s *Server) handleListRegTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.accounts.RegTokens()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := clientapi.TokenList{Registration: s.accounts.RegMode(), Tokens: make([]clientapi.RegistrationToken, len(toks))}
	for i, t := range toks {
		out.Tokens[i] = wireRegToken(t)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRevokeRegToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ok, err := s.accounts.RevokeRegToken(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		s.fail(w, r, apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "no outstanding registration token %s (used, expired or revoked already)", id))
		return
	}
	s.log.Info("registration token revoked", "sys", "api", "id", id)
	writeJSON(w, http.StatusOK, clientapi.TokenRevoked{ID: id, Revoked: true})
}
