package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/p2p"
	engine "github.com/rhizome-chat/rhizome/room"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Invite notices (docs/protocol.md, "Invite notices"): when this server
// accepts a room-state change of its own (its origin is this server) that
// adds a server, or adds a user of a server already in the room, it tells
// that server with a notice over p2p.InviteProtocol. The invited server
// verifies the invitation with this server and joins through it (joins).
const (
	// inviteQueue bounds the notices waiting to be sent, new or retried.
	inviteQueue = 256
	// inviteAttempts is how often one notice is sent: at once, then after
	// 1, 2, 4, ... s, each wait at most inviteMaxBackoff (about 23 minutes
	// in all), so that a server that is down for a while still hears of it.
	inviteAttempts   = 12
	inviteMaxBackoff = 5 * time.Minute
	// inviteSendTimeout bounds one send.
	inviteSendTimeout = 5 * time.Second
	// inviteScan bounds the room's state entries searched backwards for
	// the event that made a change.
	inviteScan = 512
)

// inviteJob is one notice to send.
type inviteJob struct {
	room       dag.RoomID
	to         dag.ServerID
	invitation dag.EventID
	attempt    int
	due        time.Time
}

// inviter sends invite notices, with bounded retries, on one goroutine.
type inviter struct {
	n      *Node
	log    *slog.Logger
	queue  chan inviteJob
	metric *prometheus.CounterVec
}

func newInviter(n *Node, log *slog.Logger) *inviter {
	iv := &inviter{n: n, log: log, queue: make(chan inviteJob, inviteQueue),
		metric: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "invite_notices_total",
			Help: "Invite notices, by direction (sent, received) and outcome.",
		}, []string{"direction", "outcome"}),
	}
	n.metrics.Registry.MustRegister(iv.metric)
	return iv
}

// enqueue queues a notice without blocking; a full queue drops it.
func (iv *inviter) enqueue(j inviteJob) {
	select {
	case iv.queue <- j:
	default:
		iv.metric.WithLabelValues("sent", "dropped").Inc()
		iv.log.Warn("invite notice dropped: queue full", "room", j.room, "to", j.to)
	}
}

// run sends queued notices until ctx ends.
func (iv *inviter) run(ctx context.Context) {
	var retry []inviteJob
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-iv.queue:
			retry = iv.send(ctx, j, retry)
		case now := <-t.C:
			var later []inviteJob
			for _, j := range retry {
				if now.Before(j.due) {
					later = append(later, j)
				} else {
					later = iv.send(ctx, j, later)
				}
			}
			retry = later
		}
	}
}

// send sends one notice and returns retry with the notice appended if it
// is to be tried again.
func (iv *inviter) send(ctx context.Context, j inviteJob, retry []inviteJob) []inviteJob {
	sctx, cancel := context.WithTimeout(ctx, inviteSendTimeout)
	err := iv.n.mesh.SendInvite(sctx, j.to, p2p.InviteNotice{Room: j.room, Invitation: j.invitation})
	cancel()
	if err == nil {
		iv.metric.WithLabelValues("sent", "accepted").Inc()
		iv.log.Info("invite notice sent", "room", j.room, "to", j.to, "invitation", j.invitation)
		return retry
	}
	var ie *p2p.InviteError
	final := errors.As(err, &ie) && ie.Status == p2p.InviteBadRequest
	if final || j.attempt+1 >= inviteAttempts || len(retry) >= inviteQueue || ctx.Err() != nil {
		iv.metric.WithLabelValues("sent", "failed").Inc()
		iv.log.Warn("invite notice not delivered", "room", j.room, "to", j.to, "attempts", j.attempt+1, "err", err)
		return retry
	}
	j.due = time.Now().Add(min(time.Second<<j.attempt, inviteMaxBackoff))
	j.attempt++
	return append(retry, j)
}

// noticeChanges is publishView's hook: for the servers that the newly
// published state adds, and for the servers whose users it adds, it queues
// a notice naming the event that made the change, if this server is that
// event's origin. The first state of a room is noticed only by its
// creator. The caller holds writeMu; nothing here blocks.
func (rs *rooms) noticeChanges(info *roomInfo, old *roomstate.State) {
	iv := rs.invites.Load()
	cur, o := info.state, info.eng
	if iv == nil || o == nil || cur == nil || cur == old {
		return
	}
	self := roomstate.ServerID(rs.self)
	if old == nil && !rs.createdHere(o) {
		return
	}
	had := func(id roomstate.ServerID) bool {
		if old == nil {
			return false
		}
		_, ok := old.Server(id)
		return ok
	}
	told := map[roomstate.ServerID]bool{self: true}
	for _, s := range cur.Servers() {
		if told[s.ID] || had(s.ID) {
			continue
		}
		told[s.ID] = true
		if inv, ok := rs.invitation(o, func(e *engine.StateEntry) bool { return addsServer(e, s.ID) }); ok {
			iv.enqueue(inviteJob{room: o.Room(), to: dag.ServerID(s.ID), invitation: inv})
		}
	}
	for _, p := range cur.Participants() {
		if old != nil && old.RoleOf(p.User) != roomstate.RoleNone {
			continue
		}
		for _, s := range cur.Servers() {
			if s.Domain != p.User.Domain() || told[s.ID] {
				continue
			}
			if inv, ok := rs.invitation(o, func(e *engine.StateEntry) bool { return addsUser(e, p.User) }); ok {
				iv.enqueue(inviteJob{room: o.Room(), to: dag.ServerID(s.ID), invitation: inv})
			}
		}
	}
}

// createdHere reports whether this server made the room's create event.
func (rs *rooms) createdHere(o *engine.Engine) bool {
	ev, err := rs.store.Get(o.Root())
	return err == nil && ev.Origin == rs.self
}

// invitation returns the newest of the room's last inviteScan state entries
// that matches and that this server made.
func (rs *rooms) invitation(o *engine.Engine, match func(e *engine.StateEntry) bool) (dag.EventID, bool) {
	e, ok := o.FindEntry(inviteScan, match)
	if !ok {
		return dag.EventID{}, false
	}
	if e.Kind == dag.KindCreate {
		return e.ID, rs.createdHere(o)
	}
	return e.ID, e.Actor.Server == roomstate.ServerID(rs.self)
}

// addsServer reports whether a state entry adds server id.
func addsServer(e *engine.StateEntry, id roomstate.ServerID) bool {
	if e.Initial != nil {
		_, ok := e.Initial.Server(id)
		return ok
	}
	return changesAdd(e.Changes, id, "")
}

// addsUser reports whether a state entry adds user u as a participant.
func addsUser(e *engine.StateEntry, u roomstate.URI) bool {
	if e.Initial != nil {
		return e.Initial.RoleOf(u) != roomstate.RoleNone
	}
	return changesAdd(e.Changes, roomstate.ServerID{}, u)
}

// changesAdd reports whether changes add server id (unless zero) or the
// participant u (unless empty).
func changesAdd(changes []roomevent.Change, id roomstate.ServerID, u roomstate.URI) bool {
	for _, c := range changes {
		switch roomstate.ComponentID(c.Component) {
		case roomstate.ComponentServers:
			if id == (roomstate.ServerID{}) {
				continue
			}
			if up, err := roomstate.ParseServersUpdate(c.Update); err == nil &&
				slices.ContainsFunc(up.Added, func(s roomstate.Server) bool { return s.ID == id }) {
				return true
			}
		case roomstate.ComponentParticipantList:
			if u == "" {
				continue
			}
			if up, err := roomstate.ParseParticipantListUpdate(c.Update); err == nil &&
				slices.ContainsFunc(up.Added, func(a roomstate.UserRole) bool { return a.User == u }) {
				return true
			}
		}
	}
	return false
}

// viaInvite is the mesh's OnInvite: it verifies an invite notice with the
// notifier and joins through it, within the join bounds. Every outcome is
// logged and counted; nothing is recorded unless the invitation verifies.
func (j *joins) viaInvite(ctx context.Context, from dag.ServerID, notice p2p.InviteNotice) {
	room := notice.Room
	count := func(outcome string) { j.invites.metric.WithLabelValues("received", outcome).Inc() }
	if _, joined := j.n.rooms.state(room); joined || from == j.n.ServerID() {
		count("known")
		return
	}
	if _, err := j.begin(room); err != nil {
		count(joinLimited)
		j.log.Info("invite notice refused", "room", room, "from", from, "err", err)
		return
	}
	defer j.end(room)
	if err := j.reserve(room, feed.JoinedInvite, from); err != nil {
		count(joinLimited)
		j.metric.WithLabelValues(feed.JoinedInvite, joinLimited).Inc()
		j.log.Info("invite notice refused", "room", room, "from", from, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	if err := j.acceptInvite(ctx, from, notice); err != nil {
		j.unreserve(room)
		count(joinFailed)
		j.metric.WithLabelValues(feed.JoinedInvite, joinFailed).Inc()
		j.log.Info("invite notice not followed", "room", room, "from", from, "invitation", notice.Invitation, "err", err)
		return
	}
	count(joinOK)
	j.metric.WithLabelValues(feed.JoinedInvite, joinOK).Inc()
	j.log.Info("room joined by invite", "room", room, "via", from, "invitation", notice.Invitation)
}

// acceptInvite fetches the room's create event and the invitation from the
// notifier, checks them, and joins.
func (j *joins) acceptInvite(ctx context.Context, from dag.ServerID, notice p2p.InviteNotice) error {
	create, initial, evs, err := j.fetch(ctx, from, notice.Room, notice.Invitation)
	if err != nil {
		return err
	}
	inv := evs[notice.Invitation]
	if inv == nil {
		return joinErr(http.StatusBadGateway, clientapi.CodeUnavailable, "server %v did not serve the invitation %v", from, notice.Invitation)
	}
	if err := j.checkInvitation(notice.Room, from, initial, inv); err != nil {
		return err
	}
	rec := feed.RoomRecord{How: feed.JoinedInvite, Via: []string{from.String()}, Since: j.n.now().UnixMilli(), Pending: true}
	return j.n.rooms.join(notice.Room, rec, create)
}

// checkInvitation checks that inv, an event of room (decoded, signed, of
// the room: the mesh checked that), invites this server: its origin and the
// notifier are each other or servers of the room's initial list, and it is
// the create event listing this server, a commit that adds this server to
// the servers, or a commit or state change that adds a registered user of
// this server to the participants (a state change may not touch the
// servers: the engine refuses it, servers-by-commit).
func (j *joins) checkInvitation(room dag.RoomID, from dag.ServerID, initial *roomstate.State, inv *dag.Event) error {
	bad := func(format string, args ...any) error {
		return joinErr(http.StatusForbidden, clientapi.CodeForbidden, "invitation %v to room %v: %s", inv.ID(), room, fmt.Sprintf(format, args...))
	}
	inInitial := func(s dag.ServerID) bool { _, ok := initial.Server(roomstate.ServerID(s)); return ok }
	if inv.Origin != from && !inInitial(inv.Origin) {
		return bad("its origin %v is neither the notifier nor a server of the room's creation", inv.Origin)
	}
	if inv.Origin != from && !inInitial(from) {
		return bad("the notifier %v is neither its origin nor a server of the room's creation", from)
	}
	self := roomstate.ServerID(j.n.ServerID())
	var changes []roomevent.Change
	switch inv.Kind {
	case dag.KindCreate:
		if _, ok := initial.Server(self); !ok {
			return bad("the room's initial servers do not include this server")
		}
		return nil
	case dag.KindState:
		st, err := roomevent.DecodeState(inv.Content)
		if err != nil {
			return bad("%v", err)
		}
		if err := st.Verify(room); err != nil {
			return bad("%v", err)
		}
		changes = st.Changes
	case dag.KindCommit:
		c, err := roomevent.DecodeCommit(inv.Content)
		if err != nil {
			return bad("%v", err)
		}
		changes = c.Changes
	default:
		return bad("a %v event invites no one", inv.Kind)
	}
	if changesAdd(changes, self, "") {
		return nil
	}
	for _, c := range changes {
		if roomstate.ComponentID(c.Component) != roomstate.ComponentParticipantList {
			continue
		}
		up, err := roomstate.ParseParticipantListUpdate(c.Update)
		if err != nil {
			continue
		}
		for _, a := range up.Added {
			name, ok := j.n.accounts.LocalUser(string(a.User))
			if !ok {
				continue
			}
			if found, err := j.n.accounts.Exists(name); err != nil {
				return err
			} else if found {
				return nil
			}
		}
	}
	return bad("it adds neither this server nor a user of it")
}
