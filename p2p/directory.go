package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"

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

// Concurrency of the KeyPackage directory: requests being read or served at
// once, per requesting peer and in total, in two pools. Directory requests
// legitimately come from any server (the requester need not share a room
// with us), so strangers are not refused; but servers of a joined room draw
// on a pool of their own, so that no set of strangers can keep them out.
// 24 + 16 = 40 streams stay below the resource manager's 64.
const (
	dirPeerConcurrency     = 2
	dirStrangerConcurrency = 24
	dirMemberConcurrency   = 16
)

// dirSlots are the directory's two pools of slots on the serving side, and
// on the requesting side the slots per home server that keep this server's
// own fetches within a home server's per-peer share (waiting for one
// instead of being answered busy).
type dirSlots struct {
	strangers, members *semaphore
	fetches            *peerSlots
}

func newDirSlots() *dirSlots {
	return &dirSlots{
		strangers: newSemaphore(dirStrangerConcurrency, dirPeerConcurrency),
		members:   newSemaphore(dirMemberConcurrency, dirPeerConcurrency),
		fetches:   newPeerSlots(dirPeerConcurrency),
	}
}

// acquire takes a slot for p from its pool and returns the release, or nil
// when the pool or p's share of it is full.
func (d *dirSlots) acquire(p peer.ID, member bool) func() {
	pool := d.strangers
	if member {
		pool = d.members
	}
	if !pool.tryAcquire(p) {
		return nil
	}
	return func() { pool.release(p) }
}

// handleDirectory serves one KeyPackage request for this server's users. A
// slot is taken before the request is read: a peer holds at most
// dirPeerConcurrency directory streams, each for at most RequestReadTimeout
// before its request is in; over that, or when its pool is full, it is
// answered busy.
func (m *Mesh) handleDirectory(s network.Stream) {
	defer s.Close()
	remote := s.Conn().RemotePeer()
	if m.blocked(remote) {
		m.refuseStream(s, RefuseBlocked)
		return
	}
	w := m.guard(s)
	defer func() {
		if w.stop() {
			m.refuseStream(s, RefuseIdle)
		}
	}()
	release := m.dirServing.acquire(remote, m.participatesAny(remote))
	if release == nil {
		m.writeDirectory(s, &KeyPackageResponse{Status: DirectoryBusy, Message: "too many requests in progress"})
		return
	}
	defer release()
	raw, err := w.readRequest(MaxRequestSize)
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMalformedFrame) {
			m.offend(remote, OffenseMalformed, err)
		}
		s.Reset()
		return
	}
	m.writeDirectory(s, m.serveDirectory(remote, raw))
}

func (m *Mesh) writeDirectory(s network.Stream, resp *KeyPackageResponse) {
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
	var refused *DirectoryError
	if errors.As(err, &refused) && refused.Status != DirectoryOK {
		// The source refuses (a limit, a requester it will not serve).
		return &KeyPackageResponse{Status: refused.Status, Message: refused.Message[:min(len(refused.Message), maxStatusMessage)]}
	}
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
	release, err := m.dirServing.fetches.acquire(ctx, home)
	if err != nil {
		return KeyMaterial{}, fmt.Errorf("p2p: wait for a directory slot at %s: %w", home.ShortString(), err)
	}
	defer release()
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
