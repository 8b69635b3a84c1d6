package node

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/accounts"
)

// The admin API (docs/api.md, "Admin API") is for the node's operator, as
// used by rhizome admin. It is reachable only over loopback, and only with
// the admin token the node keeps in its data folder.
const (
	// AdminTokenFile holds the admin bearer token (mode 0600), created at
	// start when missing.
	AdminTokenFile = "admin-token"
	// APIAddrFile holds the client API's bound address, written at every
	// start, so that rhizome admin finds the node.
	APIAddrFile      = "api-addr"
	adminTokenPrefix = "rhzadm_"
	// defaultRegTokenExpiry is the lifetime of a registration token when
	// the request names none.
	defaultRegTokenExpiry = 7 * 24 * time.Hour
	// maxRegTokenExpiry bounds a registration token's lifetime.
	maxRegTokenExpiry = 366 * 24 * time.Hour
)

// ErrAdminToken is wrapped by failures to load or create the admin token.
var ErrAdminToken = errors.New("node: admin token")

// loadOrCreateAdminToken returns the admin token of dir/admin-token,
// creating the file (mode 0600) when it is missing. A file readable by group
// or others, or holding anything but a token, is refused.
func loadOrCreateAdminToken(dir string) (string, error) {
	path := filepath.Join(dir, AdminTokenFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrAdminToken, err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%w: %s is readable by others (mode %v); run: chmod 600 %s", ErrAdminToken, path, info.Mode().Perm(), path)
		}
		tok := strings.TrimSpace(string(data))
		if !strings.HasPrefix(tok, adminTokenPrefix) || len(tok) < len(adminTokenPrefix)+32 {
			return "", fmt.Errorf("%w: %s does not hold an admin token; delete it and restart to get a new one", ErrAdminToken, path)
		}
		return tok, nil
	case errors.Is(err, fs.ErrNotExist):
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("%w: %v", ErrAdminToken, err)
		}
		tok := adminTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
		tmp := path + ".tmp"
		if err := writeFileSync(tmp, []byte(tok+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("%w: write: %v", ErrAdminToken, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", fmt.Errorf("%w: write: %v", ErrAdminToken, err)
		}
		return tok, nil
	default:
		return "", fmt.Errorf("%w: %v", ErrAdminToken, err)
	}
}

// writeAPIAddr records the API's bound address for rhizome admin.
func writeAPIAddr(dir, addr string) error {
	path := filepath.Join(dir, APIAddrFile)
	if err := writeFileSync(path+".tmp", []byte(addr+"\n"), 0o600); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	return nil
}

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
func (n *Node) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r.RemoteAddr) || r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
			n.log.Warn("admin request refused: not from loopback", "sys", "api", "remote", r.RemoteAddr, "path", r.URL.Path)
			writeError(w, apiErr(http.StatusForbidden, clientapi.CodeForbidden, "the admin API answers only on loopback, not through a proxy: run rhizome admin on the node's machine"))
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || n.adminToken == "" || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(n.adminToken)) != 1 {
			writeError(w, apiErr(http.StatusUnauthorized, clientapi.CodeUnauthorized, "the admin API needs 'Authorization: Bearer <token>' with the token in the node's data folder (%s)", AdminTokenFile))
			return
		}
		h(w, r)
	}
}

// adminRoutes registers the admin API on mux.
func (n *Node) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/tokens", n.admin(n.handleIssueRegToken))
	mux.HandleFunc("GET /v1/admin/tokens", n.admin(n.handleListRegTokens))
	mux.HandleFunc("DELETE /v1/admin/tokens/{id}", n.admin(n.handleRevokeRegToken))
	n.adminRoomRoutes(mux)
}

func (n *Node) handleIssueRegToken(w http.ResponseWriter, r *http.Request) {
	var req clientapi.IssueTokenRequest
	if r.ContentLength != 0 {
		if err := readJSON(w, r, maxJSONBody, &req); err != nil {
			n.fail(w, r, err)
			return
		}
	}
	var expires time.Time
	life := defaultRegTokenExpiry
	if req.ExpiresInSeconds != nil {
		s := *req.ExpiresInSeconds
		if s < 0 || s > int64(maxRegTokenExpiry/time.Second) {
			n.fail(w, r, apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "expires_in_seconds must be 0 (never) to %d, got %d", int64(maxRegTokenExpiry/time.Second), s))
			return
		}
		life = time.Duration(s) * time.Second
	}
	if life > 0 {
		expires = time.Now().Add(life)
	}
	token, rec, err := n.accounts.IssueRegToken(expires, req.Note)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	n.log.Info("registration token issued", "sys", "api", "id", rec.ID, "expires", rec.Expires, "note", rec.Note)
	writeJSON(w, http.StatusCreated, clientapi.IssuedToken{Token: token, RegistrationToken: wireRegToken(rec)})
}

// wire is the token's record as the admin API lists it.
func wireRegToken(t accounts.RegToken) clientapi.RegistrationToken {
	return clientapi.RegistrationToken{ID: t.ID, Created: t.Created, Expires: t.Expires, Note: t.Note}
}

func (n *Node) handleListRegTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := n.accounts.RegTokens()
	if err != nil {
		n.fail(w, r, err)
		return
	}
	out := clientapi.TokenList{Registration: n.accounts.RegMode(), Tokens: make([]clientapi.RegistrationToken, len(toks))}
	for i, t := range toks {
		out.Tokens[i] = wireRegToken(t)
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleRevokeRegToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ok, err := n.accounts.RevokeRegToken(id)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	if !ok {
		n.fail(w, r, apiErr(http.StatusNotFound, clientapi.CodeNotFound, "no outstanding registration token %s (used, expired or revoked already)", id))
		return
	}
	n.log.Info("registration token revoked", "sys", "api", "id", id)
	writeJSON(w, http.StatusOK, clientapi.TokenRevoked{ID: id, Revoked: true})
}
