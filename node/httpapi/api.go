package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/p2p"
	engine "github.com/rhizome-chat/rhizome/room"
)

// Request body limits of the client API.
const (
	// MaxJSONBody bounds a JSON request body.
	MaxJSONBody = 64 << 10
	// MaxKeyPackageBody bounds a KeyPackage upload.
	MaxKeyPackageBody = 4 << 20
)

// streamPath is the long-lived event stream's path (httpserver.go treats it
// as such).
const streamPath = "/v1/stream"

// device is the authenticated device of a request.
type device = accounts.Device

// apiHandler is the client API (docs/api.md).
func (s *Server) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/server", s.handleServer)
	mux.HandleFunc("POST /v1/register", s.handleRegister)
	mux.HandleFunc("POST /v1/devices", s.auth(s.handleAddDevice))
	mux.HandleFunc("GET /v1/whoami", s.auth(s.handleWhoami))
	mux.HandleFunc("POST /v1/keypackages", s.auth(s.handleUploadKeyPackages))
	mux.HandleFunc("POST /v1/keypackages/claim", s.auth(s.handleClaimKeyPackages))
	mux.HandleFunc("GET /v1/consent", s.auth(s.handleListConsents))
	mux.HandleFunc("POST /v1/consent", s.auth(s.handleAllow))
	mux.HandleFunc("DELETE /v1/consent", s.auth(s.handleDisallow))
	mux.HandleFunc("POST /v1/rooms", s.auth(s.handleCreateRoom))
	mux.HandleFunc("GET /v1/rooms", s.auth(s.handleListRooms))
	mux.HandleFunc("GET /v1/rooms/{room}", s.auth(s.handleGetRoom))
	mux.HandleFunc("GET /v1/rooms/{room}/members", s.auth(s.handleGetRoom))
	mux.HandleFunc("POST /v1/rooms/{room}/join", s.auth(s.handleJoinRoom))
	mux.HandleFunc("GET /v1/rooms/{room}/order", s.auth(s.handleGetOrder))
	mux.HandleFunc("POST /v1/rooms/{room}/messages", s.auth(s.roomLimited(s.handleSubmitBinary(dag.KindMessage))))
	mux.HandleFunc("POST /v1/rooms/{room}/proposals", s.auth(s.roomLimited(s.handleSubmitBinary(dag.KindProposal))))
	mux.HandleFunc("POST /v1/rooms/{room}/commits", s.auth(s.roomLimited(s.handleSubmitCommit)))
	mux.HandleFunc("POST /v1/rooms/{room}/state", s.auth(s.roomLimited(s.handleSubmitState)))
	mux.HandleFunc("GET "+streamPath, s.auth(s.handleStream))
	mux.HandleFunc("POST /v1/cursor", s.auth(s.handleSetCursor))
	s.adminRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "no endpoint %s %s; docs/api.md lists the endpoints", r.Method, r.URL.Path))
	})
	log := s.log.With("sys", "api")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				writeError(w, fmt.Errorf("node: panic: %v", p))
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

// fail writes err; internal errors are logged with their detail, which the
// client does not see.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if !apierror.Is(err) {
		var ae *engine.RejectError
		var re *dag.RejectError
		switch {
		case errors.As(err, &ae):
			err = apierror.New(http.StatusForbidden, clientapi.CodeRejected, "%v", ae.Err)
			if ae.Reason.Malformed() || ae.Reason == engine.ReasonUnknownEpoch {
				err = apierror.New(http.StatusBadRequest, clientapi.CodeRejected, "%s: %v", ae.Reason, ae.Err)
			}
		case errors.As(err, &re):
			err = apierror.New(http.StatusBadRequest, clientapi.CodeRejected, "%v", re)
		default:
			s.log.Error("api internal error", "sys", "api", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	writeError(w, err)
}

// auth wraps h with bearer-token authentication.
func (s *Server) auth(h func(w http.ResponseWriter, r *http.Request, d *device)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hdr := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(hdr, "Bearer ")
		if hdr == "" {
			writeError(w, apierror.New(http.StatusUnauthorized, clientapi.CodeUnauthorized, "missing Authorization header: send 'Authorization: Bearer <token>' with the token from /v1/register or /v1/devices"))
			return
		}
		if !ok {
			writeError(w, apierror.New(http.StatusUnauthorized, clientapi.CodeUnauthorized, "Authorization header must be 'Bearer <token>'"))
			return
		}
		d, err := s.accounts.Authenticate(strings.TrimSpace(token))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !s.limits.allow(w, bucketKey{s.limits.device, d.User + "/" + d.Device}, bucketKey{s.limits.user, d.User}) {
			return
		}
		h(w, r, &d)
	}
}

// roomLimited wraps a submission handler with the room's rate limit. Only
// rooms this server takes part in have a bucket; the handler refuses the
// others.
func (s *Server) roomLimited(h func(w http.ResponseWriter, r *http.Request, d *device)) func(w http.ResponseWriter, r *http.Request, d *device) {
	return func(w http.ResponseWriter, r *http.Request, d *device) {
		if room, err := parseRoom(r.PathValue("room")); err == nil {
			if _, joined := s.rooms.State(room); joined && !s.limits.allow(w, bucketKey{s.limits.room, room.String()}) {
				return
			}
		}
		h(w, r, d)
	}
}

// readJSON decodes a JSON request body strictly into v, which points to a
// struct: content type application/json, at most limit bytes, one JSON
// object (not null, an array or a scalar), no unknown fields, nothing after
// it. Required fields are the handler's to check.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/json" {
			return apierror.New(http.StatusUnsupportedMediaType, clientapi.CodeUnsupportedMediaType, "Content-Type %q: send application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apierror.New(http.StatusRequestEntityTooLarge, clientapi.CodeTooLarge, "request body exceeds %d bytes", limit)
		}
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "read body: %v", err)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "empty request body: send a JSON object")
	}
	if trimmed[0] != '{' {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "the body must be a JSON object {...}, not %s", jsonKind(trimmed[0]))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "invalid JSON body: a bytes field is not standard base64: %v", err)
		}
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "trailing data after the JSON object")
	}
	return nil
}

// jsonKind names the JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number or other value"
}

// readBinary reads an application/octet-stream body of at most limit bytes.
func readBinary(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/octet-stream" && mt != "message/mls" {
		return nil, apierror.New(http.StatusUnsupportedMediaType, clientapi.CodeUnsupportedMediaType, "Content-Type %q: send the MLSMessage bytes as application/octet-stream (or message/mls)", r.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apierror.New(http.StatusRequestEntityTooLarge, clientapi.CodeTooLarge, "request body exceeds %d bytes", limit)
		}
		return nil, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "read body: %v", err)
	}
	if len(b) == 0 {
		return nil, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "empty body: send the MLSMessage bytes")
	}
	return b, nil
}

func (s *Server) handleServer(w http.ResponseWriter, _ *http.Request) {
	peerID, addrs := "", []string(nil)
	if s.peer != nil {
		peerID, addrs = s.peer()
	}
	writeJSON(w, http.StatusOK, clientapi.ServerInfo{
		ServerName: s.serverName,
		ServerID:   s.self.String(),
		PeerID:     peerID,
		P2PAddrs:   addrs,
	})
}

// signatureKey checks the signature_key of a registration or new device.
func signatureKey(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "signature_key is missing: send the device's Ed25519 MLS signature public key in base64")
	}
	return key, accounts.CheckSignatureKey(key)
}

func (s *Server) registered(w http.ResponseWriter, user, dev, token string) {
	writeJSON(w, http.StatusCreated, clientapi.Registered{
		User: user, Device: dev,
		UserURI: s.accounts.UserURI(user), DeviceURI: s.accounts.DeviceURI(user, dev),
		Token: token,
	})
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !s.limits.allow(w, bucketKey{s.limits.registerIP, remoteKey(r)}) {
		return
	}
	var req clientapi.RegisterRequest
	if err := readJSON(w, r, MaxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := accounts.CheckName("user", req.User); err != nil {
		s.fail(w, r, err)
		return
	}
	key, err := signatureKey(req.SignatureKey)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	token, err := s.accounts.Register(req.User, req.Device, key, req.RegistrationToken)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("user registered", "sys", "api", "user", req.User, "device", req.Device, "remote", r.RemoteAddr, "mode", s.accounts.RegMode())
	s.registered(w, req.User, req.Device, token)
}

// remoteKey is the rate-limit key of a request's remote address: the IP,
// or for IPv6 its /64.
func remoteKey(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ipKey(net.TCPAddrFromAddrPort(ap)).String()
}

func (s *Server) handleAddDevice(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.DeviceRequest
	if err := readJSON(w, r, MaxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.User != "" && req.User != d.User {
		s.fail(w, r, apierror.New(http.StatusForbidden, clientapi.CodeForbidden, "a token of user %q cannot add devices to user %q", d.User, req.User))
		return
	}
	if err := accounts.CheckName("device", req.Device); err != nil {
		s.fail(w, r, err)
		return
	}
	key, err := signatureKey(req.SignatureKey)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	token, err := s.accounts.AddDevice(d.User, req.Device, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.registered(w, d.User, req.Device, token)
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request, d *device) {
	count, last, err := s.accounts.KeyPackageCount(d.User, d.Device)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cur, err := s.feed.Cursor(d.User, d.Device)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientapi.Whoami{
		User: d.User, Device: d.Device,
		UserURI: s.accounts.UserURI(d.User), DeviceURI: s.accounts.DeviceURI(d.User, d.Device),
		KeyPackages: count, LastResort: last, Cursor: cur,
	})
}

func (s *Server) handleUploadKeyPackages(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.KeyPackageUpload
	if err := readJSON(w, r, MaxKeyPackageBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.KeyPackages) == 0 {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "key_packages is empty: send a list of base64 MLSMessage KeyPackages"))
		return
	}
	stored, last, err := s.accounts.UploadKeyPackages(*d, req.KeyPackages)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	count, haveLast, err := s.accounts.KeyPackageCount(d.User, d.Device)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientapi.KeyPackagesStored{Stored: stored, LastResortReplaced: last, KeyPackages: count, LastResort: haveLast})
}

func (s *Server) handleClaimKeyPackages(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.ClaimRequest
	if err := readJSON(w, r, MaxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	domain := uriDomain(req.User)
	if domain == "" || !strings.Contains(req.User, "/u/") {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "user %q is not a MIMI user URI such as mimi://example.org/u/alice", req.User))
		return
	}
	q := p2p.KeyPackageRequest{Protocol: p2p.MLS10, RequestingUser: s.accounts.UserURI(d.User), TargetUser: req.User, CipherSuites: req.CipherSuites}
	var room dag.RoomID
	if req.Room != "" {
		var err error
		if room, err = parseRoom(req.Room); err != nil {
			s.fail(w, r, err)
			return
		}
		q.Room = room[:]
	}
	var km p2p.KeyMaterial
	err := s.accounts.LimitClaims(q.RequestingUser)
	switch {
	case err != nil:
		s.accounts.RecordClaim(p2p.KeyPackageQuery{Requester: s.self, KeyPackageRequest: q}, accounts.ClaimRefused, err)
	case domain == s.serverName:
		km, err = s.accounts.ClaimKeyPackages(r.Context(), p2p.KeyPackageQuery{Requester: s.self, KeyPackageRequest: q})
	default:
		km, err = s.claimRemote(r.Context(), domain, room, q)
	}
	var cr *accounts.ClaimRefusal
	if errors.As(err, &cr) {
		err = cr.APIError()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := clientapi.Claimed{User: km.UserURI, Status: km.UserStatus.String(), Clients: make([]clientapi.ClaimedClient, 0, len(km.Clients))}
	for _, c := range km.Clients {
		e := clientapi.ClaimedClient{Client: c.ClientURI, Status: c.Status.String()}
		if c.Status == p2p.ClientSuccess {
			e.KeyPackage = c.KeyPackage
		}
		out.Clients = append(out.Clients, e)
	}
	writeJSON(w, http.StatusOK, out)
}

// claimRemote fetches KeyPackages from the home server of domain, found in
// the named room's server list, else in any joined room's.
func (s *Server) claimRemote(ctx context.Context, domain string, room dag.RoomID, q p2p.KeyPackageRequest) (p2p.KeyMaterial, error) {
	var homes []dag.ServerID
	if !room.IsZero() {
		if st, _ := s.rooms.State(room); st != nil {
			for _, sv := range st.Servers() {
				if sv.Domain == domain {
					homes = append(homes, dag.ServerID(sv.ID))
				}
			}
		}
	}
	if len(homes) == 0 {
		homes = s.rooms.ServersOfDomain(domain)
	}
	if len(homes) == 0 {
		return p2p.KeyMaterial{}, apierror.New(http.StatusNotFound, clientapi.CodeNotFound,
			"no known server serves domain %q: add its server to the room first (servers in POST /v1/rooms, or a commit that adds it: rhizome invite --via), then claim with \"room\" set", domain)
	}
	var errs []error
	for _, home := range homes {
		pid, err := p2p.PeerID(home.PublicKey())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		km, err := s.directory.FetchKeyPackages(ctx, pid, q)
		if err == nil {
			return km, nil
		}
		var de *p2p.DirectoryError
		if errors.As(err, &de) && de.Status == p2p.DirectoryRateLimited {
			return p2p.KeyMaterial{}, apierror.New(http.StatusTooManyRequests, clientapi.CodeRateLimited, "the home server of %q refused: %s; retry later", domain, de.Message)
		}
		errs = append(errs, err)
	}
	s.log.Warn("remote KeyPackage claim failed", "sys", "api", "domain", domain, "err", errors.Join(errs...))
	return p2p.KeyMaterial{}, apierror.New(http.StatusBadGateway, clientapi.CodeUnavailable, "the home server of %q did not answer: %v; retry later", domain, errors.Join(errs...))
}

// uriDomain returns the domain of a mimi:// URI, or "".
func uriDomain(u string) string {
	rest, ok := strings.CutPrefix(u, "mimi://")
	if !ok {
		return ""
	}
	d, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return d
}

func parseRoom(s string) (dag.RoomID, error) {
	if !strings.HasPrefix(s, "!") {
		s = "!" + s
	}
	id, err := dag.ParseRoomID(s)
	if err != nil {
		return id, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "room %q is not a room ID such as !QmZ...: %v", s, err)
	}
	return id, nil
}

func parseEvent(field, s string) (dag.EventID, error) {
	id, err := dag.ParseEventID(s)
	if err != nil {
		return id, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "%s %q is not an event ID such as QmZ...: %v", field, s, err)
	}
	return id, nil
}
