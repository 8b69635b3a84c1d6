package p2p

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
)

// handleSync serves one sync request. The order of checks is the order of
// cost: who the peer is (blocked peers and peers of none of the joined
// rooms are reset before anything is read), framing and decoding within the
// read timeout, the peer's rate, access control for the room, the
// concurrency slots, and only then the store.
func (m *Mesh) handleSync(s network.Stream) {
	defer s.Close()
	remote := s.Conn().RemotePeer()
	if m.blocked(remote) {
		m.refuseStream(s, RefuseBlocked)
		return
	}
	if !m.participatesAny(remote) {
		m.refuseStream(s, RefuseStranger)
		return
	}
	w := m.guard(s)
	defer func() {
		if w.stop() {
			m.refuseStream(s, RefuseIdle)
		}
	}()
	raw, err := w.readRequest(MaxRequestSize)
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
	req, err := UnmarshalSyncRequest(raw)
	if err != nil {
		m.offend(remote, OffenseMalformed, err)
		kind := SyncHeads
		if len(raw) > 0 && SyncKind(raw[0]) >= SyncHeads && SyncKind(raw[0]) <= SyncGetEvents {
			kind = SyncKind(raw[0])
		}
		m.respond(s, &SyncResponse{Kind: kind, Status: StatusBadRequest, Message: "malformed request"})
		return
	}
	resp := m.serveSync(remote, req)
	m.respond(s, resp)
}

func (m *Mesh) respond(s network.Stream, resp *SyncResponse) {
	body, err := resp.Marshal()
	if err != nil {
		m.log.Error("encode sync answer", "err", err)
		s.Reset()
		return
	}
	if err := writeFrame(s, body); err != nil {
		s.Reset()
	}
}

func refuse(kind SyncKind, st SyncStatus, msg string) *SyncResponse {
	return &SyncResponse{Kind: kind, Status: st, Message: msg}
}

// serveSync answers a decoded request from remote.
func (m *Mesh) serveSync(remote peer.ID, req *SyncRequest) *SyncResponse {
	if !m.syncLimit.allow(remote) {
		return refuse(req.Kind, StatusRateLimited, "sync request rate exceeded")
	}
	if !m.participates(req.Room, remote) {
		return refuse(req.Kind, StatusForbidden, "requester does not participate in the room")
	}
	if !m.serving.tryAcquire(remote) {
		return refuse(req.Kind, StatusBusy, "too many requests in progress")
	}
	defer m.serving.release(remote)
	resp, err := m.answer(req)
	if err != nil {
		m.log.Error("serve sync", "kind", req.Kind, "room", req.Room, "err", err)
		return refuse(req.Kind, StatusInternal, "internal error")
	}
	return resp
}

func (m *Mesh) answer(req *SyncRequest) (*SyncResponse, error) {
	st := m.cfg.Store
	switch req.Kind {
	case SyncHeads:
		// One page: the tips above the cursor, ascending.
		page, more, err := st.TipsAfter(req.Room, req.After, MaxRequestIDs)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 && req.After.IsZero() {
			return refuse(req.Kind, StatusUnknownRoom, "no events of the room"), nil
		}
		return &SyncResponse{Kind: SyncHeads, Heads: page, More: more}, nil
	case SyncGetEvents:
		resp := &SyncResponse{Kind: SyncGetEvents}
		size := 0
		for _, id := range req.IDs {
			ev, err := m.roomEvent(req.Room, id)
			if err != nil {
				return nil, err
			}
			if ev == nil {
				continue
			}
			if size > 0 && size+ev.Size() > ResponseBudget {
				break
			}
			size += ev.Size()
			resp.Events = append(resp.Events, ev.Bytes())
		}
		return resp, nil
	case SyncGetMissing:
		return m.walkMissing(req)
	}
	return nil, fmt.Errorf("p2p: unknown sync kind %d", req.Kind)
}

// roomEvent returns a stored event of room, or nil when it is not stored or
// belongs to another room (which a requester must not learn about through
// this room's access).
func (m *Mesh) roomEvent(room dag.RoomID, id dag.EventID) (*dag.Event, error) {
	ev, err := m.cfg.Store.Get(id)
	if errors.Is(err, dag.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ev.RoomID() != room {
		return nil, nil
	}
	return ev, nil
}

// walkMissing answers get_missing: a breadth-first walk back from the
// requested heads, each level in ID order, that does not include or pass
// the requester's known events, up to the limit and the response budget.
// Complete is set when the walk ran out of events rather than room.
func (m *Mesh) walkMissing(req *SyncRequest) (*SyncResponse, error) {
	resp := &SyncResponse{Kind: SyncGetMissing}
	known := make(map[dag.EventID]bool, len(req.Known))
	for _, id := range req.Known {
		known[id] = true
	}
	seen := make(map[dag.EventID]bool)
	level := req.IDs
	size := 0
	for len(level) > 0 {
		var next []dag.EventID
		for _, id := range level {
			if seen[id] || known[id] {
				continue
			}
			seen[id] = true
			ev, err := m.roomEvent(req.Room, id)
			if err != nil {
				return nil, err
			}
			if ev == nil {
				continue
			}
			if len(resp.Events) == int(req.Limit) || (size > 0 && size+ev.Size() > ResponseBudget) {
				return resp, nil
			}
			size += ev.Size()
			resp.Events = append(resp.Events, ev.Bytes())
			next = append(next, ev.Prev...)
		}
		level = dag.SortIDs(next)
	}
	resp.Complete = true
	return resp, nil
}
