package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
)

// InviteProtocol is the invite notice protocol: one [InviteNotice] from the
// notifier, one [InviteAnswer] back (docs/protocol.md, "Invite notices").
const InviteProtocol = "/rhizome/invite/1.0.0"

// Invite notice bounds.
const (
	// maxInviteNotice bounds an encoded notice: two 34-byte IDs with their
	// length prefixes.
	maxInviteNotice = 128
	// inviteConcurrency and invitePeerConcurrency bound the notices whose
	// callback runs at once, in total and per notifier. A notice that
	// finds no slot is answered busy: notices are never queued.
	inviteConcurrency     = 4
	invitePeerConcurrency = 1
	// inviteStreams and invitePeerStreams bound the invite streams being
	// read or answered, in total and per peer; each is held at most
	// RequestReadTimeout before its notice is in.
	inviteStreams     = 32
	invitePeerStreams = 2
)

// inviteRate is the per-peer rate of invite notices taken: a server sends
// one per room it adds this server to.
var inviteRate = Rate{PerSecond: 1, Burst: 5}

// ErrInvite is wrapped by [*InviteError].
var ErrInvite = errors.New("p2p: invite notice refused")

// InviteError is the receiver's refusal of an invite notice.
type InviteError struct {
	Status  InviteStatus
	Message string
}

func (e *InviteError) Error() string {
	return fmt.Sprintf("p2p: invite notice refused: %s: %s", e.Status, e.Message)
}

// Unwrap returns [ErrInvite].
func (e *InviteError) Unwrap() error { return ErrInvite }

// invites is the receiving side's budget for invite notices.
type invites struct {
	limit   *peerLimiter
	slots   *semaphore   // callbacks running
	reading *semaphore   // streams being read or answered
	logs    *peerLimiter // one refusal logged per peer and minute
}

func newInvites() *invites {
	return &invites{
		limit:   newPeerLimiter(inviteRate, time.Now),
		slots:   newSemaphore(inviteConcurrency, invitePeerConcurrency),
		reading: newSemaphore(inviteStreams, invitePeerStreams),
		logs:    newPeerLimiter(Rate{PerSecond: 1.0 / 60, Burst: 1}, time.Now),
	}
}

// handleInvite takes one invite notice. The callback runs on its own
// goroutine after the answer, within the notice budget.
func (m *Mesh) handleInvite(s network.Stream) {
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
	if !m.invites.reading.tryAcquire(remote) {
		m.writeInvite(s, &InviteAnswer{Status: InviteBusy, Message: "too many notices in progress"})
		return
	}
	defer m.invites.reading.release(remote)
	raw, err := w.readRequest(maxInviteNotice)
	if err != nil {
		switch {
		case errors.Is(err, ErrFrameTooLarge):
			m.offend(remote, OffenseOversize, err)
		case errors.Is(err, ErrMalformedFrame):
			m.offend(remote, OffenseMalformed, err)
		}
		s.Reset()
		return
	}
	m.writeInvite(s, m.takeInvite(remote, raw))
}

func (m *Mesh) writeInvite(s network.Stream, ans *InviteAnswer) {
	body, err := ans.Marshal()
	if err != nil {
		m.log.Error("encode invite answer", "err", err)
		s.Reset()
		return
	}
	if err := writeFrame(s, body); err != nil {
		s.Reset()
	}
}

// refused logs a refused notice, at most once per peer and minute.
func (iv *invites) refused(log *slog.Logger, p peer.ID, n *InviteNotice, reason string) {
	if iv.logs.allow(p) {
		log.Info("invite notice refused", "peer", p.ShortString(), "room", n.Room, "reason", reason)
	}
}

// takeInvite checks a notice in the order of cost (decoding, the peer's
// rate, a callback slot) and starts the callback.
func (m *Mesh) takeInvite(remote peer.ID, raw []byte) *InviteAnswer {
	notice, err := UnmarshalInviteNotice(raw)
	if err != nil {
		m.offend(remote, OffenseMalformed, err)
		return &InviteAnswer{Status: InviteBadRequest, Message: "malformed notice"}
	}
	if !m.invites.limit.allow(remote) {
		m.invites.refused(m.log, remote, notice, "rate")
		return &InviteAnswer{Status: InviteRateLimited, Message: "invite notice rate exceeded"}
	}
	sid, ok := serverID(remote)
	if !ok {
		return &InviteAnswer{Status: InviteBadRequest, Message: "notifier is not a server"}
	}
	if !m.invites.slots.tryAcquire(remote) {
		m.invites.refused(m.log, remote, notice, "busy")
		return &InviteAnswer{Status: InviteBusy, Message: "too many notices in progress"}
	}
	// Under the read lock, Close cannot start waiting for the goroutines
	// between the check and the Add.
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		m.invites.slots.release(remote)
		return &InviteAnswer{Status: InviteBusy, Message: "closing"}
	}
	m.goFunc(func() {
		defer m.invites.slots.release(remote)
		m.cfg.OnInvite(m.ctx, sid, *notice)
	})
	return &InviteAnswer{Status: InviteAccepted}
}

// SendInvite tells server to that it was invited into a room. The answer
// only says whether the notice was taken: the receiver verifies the
// invitation with this server and joins on its own. A refusal is an
// [*InviteError].
func (m *Mesh) SendInvite(ctx context.Context, to dag.ServerID, notice InviteNotice) error {
	body, err := notice.Marshal()
	if err != nil {
		return err
	}
	pid, err := PeerID(to.PublicKey())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	s, err := m.h.NewStream(ctx, pid, InviteProtocol)
	if err != nil {
		return fmt.Errorf("p2p: open invite stream to %s: %w", pid.ShortString(), err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := writeFrame(s, body); err != nil {
		s.Reset()
		return fmt.Errorf("p2p: send invite notice: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return fmt.Errorf("p2p: send invite notice: %w", err)
	}
	raw, err := readFrame(bufio.NewReader(s), maxInviteAnswer)
	if err != nil {
		s.Reset()
		if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMalformedFrame) {
			return m.offense(pid, OffenseMalformed, err)
		}
		return fmt.Errorf("p2p: read invite answer: %w", err)
	}
	ans, err := UnmarshalInviteAnswer(raw)
	if err != nil {
		return m.offense(pid, OffenseMalformed, err)
	}
	if ans.Status != InviteAccepted {
		return &InviteError{Status: ans.Status, Message: ans.Message}
	}
	return nil
}
