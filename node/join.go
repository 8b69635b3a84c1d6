package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/node/internal/ratelimit"
	"github.com/rhizome-chat/rhizome/p2p"
	engine "github.com/rhizome-chat/rhizome/room"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Join defaults and bounds (docs/api.md, "POST /v1/rooms/{room}/join";
// docs/protocol.md, "Invite notices").
const (
	// DefaultJoinTimeout bounds the verification of one join.
	DefaultJoinTimeout = 20 * time.Second
	// DefaultGrace is how long a room joined by invite or API join may
	// wait for a local participant before it is left and purged.
	DefaultGrace = 10 * time.Minute
	// maxJoinsInFlight bounds the joins being verified at once.
	maxJoinsInFlight = 8
	// maxVia bounds the servers named in one API join.
	maxVia = 4
	// maxAwaiting bounds the rooms joined that have no local participant
	// yet, and maxAwaitingPerServer those joined through one server.
	maxAwaiting          = 64
	maxAwaitingPerServer = 4
)

// joinUserRate limits the API joins of one user: 20 an hour.
var joinUserRate = struct {
	perHour float64
	burst   int
}{20, 20}

// RoomsConfig configures joins through other servers.
type RoomsConfig struct {
	// JoinTimeoutMS bounds fetching and verifying a room's create event
	// and the invitation from the server joined through (default 20000).
	JoinTimeoutMS int `json:"join_timeout_ms"`
	// GraceMS is how long a room joined by invite or API join may wait for
	// a participant who is a user of this server; after it the room is
	// left and its events purged (default 600000, ten minutes).
	GraceMS int `json:"grace_ms"`
}

func (c RoomsConfig) check() (key, msg string) {
	if c.JoinTimeoutMS < 100 || c.JoinTimeoutMS > 300_000 {
		return "rooms.join_timeout_ms", fmt.Sprintf("must be 100 to 300000 milliseconds (default 20000), got %d", c.JoinTimeoutMS)
	}
	if c.GraceMS < 100 || c.GraceMS > 7*24*3600_000 {
		return "rooms.grace_ms", fmt.Sprintf("must be 100 milliseconds to 7 days (default 600000), got %d", c.GraceMS)
	}
	return "", ""
}

// Join outcomes, the label of rhizome_room_joins_total.
const (
	joinOK      = "joined"
	joinFailed  = "failed"  // the room or invitation did not verify, or the server did not answer
	joinLimited = "limited" // a rate, in-flight or awaiting-rooms limit
	joinPurged  = "purged"  // left after the grace period without a local participant
)

// joins makes this node take part in rooms created elsewhere, and only
// after it has verified, through a server of the room and within a
// timeout, the room's create event and that the room invites this server.
// Nothing is recorded before that. Rooms joined so that still have no
// participant of this server are "awaiting": bounded in number, and left
// and purged when the grace period passes.
type joins struct {
	n       *Node
	log     *slog.Logger
	timeout time.Duration
	grace   time.Duration
	byUser  *ratelimit.Buckets
	slots   chan struct{}
	metric  *prometheus.CounterVec
	invites *inviter

	mu       sync.Mutex
	inFlight map[dag.RoomID]chan struct{} // closed when the join ends
	awaiting map[dag.RoomID]awaitingRoom
}

// awaitingRoom is a joined room without a local participant yet.
type awaitingRoom struct {
	how   string       // feed.JoinedInvite or feed.JoinedAPI
	via   dag.ServerID // the server joined through (invite notices are capped per server)
	since time.Time
}

func newJoins(n *Node) *joins {
	j := &joins{
		n: n, log: n.log.With("sys", "joins"),
		timeout:  time.Duration(n.cfg.Rooms.JoinTimeoutMS) * time.Millisecond,
		grace:    time.Duration(n.cfg.Rooms.GraceMS) * time.Millisecond,
		byUser:   ratelimit.NewPerSecond("join_user", joinUserRate.perHour/3600, joinUserRate.burst),
		slots:    make(chan struct{}, maxJoinsInFlight),
		inFlight: map[dag.RoomID]chan struct{}{},
		awaiting: map[dag.RoomID]awaitingRoom{},
		metric: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "room_joins_total",
			Help: "Joins of rooms created elsewhere, by how (api, invite) and outcome (joined, failed, limited, purged).",
		}, []string{"how", "outcome"}),
	}
	n.metrics.Registry.MustRegister(j.metric)
	j.invites = newInviter(n, j.log)
	return j
}

// start loads the awaiting rooms, then runs the invite sender and the
// sweeper of awaiting rooms until the node stops.
func (j *joins) start() (func(context.Context) error, error) {
	recs, err := j.n.local.Rooms()
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	for id, rec := range recs {
		if rec.Pending {
			via := dag.ServerID{}
			if len(rec.Via) > 0 {
				via, _ = parseServerID(rec.Via[0])
			}
			j.awaiting[id] = awaitingRoom{how: rec.How, via: via, since: time.UnixMilli(rec.Since)}
		}
	}
	j.mu.Unlock()
	j.n.rooms.invites.Store(j.invites)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { j.invites.run(ctx) })
	wg.Go(func() { j.sweepLoop(ctx) })
	return func(stopCtx context.Context) error {
		j.n.rooms.invites.Store(nil)
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-stopCtx.Done():
			return stopCtx.Err()
		}
	}, nil
}

// joinError is a join that failed; status is the client API's answer.
type joinError struct {
	status int
	code   clientapi.ErrorCode
	retry  time.Duration
	msg    string
}

func (e *joinError) Error() string { return "node: join refused: " + e.msg }

func joinErr(status int, code clientapi.ErrorCode, format string, args ...any) *joinError {
	return &joinError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// apiError is the failure as the client API answers it.
func (e *joinError) apiError() *apierror.Error {
	ae := apierror.New(e.status, e.code, "%s", e.msg)
	ae.RetryAfter = e.retry
	return ae
}

// begin takes an in-flight slot for a join of room, or refuses: the room is
// being joined already (wait on the returned channel, closed when that join
// ends), or maxJoinsInFlight joins are. end releases the slot.
func (j *joins) begin(room dag.RoomID) (<-chan struct{}, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if ch, ok := j.inFlight[room]; ok {
		return ch, &joinError{status: http.StatusServiceUnavailable, code: clientapi.CodeUnavailable, retry: time.Second, msg: fmt.Sprintf("room %v is being joined already; retry in a moment", room)}
	}
	select {
	case j.slots <- struct{}{}:
	default:
		return nil, &joinError{status: http.StatusServiceUnavailable, code: clientapi.CodeUnavailable, retry: time.Second, msg: fmt.Sprintf("this server is verifying %d joins already; retry in a moment", maxJoinsInFlight)}
	}
	j.inFlight[room] = make(chan struct{})
	return nil, nil
}

func (j *joins) end(room dag.RoomID) {
	j.mu.Lock()
	close(j.inFlight[room])
	delete(j.inFlight, room)
	j.mu.Unlock()
	<-j.slots
}

// reserve admits one more awaiting room joined through via, or refuses.
func (j *joins) reserve(room dag.RoomID, how string, via dag.ServerID) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	per := 0
	for _, a := range j.awaiting {
		if a.via == via {
			per++
		}
	}
	if len(j.awaiting) >= maxAwaiting || per >= maxAwaitingPerServer {
		return joinErr(http.StatusServiceUnavailable, clientapi.CodeUnavailable,
			"too many rooms joined here are still waiting for a participant of this server (%d, %d through %v); retry later", len(j.awaiting), per, via)
	}
	j.awaiting[room] = awaitingRoom{how: how, via: via, since: j.n.now()}
	return nil
}

func (j *joins) unreserve(room dag.RoomID) {
	j.mu.Lock()
	delete(j.awaiting, room)
	j.mu.Unlock()
}

// awaitingCount returns the number of awaiting rooms.
func (j *joins) awaitingCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.awaiting)
}

// viaAPI joins room for a local user through the servers in via, trying
// them in order: one of them must list this server in the room (it answers
// the heads request) and serve the room's create event, which must verify.
func (j *joins) viaAPI(ctx context.Context, user string, room dag.RoomID, via []dag.ServerID) error {
	if len(via) > maxVia {
		return joinErr(http.StatusBadRequest, clientapi.CodeBadRequest, "via names %d servers, at most %d", len(via), maxVia)
	}
	if ok, retry := j.byUser.Take(user, j.n.now()); !ok {
		j.metric.WithLabelValues(feed.JoinedAPI, joinLimited).Inc()
		return &joinError{status: http.StatusTooManyRequests, code: clientapi.CodeRateLimited, retry: retry,
			msg: fmt.Sprintf("too many room joins by %s (limit %g an hour); retry in %v", user, joinUserRate.perHour, retry.Round(time.Second))}
	}
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	wait, err := j.begin(room)
	if wait != nil {
		// Another join of the room (an invite notice) is verifying: its
		// outcome is this one's if it succeeds.
		select {
		case <-wait:
		case <-ctx.Done():
		}
		if _, joined := j.n.rooms.state(room); joined {
			return nil
		}
		_, err = j.begin(room) // a second wait would be for a third join: refuse
	}
	if err != nil {
		j.metric.WithLabelValues(feed.JoinedAPI, joinLimited).Inc()
		return err
	}
	defer j.end(room)
	if _, joined := j.n.rooms.state(room); joined {
		return nil
	}
	var errs []error
	for _, v := range via {
		create, err := j.verifyVia(ctx, room, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := j.reserve(room, feed.JoinedAPI, v); err != nil {
			j.metric.WithLabelValues(feed.JoinedAPI, joinLimited).Inc()
			return err
		}
		rec := feed.RoomRecord{How: feed.JoinedAPI, Via: []string{v.String()}, Since: j.n.now().UnixMilli(), Pending: true}
		if err := j.n.rooms.join(room, rec, create); err != nil {
			j.unreserve(room)
			return err
		}
		j.metric.WithLabelValues(feed.JoinedAPI, joinOK).Inc()
		j.log.Info("room joined by API", "room", room, "user", user, "via", v)
		return nil
	}
	j.metric.WithLabelValues(feed.JoinedAPI, joinFailed).Inc()
	err = errors.Join(errs...)
	j.log.Info("room join failed", "room", room, "user", user, "err", err)
	var je *joinError
	if len(errs) == 1 && errors.As(errs[0], &je) {
		return je
	}
	return joinErr(http.StatusBadGateway, clientapi.CodeUnavailable, "no server in via let this server join room %v: %v", room, err)
}

// verifyVia checks room through server v: v lists this server in the room
// (it answers a heads request, which a server answers only for the room's
// servers), and v serves the room's create event, which verifies.
func (j *joins) verifyVia(ctx context.Context, room dag.RoomID, v dag.ServerID) (*dag.Event, error) {
	pid, err := j.connect(ctx, v)
	if err != nil {
		return nil, err
	}
	if err := retryTransient(ctx, func() error { _, err := j.n.mesh.Heads(ctx, pid, room); return err }); err != nil {
		return nil, viaErr(room, v, err)
	}
	create, _, _, err := j.fetch(ctx, v, room)
	return create, err
}

// retryTransient runs req, and again twice (after 200 and 600 ms) while it
// fails with neither a refusal of the peer nor the context's end: a server
// that has just started sharing a room with this one reconnects to it
// (Mesh.RefreshPeers), which resets the streams open at that moment.
func retryTransient(ctx context.Context, req func() error) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(200*(2*attempt-1)) * time.Millisecond):
			}
		}
		err = req()
		var re *p2p.RefusedError
		if err == nil || errors.As(err, &re) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// connect makes sure there is a connection to server v, with the addresses
// the host knows for it.
func (j *joins) connect(ctx context.Context, v dag.ServerID) (pid peer.ID, err error) {
	if v == j.n.ServerID() {
		return "", joinErr(http.StatusBadRequest, clientapi.CodeBadRequest, "via names this server")
	}
	if pid, err = p2p.PeerID(v.PublicKey()); err != nil {
		return "", joinErr(http.StatusBadRequest, clientapi.CodeBadRequest, "via server %v: %v", v, err)
	}
	h := j.n.mesh.Host()
	if h.Network().Connectedness(pid) == network.Connected {
		return pid, nil
	}
	pi := peerAddrInfo(j.n.mesh, pid)
	if len(pi.Addrs) == 0 {
		return "", joinErr(http.StatusBadGateway, clientapi.CodeUnavailable, "no address known for server %v: connect the servers first (p2p.bootstrap)", v)
	}
	if err := h.Connect(ctx, pi); err != nil {
		return "", joinErr(http.StatusBadGateway, clientapi.CodeUnavailable, "server %v did not answer: %v", v, err)
	}
	return pid, nil
}

// viaErr explains why server v did not serve room.
func viaErr(room dag.RoomID, v dag.ServerID, err error) error {
	var re *p2p.RefusedError
	if errors.As(err, &re) {
		switch re.Status {
		case p2p.StatusForbidden:
			return joinErr(http.StatusForbidden, clientapi.CodeForbidden, "server %v does not list this server in room %v: ask a member to add this server to the room", v, room)
		case p2p.StatusUnknownRoom:
			return joinErr(http.StatusNotFound, clientapi.CodeNotFound, "server %v holds no room %v", v, room)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return joinErr(http.StatusGatewayTimeout, clientapi.CodeUnavailable, "server %v did not answer about room %v in time", v, room)
	}
	return joinErr(http.StatusBadGateway, clientapi.CodeUnavailable, "server %v did not serve room %v: %v", v, room, err)
}

// fetch gets the room's create event and the events extra from server v
// (each verified by the mesh: decoding, room, ID asked, signature) and
// checks the create event as ingest would (docs/api.md, "What the server
// checks"). It returns the create event, the room's initial state, and the
// extra events found.
func (j *joins) fetch(ctx context.Context, v dag.ServerID, room dag.RoomID, extra ...dag.EventID) (*dag.Event, *roomstate.State, map[dag.EventID]*dag.Event, error) {
	pid, err := j.connect(ctx, v)
	if err != nil {
		return nil, nil, nil, err
	}
	var evs []*dag.Event
	err = retryTransient(ctx, func() (err error) {
		evs, err = j.n.mesh.GetEvents(ctx, pid, room, append([]dag.EventID{room.CreateID()}, extra...))
		return err
	})
	if err != nil {
		return nil, nil, nil, viaErr(room, v, err)
	}
	got := map[dag.EventID]*dag.Event{}
	for _, ev := range evs {
		got[ev.ID()] = ev
	}
	create := got[room.CreateID()]
	if create == nil || create.Kind != dag.KindCreate {
		return nil, nil, nil, joinErr(http.StatusBadGateway, clientapi.CodeUnavailable, "server %v did not serve the create event of room %v", v, room)
	}
	initial, err := engine.InitialState(create)
	if err != nil {
		return nil, nil, nil, joinErr(http.StatusBadGateway, clientapi.CodeUnavailable, "the create event of room %v from server %v does not verify: %v", room, v, err)
	}
	return create, initial, got, nil
}

// sweepLoop checks the awaiting rooms periodically.
func (j *joins) sweepLoop(ctx context.Context) {
	t := time.NewTicker(min(max(j.grace/10, 50*time.Millisecond), 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			j.sweep(j.n.now())
		}
	}
}

// sweep settles the awaiting rooms at now: one that has gained a local
// participant is kept for good; one whose grace period has passed without
// one is left and its events purged.
func (j *joins) sweep(now time.Time) {
	j.mu.Lock()
	rooms := make(map[dag.RoomID]awaitingRoom, len(j.awaiting))
	for id, a := range j.awaiting {
		// A room still being joined is reserved before it is recorded:
		// not "left by an operator", and its slot stays taken.
		if _, busy := j.inFlight[id]; !busy {
			rooms[id] = a
		}
	}
	j.mu.Unlock()
	for id, a := range rooms {
		st, joined := j.n.rooms.state(id)
		switch {
		case !joined:
			j.unreserve(id) // left by an operator
		case st != nil && j.n.hasLocalParticipant(st):
			if err := j.settle(id); err != nil {
				j.log.Error("record room's local participant", "room", id, "err", err)
				continue
			}
			j.unreserve(id)
			j.log.Info("joined room has a local participant", "room", id)
		case now.Sub(a.since) >= j.grace:
			if err := j.n.rooms.purge(id); err != nil {
				j.log.Error("purge room without a local participant", "room", id, "err", err)
				continue
			}
			j.unreserve(id)
			j.metric.WithLabelValues(a.how, joinPurged).Inc()
			j.log.Info("left and purged room: no participant of this server joined it in time", "room", id, "via", a.via, "grace", j.grace)
		}
	}
}

// settle clears a room's awaiting mark in its record.
func (j *joins) settle(room dag.RoomID) error {
	recs, err := j.n.local.Rooms()
	if err != nil {
		return err
	}
	rec, ok := recs[room]
	if !ok {
		return nil
	}
	rec.Pending = false
	_, err = j.n.local.SetRoom(room, rec)
	return err
}

// hasLocalParticipant reports whether a registered user of this server
// takes part in the room (any role but banned or knocking). A database
// failure counts as yes: the room is kept.
func (n *Node) hasLocalParticipant(st *roomstate.State) bool {
	for _, p := range st.Participants() {
		if p.Role == roomstate.RoleBanned || p.Role == roomstate.RoleKnocking {
			continue
		}
		name, ok := n.accounts.LocalUser(string(p.User))
		if !ok {
			continue
		}
		found, err := n.accounts.Exists(name)
		if err != nil {
			n.log.Error("look up a room's local participant", "sys", "joins", "user", p.User, "err", err)
			return true
		}
		if found {
			return true
		}
	}
	return false
}
