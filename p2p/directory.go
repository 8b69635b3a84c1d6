package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrDirectory is wrapped by [*DirectoryError].
var ErrDirectory = errors.New("p2p: KeyPackage directory refused")

// DirectoryError is a home server's transport-level refusal of a directory
// request (MIMI's answer codes arrive in a successful [KeyMaterial]).
type DirectoryError struct {
	Status  DirectoryStatus
	Message string
}

func (e *DirectoryError) Error() string {
	return fmt.Sprintf("p2p: KeyPackage directory refused: %s: %s", e.Status, e.Message)
}

// Unwrap returns [ErrDirectory].
func (e *DirectoryError) Unwrap() error { return ErrDirectory }

// handleDirectory serves one KeyPackage request for this server's users.
func (m *Mesh) handleDirectory(s network.Stream) {
	defer s.Close()
	remote := s.Conn().RemotePeer()
	if m.blocked(remote) {
		s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(m.cfg.RequestTimeout))
	raw, err := readFrame(bufio.NewReader(s), MaxRequestSize)
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMalformedFrame) {
			m.offend(remote, OffenseMalformed, err)
		}
		s.Reset()
		return
	}
	resp := m.serveDirectory(remote, raw)
	body, err := resp.Marshal()
	if err != nil {
		m.log.Error("encode directory answer", "err", err)
		s.Reset()
		return
	}
	if err := writeFrame(s, body); err != nil {
		s.Reset()
	}
}

func (m *Mesh) serveDirectory(remote peer.ID, raw []byte) *KeyPackageResponse {
	req, err := UnmarshalKeyPackageRequest(raw)
	if err != nil {
		m.offend(remote, OffenseMalformed, err)
		return &KeyPackageResponse{Status: DirectoryBadRequest, Message: "malformed request"}
	}
	if !m.dirLimit.allow(remote) {
		return &KeyPackageResponse{Status: DirectoryRateLimited, Message: "KeyPackage request rate exceeded"}
	}
	sid, ok := serverID(remote)
	if !ok {
		return &KeyPackageResponse{Status: DirectoryBadRequest, Message: "requester is not a server"}
	}
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.RequestTimeout)
	defer cancel()
	km, err := m.cfg.KeyPackages.ClaimKeyPackages(ctx, KeyPackageQuery{Requester: sid, KeyPackageRequest: *req})
	if err != nil {
		m.log.Error("claim KeyPackages", "user", req.TargetUser, "err", err)
		return &KeyPackageResponse{Status: DirectoryInternal, Message: "internal error"}
	}
	resp := &KeyPackageResponse{Status: DirectoryOK, Protocol: MLS10, UserStatus: km.UserStatus, UserURI: km.UserURI, Clients: km.Clients}
	if err := resp.check(); err != nil {
		m.log.Error("KeyPackage source answer", "user", req.TargetUser, "err", err)
		return &KeyPackageResponse{Status: DirectoryInternal, Message: "internal error"}
	}
	return resp
}

// FetchKeyPackages asks home, the target user's home server, for one
// KeyPackage per client of req.TargetUser. The answer carries MIMI's codes;
// a transport-level refusal is a [*DirectoryError]. Each one-time
// KeyPackage returned is consumed at the home server: it is never handed out
// again.
func (m *Mesh) FetchKeyPackages(ctx context.Context, home peer.ID, req KeyPackageRequest) (KeyMaterial, error) {
	if req.Protocol == 0 {
		req.Protocol = MLS10
	}
	body, err := req.Marshal()
	if err != nil {
		return KeyMaterial{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	s, err := m.h.NewStream(ctx, home, KeyPackageProtocol)
	if err != nil {
		return KeyMaterial{}, fmt.Errorf("p2p: open directory stream to %s: %w", home.ShortString(), err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := writeFrame(s, body); err != nil {
		s.Reset()
		return KeyMaterial{}, fmt.Errorf("p2p: send KeyPackage request: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return KeyMaterial{}, fmt.Errorf("p2p: send KeyPackage request: %w", err)
	}
	raw, err := readFrame(bufio.NewReader(s), MaxResponseSize)
	if err != nil {
		s.Reset()
		if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMalformedFrame) {
			return KeyMaterial{}, m.offense(home, OffenseMalformed, err)
		}
		return KeyMaterial{}, fmt.Errorf("p2p: read KeyPackage answer: %w", err)
	}
	resp, err := UnmarshalKeyPackageResponse(raw)
	if err != nil {
		return KeyMaterial{}, m.offense(home, OffenseMalformed, err)
	}
	if resp.Status != DirectoryOK {
		return KeyMaterial{}, &DirectoryError{Status: resp.Status, Message: resp.Message}
	}
	return KeyMaterial{UserStatus: resp.UserStatus, UserURI: resp.UserURI, Clients: resp.Clients}, nil
}
