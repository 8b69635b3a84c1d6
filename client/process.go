package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/mimicontent"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// keyCommitEvent stores a commit event seen on the stream, so that an
// order line can apply it later, even after a restart.
func keyCommitEvent(room, id string) []byte { return []byte(roomPrefix(room) + "ce/" + id) }

// processLine handles one stream line exactly once: lines at or below the
// stored cursor are skipped, and the line's effects are written together
// with the new cursor. It returns an error only for failures that must
// stop the stream (store or network); events the client cannot use are
// skipped.
func (c *Client) processLine(ctx context.Context, l *clientapi.StreamLine) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return ErrNotRegistered
	}
	if l.Cursor <= c.cursor {
		return nil
	}
	b := newBatch()
	if err := c.handle(ctx, b, l); err != nil {
		return err
	}
	if r := c.rooms[l.Room]; r != nil && r.g != nil {
		r.g.Expire(c.now()) // retained epochs past their deadline are erased
	}
	b.setCursor(l.Cursor)
	if err := c.st.commit(b); err != nil {
		return err
	}
	c.cursor = l.Cursor
	c.drainSignal()
	return nil
}

// handle dispatches one line.
func (c *Client) handle(ctx context.Context, b *batch, l *clientapi.StreamLine) error {
	switch l.Type {
	case clientapi.LineEvent:
		return c.processEvent(ctx, b, l)
	case clientapi.LineOrder:
		return c.processOrder(ctx, b, l)
	}
	return nil
}

// processEvent verifies the signed DAG event of a line and applies it.
func (c *Client) processEvent(ctx context.Context, b *batch, l *clientapi.StreamLine) error {
	ev, err := dag.Decode(l.Raw)
	if err != nil || ev.Verify() != nil || ev.ID().String() != l.Event {
		c.skip(l, "event does not decode, verify or match its ID")
		return nil
	}
	roomID := ev.RoomID().String()
	r := c.rooms[roomID]
	now := c.now()
	origin := hex.EncodeToString(ev.Origin[:])
	switch ev.Kind {
	case dag.KindCreate:
		cr, err := roomevent.DecodeCreate(ev.Content)
		if err != nil || r != nil {
			return nil
		}
		r = newRoom(roomInfo{Room: roomID, CreateID: l.Event})
		e := &logEntry{Op: "create", Event: l.Event, State: cr.State, Actor: actorJSON{User: cr.Creator.User, Client: cr.Creator.Client, Origin: origin}, AtMS: now.UnixMilli()}
		if cr.Creator.Client == c.id.DeviceURI {
			e.Seed = make([]byte, 32)
			if _, err := c.rand.Read(e.Seed); err != nil {
				return err
			}
		}
		if err := c.logAndApply(b, r, e); err != nil {
			c.skip(l, err.Error())
			return nil
		}
		b.putJSON(keyRoomInfo(roomID), &r.info)
		c.rooms[roomID] = r
	case dag.KindState:
		st, err := roomevent.DecodeState(ev.Content)
		if err != nil || r == nil {
			return nil
		}
		if err := st.Verify(ev.RoomID()); err != nil {
			c.skip(l, "state change signature: "+err.Error())
			return nil
		}
		// Pending until a commit adopts it (names it among its DAG
		// parents): the room state changes with that commit, on its branch.
		e := &logEntry{Op: "state-event", Event: l.Event, Changes: toChangeJSON(st.Changes), Actor: actorJSON{User: st.Sender.User, Client: st.Sender.Client, Origin: origin}, AtMS: now.UnixMilli()}
		if err := c.logAndApply(b, r, e); err != nil {
			c.skip(l, err.Error())
			return nil
		}
		c.completeDepartures(r)
	case dag.KindCommit:
		ce := commitOf(ev, l.Event, origin)
		if ce == nil {
			return nil
		}
		if r == nil {
			// Its earlier events were not streamed to us (we were not a
			// participant yet): read the room's history.
			return c.adoptRoom(ctx, b, roomID, l.Cursor)
		}
		r.commits[ce.ID] = ce
		b.putJSON(keyCommitEvent(roomID, ce.ID), ce)
	case dag.KindProposal:
		p, err := roomevent.DecodeProposal(ev.Content)
		if err != nil || r == nil || r.g == nil || r.left || p.Epoch.String() != r.epoch || p.Sender.Client == c.id.DeviceURI {
			return nil
		}
		e := &logEntry{Op: "proposal", Event: l.Event, MLS: p.Proposal, AtMS: now.UnixMilli(), TSMS: ev.Timestamp}
		if _, err := mls.UnmarshalMLSMessage(p.Proposal); err != nil {
			return nil
		}
		if err := c.logAndApply(b, r, e); err != nil {
			c.skip(l, err.Error())
			return nil
		}
		c.completeDepartures(r)
	case dag.KindMessage:
		m, err := roomevent.DecodeMessage(ev.Content)
		if err != nil || r == nil {
			return nil
		}
		return c.processMessage(b, r, l, m, ev.Timestamp)
	}
	return nil
}

func toChangeJSON(cs []roomevent.Change) []clientapi.Change {
	out := make([]clientapi.Change, len(cs))
	for i, ch := range cs {
		out[i] = clientapi.Change{Component: ch.Component, Update: ch.Update}
	}
	return out
}

// proposalOf returns the sender leaf of a SelfRemove proposal message, or
// nil props for any other proposal.
func proposalOf(msg *mls.MLSMessage) (mls.LeafIndex, []mls.Proposal, error) {
	if msg.PublicMessage == nil || msg.PublicMessage.Content.Proposal == nil {
		return 0, nil, errors.New("not a proposal")
	}
	if _, ok := msg.PublicMessage.Content.Proposal.(*mls.SelfRemoveProposal); !ok {
		return 0, nil, nil
	}
	return msg.PublicMessage.Content.Sender.LeafIndex, []mls.Proposal{msg.PublicMessage.Content.Proposal}, nil
}

// completeDepartures queues the commit of the departures in r, if this
// device is to make it: users whose clients are still in the MLS group
// but who are not listed in the state the next commit is judged against
// (pendingState: Leave's state event, after its SelfRemove, or a
// standalone removal, pending until that commit adopts it). Every commit
// must remove such clients (roomstate.AuthorizeCommit, completeness), and
// the one that does takes out the servers they vacate (plan.Vacate). The
// committer is the lowest leaf among the members whose user is listed and
// not banned, so that members do not race each other; a departure whose
// state event has not arrived yet waits for it (the SelfRemove alone is
// not a leave).
func (c *Client) completeDepartures(r *room) {
	if r.g == nil || r.left {
		return
	}
	st := r.pendingState()
	var departed []string
	designated := false
	first := true
	for _, l := range r.g.Members() {
		d, ok := leafDevice(r.g, l)
		if !ok {
			continue
		}
		u := userOfDevice(d)
		switch st.RoleOf(roomstate.URI(u)) {
		case roomstate.RoleNone:
			if !slices.Contains(departed, u) {
				departed = append(departed, u)
			}
			continue
		case roomstate.RoleBanned:
			continue // may not commit; the ban's commit removes its clients
		}
		if first {
			designated, first = l == r.g.LeafIndex(), false
		}
	}
	if len(departed) == 0 || !designated {
		return
	}
	slices.Sort(departed)
	for _, p := range r.repropose {
		if p.Plan.Purpose == "leave" && slices.Equal(p.Plan.Departed, departed) {
			return // already queued
		}
	}
	r.repropose = append(r.repropose, &pendingCommit{Plan: &commitPlan{Purpose: "leave", Departed: departed, Vacate: true}})
}

// adoptRoom reads the history of a room this device does not know yet
// (a room-filtered stream from the start, up to the line at cursor upto)
// and processes it as if it had been streamed: the node streams a room's
// events only to its participants, so an invitee sees its first lines only
// once the commit adding it is canonical.
func (c *Client) adoptRoom(ctx context.Context, b *batch, roomID string, upto uint64) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.WaitTimeout)
	defer cancel()
	errDone := errors.New("done")
	err := c.readStream(ctx, c.api(), "?since=0&room="+url.QueryEscape(roomID), func(l *clientapi.StreamLine) error {
		if l.Cursor > upto {
			return errDone
		}
		if l.Type == clientapi.LineEvent && l.Kind == "create" && c.rooms[roomID] != nil {
			return nil
		}
		if l.Type != clientapi.LineHeartbeat && c.rooms[roomID] == nil && l.Kind != "create" {
			return nil // not ours to start from
		}
		if err := c.handle(ctx, b, l); err != nil {
			return err
		}
		if l.Cursor == upto {
			return errDone
		}
		return nil
	})
	if errors.Is(err, errDone) {
		return nil
	}
	delete(c.rooms, roomID)
	if err == nil {
		err = errors.New("stream ended")
	}
	return fmt.Errorf("client: history of room %s: %w", roomID, err)
}

// applyCanonical applies a commit an order line made canonical. A device
// that is not in the room's MLS group yet follows its room state and joins
// from the first canonical commit whose Welcome is for one of its
// KeyPackages. An own commit is merged from its recorded seed and plan;
// other own commits pending on the same parent lost their slot. Another
// device's commit is processed only if it passes the checks servers run
// (verifyCommit before processing, checkRoster on the group it leaves); a
// refused one is skipped and not logged, and the room stays at its epoch.
func (c *Client) applyCanonical(b *batch, r *room, ce *commitEvent) error {
	if r.left || containsStr(r.chain, ce.ID) {
		return nil
	}
	hash := commitHash(ce.MLS)
	for h, p := range r.pending {
		if h != hash && p.Parent == ce.Parent {
			p.Lost = true // "sees another commit applied on the same parent and rebuilds"
			b.del(keyPending(r.info.Room, h))
			delete(r.pending, h)
		}
	}
	if r.g == nil {
		return c.followOrJoin(b, r, ce)
	}
	if ce.Parent != r.epoch {
		c.skipf("room %s: canonical commit %s builds on %s, not on our epoch %s", r.info.Room, ce.ID, ce.Parent, r.epoch)
		return nil
	}
	p := r.pending[hash]
	e := &logEntry{Op: "commit", Event: ce.ID, Parent: ce.Parent, MLS: ce.MLS, Changes: ce.Changes, Actor: ce.Actor, AtMS: c.now().UnixMilli(), TSMS: ce.TSMS,
		Adopted: r.adoptable(ce)}
	base, err := r.adoptStates(r.state, e.Adopted)
	if err != nil {
		// Servers refuse a commit whose adopted state events do not apply.
		c.skipf("room %s: commit %s: %v", r.info.Room, ce.ID, err)
		return nil
	}
	if ce.Actor.Client == c.id.DeviceURI {
		if p == nil {
			c.skipf("room %s: own commit %s has no pending record; it cannot be merged", r.info.Room, ce.ID)
			return nil
		}
		e.Seed, e.Plan = p.Seed, p.Plan
	} else if e.authorized, err = verifyCommit(r, base, e); err != nil {
		// Never logged: the replay log holds only the commits applied.
		c.skipf("room %s: commit %s by %s: %v", r.info.Room, ce.ID, ce.Actor.Client, err)
		return nil
	}
	if err := c.logAndApply(b, r, e); err != nil {
		c.skipf("room %s: commit %s: %v", r.info.Room, ce.ID, err)
		return nil
	}
	if p != nil {
		p.Event = ce.ID
		b.del(keyPending(r.info.Room, hash))
		delete(r.pending, hash)
	}
	return nil
}

// followOrJoin handles a canonical commit in a room whose group this
// device does not hold: join if the Welcome is ours, else follow the room
// state.
func (c *Client) followOrJoin(b *batch, r *room, ce *commitEvent) error {
	adopted := r.adoptable(ce)
	next, err := r.adoptStates(r.state, adopted)
	if err == nil {
		next, err = applyChanges(next, ce.Actor, ce.Changes)
	}
	if err != nil {
		c.skipf("room %s: canonical commit %s: %v", r.info.Room, ce.ID, err)
		next = r.state
	}
	var kpKey []byte
	var rec *kpRecord
	if len(ce.Welcome) > 0 {
		if wm, err := mls.UnmarshalMLSMessage(ce.Welcome); err == nil && wm.Welcome != nil {
			if kpKey, rec, err = c.findKeyPackage(wm.Welcome); err != nil {
				return err
			}
		}
	}
	if rec != nil && c.noJoin[r.info.Room][ce.ID] {
		c.skipf("room %s: not joining again from the Welcome of %s: that join was undone", r.info.Room, ce.ID)
		rec = nil
	}
	if rec == nil {
		return c.logAndApply(b, r, &logEntry{Op: "follow", Event: ce.ID, Changes: ce.Changes, Actor: ce.Actor, AtMS: c.now().UnixMilli(), Adopted: adopted})
	}
	comps, err := next.Components()
	if err != nil {
		return err
	}
	stateRaw, err := marshalComponents(comps)
	if err != nil {
		return err
	}
	e := &logEntry{Op: "join", Event: ce.ID, Parent: ce.Parent, Welcome: ce.Welcome, KP: rec, State: stateRaw, AtMS: c.now().UnixMilli(), Adopted: adopted}
	if err := c.logAndApply(b, r, e); err != nil {
		c.skipf("room %s: join from welcome in %s: %v", r.info.Room, ce.ID, err)
		return nil
	}
	if !rec.LastResort {
		b.del(kpKey) // one-time: its keys now live only in the room's log
	}
	return nil
}

// processMessage decrypts an application message, checks its MIMI content
// against the MLS-authenticated sender and queues it once per message ID.
func (c *Client) processMessage(b *batch, r *room, l *clientapi.StreamLine, m *roomevent.Message, ts int64) error {
	if m.Sender.Client == c.id.DeviceURI {
		var id string
		if found, err := c.st.getJSON(keySentCipher(r.info.Room, m.Message), &id); err != nil || !found {
			return err
		}
		var s sentMessage
		if found, err := c.st.getJSON(keySent(r.info.Room, id), &s); err != nil || !found {
			return err
		}
		return c.deliver(b, &Delivery{Room: RoomID(r.info.Room), ID: MessageID(id), Sender: c.id.UserURI, Device: c.id.DeviceURI, Epoch: EventID(m.Epoch.String()),
			Event: EventID(l.Event), TS: ts, Raw: s.Content, Own: true})
	}
	if r.g == nil || r.left {
		return nil
	}
	msg, err := mls.UnmarshalMLSMessage(m.Message)
	if err != nil {
		return nil
	}
	pm, err := r.g.ProcessMessage(msg, &mls.ProcessOptions{Now: c.now()})
	if err != nil {
		c.skipf("room %s: message %s (epoch %s) not decrypted: %v", r.info.Room, l.Event, m.Epoch, err)
		return nil
	}
	if pm.ContentType != mls.ContentTypeApplication {
		return nil
	}
	device := m.Sender.Client
	if dev, ok := leafDevice(r.g, pm.Sender.LeafIndex); ok && r.g.Epoch() == pm.Epoch && dev != device {
		c.skipf("room %s: message %s: MLS sender %s differs from the event's sender %s", r.info.Room, l.Event, dev, device)
		return nil
	}
	user := userOfDevice(device)
	content, err := mimicontent.Decode(pm.ApplicationData)
	if err != nil {
		c.skipf("room %s: message %s: %v", r.info.Room, l.Event, err)
		return nil
	}
	if content.Extensions.SenderURI != "" && content.Extensions.SenderURI != user {
		c.skipf("room %s: message %s claims sender %s, MLS says %s", r.info.Room, l.Event, content.Extensions.SenderURI, user)
		return nil
	}
	roomURI := r.roomURI()
	if content.Extensions.RoomURI != "" && roomURI != "" && content.Extensions.RoomURI != roomURI {
		c.skipf("room %s: message %s claims room %s", r.info.Room, l.Event, content.Extensions.RoomURI)
		return nil
	}
	mid, err := mimicontent.ComputeMessageID(user, roomURI, pm.ApplicationData)
	if err != nil {
		return nil
	}
	return c.deliver(b, &Delivery{Room: RoomID(r.info.Room), ID: MessageID(hex.EncodeToString(mid[:])), Sender: user, Device: device, Epoch: EventID(m.Epoch.String()),
		EpochNumber: pm.Epoch, Event: EventID(l.Event), TS: ts, Raw: pm.ApplicationData})
}

// skip records why a line was not used (kept for diagnostics).
func (c *Client) skip(l *clientapi.StreamLine, why string) {
	c.skipf("line %d (%s %s): %s", l.Cursor, l.Kind, l.Event, why)
}

func (c *Client) skipf(format string, args ...any) {
	c.skipped = append(c.skipped, fmt.Sprintf(format, args...))
	if len(c.skipped) > 100 {
		c.skipped = c.skipped[len(c.skipped)-100:]
	}
}

// Skipped returns the reasons of the most recent stream events the client
// could not use (at most 100), oldest first.
func (c *Client) Skipped() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.skipped...)
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// now is used in timestamps of log entries.
var _ = time.Now

// commitOf decodes a verified commit event.
func commitOf(ev *dag.Event, id, origin string) *commitEvent {
	cm, err := roomevent.DecodeCommit(ev.Content)
	if err != nil {
		return nil
	}
	prev := make([]string, len(ev.Prev))
	for i, p := range ev.Prev {
		prev[i] = p.String()
	}
	return &commitEvent{ID: id, Parent: cm.Parent.String(), MLS: cm.Commit, Changes: toChangeJSON(cm.Changes), Welcome: cm.Welcome,
		Actor: actorJSON{User: cm.Sender.User, Client: cm.Sender.Client, Origin: origin}, TSMS: ev.Timestamp, Prev: prev}
}

// commitFromLine verifies a commit event line and decodes it.
func commitFromLine(l *clientapi.StreamLine) *commitEvent {
	ev, err := dag.Decode(l.Raw)
	if err != nil || ev.Verify() != nil || ev.ID().String() != l.Event || ev.Kind != dag.KindCommit {
		return nil
	}
	return commitOf(ev, l.Event, hex.EncodeToString(ev.Origin[:]))
}
