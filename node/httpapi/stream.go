package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Stream settings.
const (
	// streamHeartbeat is how often an idle stream sends a heartbeat line,
	// so that clients and proxies notice a dead connection.
	streamHeartbeat = 15 * time.Second
	streamBatch     = 256
)

// streamHub ends every open stream when the API stops, so that the HTTP
// server's graceful shutdown does not wait for them.
type streamHub struct {
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func newStreamHub() *streamHub {
	ctx, cancel := context.WithCancel(context.Background())
	return &streamHub{ctx: ctx, cancel: cancel}
}

func (h *streamHub) closeAll() { h.once.Do(h.cancel) }

// describe turns a stored event into its stream line: the signed event and
// its routing metadata; the client reads the content from Raw.
func describe(cursor uint64, ev *dag.Event) clientapi.StreamLine {
	return clientapi.StreamLine{
		Type: clientapi.LineEvent, Cursor: cursor, Room: ev.RoomID().String(), Event: ev.ID().String(), Kind: ev.Kind.String(),
		Origin: ev.Origin.String(), TS: ev.Timestamp, Raw: ev.Bytes(),
	}
}

// handleStream serves GET /v1/stream: newline-delimited JSON, one line per
// event of the rooms the device's user is listed in (or of ?room= only),
// from the feed position after ?since= (default: the device's stored
// cursor), then live, with a heartbeat line when idle.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, d *device) {
	q := r.URL.Query()
	var room dag.RoomID
	if v := q.Get("room"); v != "" {
		var err error
		if room, err = parseRoom(v); err != nil {
			s.fail(w, r, err)
			return
		}
		if _, joined := s.rooms.State(room); !joined {
			s.fail(w, r, apierror.RoomUnknown(room))
			return
		}
	}
	var since uint64
	if raw := q.Get("since"); raw != "" {
		v, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "since %q is not a cursor: give the \"cursor\" of the last event you processed, or 0 for everything", raw))
			return
		}
		since = v
	} else {
		v, err := s.feed.Cursor(d.User, d.Device)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		since = v
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	s.streamsOpen.Inc()
	defer s.streamsOpen.Dec()
	me := roomstate.URI(s.accounts.UserURI(d.User))
	enc := json.NewEncoder(w)
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	for {
		wake := s.feed.Waiter() // before reading, so no growth is missed
		var seqs []uint64
		var entries []feed.Entry
		var err error
		if room.IsZero() {
			// Every room's entries: a commit that adds this user may be
			// read before the room's state lists them (addsReader).
			seqs, entries, err = s.feed.All(since, streamBatch)
		} else {
			seqs, entries, err = s.feed.Room(room, since, streamBatch)
		}
		if err != nil {
			s.log.Error("stream: read feed", "sys", "api", "err", err)
			return
		}
		for i, e := range entries {
			since = seqs[i]
			if !room.IsZero() && e.Room != room {
				continue
			}
			if e.Order == nil && (e.Kind == dag.KindSeal || e.Kind == dag.KindAck || e.Kind == dag.KindSuspect) {
				continue // order lines summarize the votes
			}
			st, _ := s.rooms.State(e.Room)
			if st == nil {
				continue
			}
			if !st.Has(me, roomstate.CanReceiveMessage) && !s.AddsReader(st, e, me) {
				continue
			}
			if e.Order != nil {
				if err := enc.Encode(describeOrder(seqs[i], e.Room, e.Order)); err != nil {
					return
				}
				continue
			}
			ev, err := s.events.Get(e.Event)
			if err != nil {
				s.log.Error("stream: read event", "sys", "api", "event", e.Event, "err", err)
				return
			}
			if err := enc.Encode(describe(seqs[i], ev)); err != nil {
				return
			}
		}
		if len(entries) == streamBatch {
			if err := rc.Flush(); err != nil {
				return
			}
			continue
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-wake:
		case <-heartbeat.C:
			if err := enc.Encode(clientapi.StreamLine{Type: clientapi.LineHeartbeat, Cursor: since}); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.streams.ctx.Done():
			return
		}
	}
}

// AddsReader reports whether a feed entry is a commit that adds me to the
// room. Its stream line carries the Welcome, and the room's state lists me
// only once the commit is ordered, which may happen after a stream read
// the entry (the commit and the votes that order it arrive separately):
// without this, the joining device could miss its own Welcome for good.
func (s *Server) AddsReader(st *roomstate.State, e feed.Entry, me roomstate.URI) bool {
	if e.Order != nil || e.Kind != dag.KindCommit {
		return false
	}
	ev, err := s.events.Get(e.Event)
	if err != nil {
		return false
	}
	c, err := roomevent.DecodeCommit(ev.Content)
	if err != nil {
		return false
	}
	for _, ch := range c.Changes {
		op, err := roomstate.DecodeOp(st, roomstate.ComponentID(ch.Component), ch.Update)
		if err != nil {
			continue
		}
		if pu, ok := op.(*roomstate.ParticipantUpdate); ok {
			for _, a := range pu.Added {
				if a.User == me {
					return true
				}
			}
		}
	}
	return false
}

// handleSetCursor stores the device's cursor: the stream resumes after it
// when GET /v1/stream has no ?since=.
func (s *Server) handleSetCursor(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.CursorRequest
	if err := readJSON(w, r, MaxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Cursor == nil {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "cursor is missing: send {\"cursor\": N} with the cursor of the last event processed"))
		return
	}
	top, err := s.feed.Seq()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if *req.Cursor > top {
		s.fail(w, r, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "cursor %d is beyond the newest event (%d)", *req.Cursor, top))
		return
	}
	if err := s.feed.SetCursor(d.User, d.Device, *req.Cursor); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientapi.CursorStored{Cursor: *req.Cursor})
}
