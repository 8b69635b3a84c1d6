package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// KeyPackage claim limits (docs/api.md, "POST /v1/keypackages/claim"):
// token buckets per requesting user, per requesting server and per target
// user.
var (
	claimUserRate   = Rate{PerMinute: 10, Burst: 20}
	claimServerRate = Rate{PerMinute: 60, Burst: 60}
	claimTargetRate = Rate{PerMinute: 15, Burst: 30}
)

// Claim outcomes, the label of rhizome_keypackage_claims_total.
const (
	claimOneTime    = "one-time"    // at least one one-time KeyPackage handed out
	claimLastResort = "last-resort" // last-resort KeyPackages only
	claimNone       = "none"        // unknown user, or nothing left or compatible
	claimRefused    = "refused"     // over a limit, or a requester its server cannot vouch for
)

// claimRefusal is a refused claim. Over p2p it answers with its
// DirectoryError; on the client API with status and Retry-After.
type claimRefusal struct {
	dir    *p2p.DirectoryError
	status int           // HTTP status for the client API
	retry  time.Duration // 0: no Retry-After
}

func (e *claimRefusal) Error() string { return e.dir.Error() }

// Unwrap returns the directory refusal, which the directory protocol sends.
func (e *claimRefusal) Unwrap() error { return e.dir }

// apiError is the refusal as the client API answers it.
func (e *claimRefusal) apiError(w http.ResponseWriter) error {
	if e.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.retry.Seconds())+1))
	}
	code := clientapi.CodeBadRequest
	if e.status == http.StatusTooManyRequests {
		code = clientapi.CodeRateLimited
	}
	return apiErr(e.status, code, "%s", e.dir.Message)
}

// claimGuard decides what a KeyPackage claim may get: who may claim, how
// often, and whether one-time KeyPackages are handed out (consent) or only
// last-resort ones. It never makes the node join a room.
type claimGuard struct {
	log      *slog.Logger
	self     dag.ServerID
	rooms    *rooms
	accounts *accounts

	byUser, byServer, byTarget *buckets
	outcomes                   *prometheus.CounterVec
}

func newClaimGuard(log *slog.Logger, self dag.ServerID, rs *rooms, a *accounts, reg prometheus.Registerer) *claimGuard {
	g := &claimGuard{
		log: log.With("sys", "claims"), self: self, rooms: rs, accounts: a,
		byUser:   newBuckets("claim_user", claimUserRate),
		byServer: newBuckets("claim_server", claimServerRate),
		byTarget: newBuckets("claim_target", claimTargetRate),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "keypackage_claims_total",
			Help: "KeyPackage claims answered or refused by this node, by outcome (one-time, last-resort, none, refused).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(g.outcomes)
	return g
}

func refusal(status p2p.DirectoryStatus, httpStatus int, retry time.Duration, format string, args ...any) *claimRefusal {
	return &claimRefusal{dir: &p2p.DirectoryError{Status: status, Message: fmt.Sprintf(format, args...)}, status: httpStatus, retry: retry}
}

// limitRequester takes a token of a local user's claim bucket (any claim
// the user makes, local or remote).
func (g *claimGuard) limitRequester(requester string) error {
	if ok, retry := g.byUser.take(requester, time.Now()); !ok {
		return refusal(p2p.DirectoryRateLimited, http.StatusTooManyRequests, retry,
			"too many KeyPackage claims by %s (limit %s); retry in %v", requester, g.byUser.describe(), retry.Round(time.Second))
	}
	return nil
}

// admit checks a claim for target's KeyPackages and reports whether
// one-time KeyPackages may be handed out. A claim from another server takes
// a token of the requesting server's and the target's buckets. Its
// requesting user counts (for consent, a shared room and its own bucket)
// only when the server serves that user's domain in a room this node knows,
// since a server vouches only for its own users; an unverified requester
// (a first contact: the invitation that will list both servers is not here
// yet) is a stranger and gets last-resort KeyPackages only.
func (g *claimGuard) admit(q p2p.KeyPackageQuery, target string) (oneTime bool, err error) {
	requester := roomstate.URI(q.RequestingUser)
	verified := true // a local claim names the device's own user
	if q.Requester != g.self {
		if !roomstate.ValidUserURI(requester) {
			return false, refusal(p2p.DirectoryBadRequest, http.StatusBadRequest, 0, "requesting user %q is not a user URI", q.RequestingUser)
		}
		if ok, retry := g.byServer.take(q.Requester.String(), time.Now()); !ok {
			return false, refusal(p2p.DirectoryRateLimited, http.StatusTooManyRequests, retry, "KeyPackage claim rate of the requesting server exceeded")
		}
		verified = slices.Contains(g.rooms.serversOfDomain(requester.Domain()), q.Requester)
		if verified {
			if err := g.limitRequester(string(requester)); err != nil {
				return false, err
			}
		}
	}
	if ok, retry := g.byTarget.take(target, time.Now()); !ok {
		return false, refusal(p2p.DirectoryRateLimited, http.StatusTooManyRequests, retry,
			"too many KeyPackage claims for %s (limit %s); retry in %v", target, g.byTarget.describe(), retry.Round(time.Second))
	}
	if !verified {
		return false, nil
	}
	if string(requester) == target {
		return true, nil // a user adding its own devices
	}
	if g.rooms.shareRoom(requester, roomstate.URI(target)) {
		return true, nil
	}
	name, _ := g.accounts.localUser(target)
	return g.accounts.consented(name, string(requester))
}

// record logs and counts a claim's outcome.
func (g *claimGuard) record(q p2p.KeyPackageQuery, outcome string, err error) {
	g.outcomes.WithLabelValues(outcome).Inc()
	attrs := []any{"requester", q.RequestingUser, "requester_server", q.Requester.String(), "target", q.TargetUser, "outcome", outcome}
	if len(q.Room) > 0 {
		if id, rerr := dag.EventIDFromBytes(q.Room); rerr == nil {
			attrs = append(attrs, "room", dag.RoomID(id).String())
		}
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	g.log.Info("KeyPackage claim", attrs...)
}

// shareRoom reports whether a and b both take part (any role but banned or
// knocking) in a room whose state this node holds.
func (rs *rooms) shareRoom(a, b roomstate.URI) bool {
	in := func(st *roomstate.State, u roomstate.URI) bool {
		r := st.RoleOf(u)
		return r != roomstate.RoleNone && r != roomstate.RoleBanned && r != roomstate.RoleKnocking
	}
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for _, info := range rs.m {
		if info.state != nil && in(info.state, a) && in(info.state, b) {
			return true
		}
	}
	return false
}

// exists reports whether a local user is registered.
func (a *accounts) exists(name string) (bool, error) {
	found := false
	err := a.db.view(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(pfxUser + name))
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		return nil
	})
	return found, err
}
