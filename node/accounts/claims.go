package accounts

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/node/internal/ratelimit"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// KeyPackage claim limits (docs/api.md, "POST /v1/keypackages/claim"):
// token buckets per requesting user, per requesting server and per target
// user.
var (
	ClaimUserRate   = ratelimit.Rate{PerMinute: 10, Burst: 20}
	ClaimServerRate = ratelimit.Rate{PerMinute: 60, Burst: 60}
	ClaimTargetRate = ratelimit.Rate{PerMinute: 15, Burst: 30}
)

// Claim outcomes, the label of rhizome_keypackage_claims_total.
const (
	ClaimOneTime    = "one-time"    // at least one one-time KeyPackage handed out
	ClaimLastResort = "last-resort" // last-resort KeyPackages only
	ClaimNone       = "none"        // unknown user, or nothing left or compatible
	ClaimRefused    = "refused"     // over a limit, or a requester its server cannot vouch for
)

// ClaimRefusal is a refused claim. Over p2p it answers with its
// DirectoryError; on the client API with status and Retry-After.
type ClaimRefusal struct {
	dir    *p2p.DirectoryError
	status int           // HTTP status for the client API
	retry  time.Duration // 0: no Retry-After
}

func (e *ClaimRefusal) Error() string { return e.dir.Error() }

// Unwrap returns the directory refusal, which the directory protocol sends.
func (e *ClaimRefusal) Unwrap() error { return e.dir }

// APIError is the refusal as the client API answers it.
func (e *ClaimRefusal) APIError() *apierror.Error {
	code := clientapi.CodeBadRequest
	if e.status == http.StatusTooManyRequests {
		code = clientapi.CodeRateLimited
	}
	ae := apierror.New(e.status, code, "%s", e.dir.Message)
	ae.RetryAfter = e.retry
	return ae
}

// RoomIndex is what the claim limits need to know of the rooms this node
// takes part in.
type RoomIndex interface {
	// ServersOfDomain returns the servers that rooms' states list for
	// domain.
	ServersOfDomain(domain string) []dag.ServerID
	// ShareRoom reports whether a and b both take part in a room whose
	// state this node holds.
	ShareRoom(a, b roomstate.URI) bool
}

// claimGuard decides what a KeyPackage claim may get: who may claim, how
// often, and whether one-time KeyPackages are handed out (consent) or only
// last-resort ones. It never makes the node join a room.
type claimGuard struct {
	log      *slog.Logger
	self     dag.ServerID
	rooms    RoomIndex
	accounts *Store

	byUser, byServer, byTarget *ratelimit.Buckets
	outcomes                   *prometheus.CounterVec
}

func newClaimGuard(log *slog.Logger, self dag.ServerID, rs RoomIndex, a *Store, reg prometheus.Registerer) *claimGuard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &claimGuard{
		log: log.With("sys", "claims"), self: self, rooms: rs, accounts: a,
		byUser:   ratelimit.New("claim_user", ClaimUserRate),
		byServer: ratelimit.New("claim_server", ClaimServerRate),
		byTarget: ratelimit.New("claim_target", ClaimTargetRate),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "keypackage_claims_total",
			Help: "KeyPackage claims answered or refused by this node, by outcome (one-time, last-resort, none, refused).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(g.outcomes)
	return g
}

func refusal(status p2p.DirectoryStatus, httpStatus int, retry time.Duration, format string, args ...any) *ClaimRefusal {
	return &ClaimRefusal{dir: &p2p.DirectoryError{Status: status, Message: fmt.Sprintf(format, args...)}, status: httpStatus, retry: retry}
}

// LimitClaims takes a token of a local user's claim bucket, for a claim
// the user makes through the client API (local or remote); it returns a
// *ClaimRefusal when the user is over its limit.
func (a *Store) LimitClaims(requester string) error { return a.claims.limitRequester(requester) }

// RecordClaim logs and counts the outcome of a claim the client API
// answered without asking ClaimKeyPackages.
func (a *Store) RecordClaim(q p2p.KeyPackageQuery, outcome string, err error) {
	a.claims.record(q, outcome, err)
}

// limitRequester takes a token of a local user's claim bucket (any claim
// the user makes, local or remote).
func (g *claimGuard) limitRequester(requester string) error {
	if ok, retry := g.byUser.Take(requester, g.accounts.now()); !ok {
		return refusal(p2p.DirectoryRateLimited, http.StatusTooManyRequests, retry,
			"too many KeyPackage claims by %s (limit %s); retry in %v", requester, g.byUser.Describe(), retry.Round(time.Second))
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
		if ok, retry := g.byServer.Take(q.Requester.String(), g.accounts.now()); !ok {
			return false, refusal(p2p.DirectoryRateLimited, http.StatusTooManyRequests, retry, "KeyPackage claim rate of the requesting server exceeded")
		}
		verified = slices.Contains(g.rooms.ServersOfDomain(requester.Domain()), q.Requester)
		if verified {
			if err := g.limitRequester(string(requester)); err != nil {
				return false, err
			}
		}
	}
	if ok, retry := g.byTarget.Take(target, g.accounts.now()); !ok {
		return false, refusal(p2p.DirectoryRateLimited, http.StatusTooManyRequests, retry,
			"too many KeyPackage claims for %s (limit %s); retry in %v", target, g.byTarget.Describe(), retry.Round(time.Second))
	}
	if !verified {
		return false, nil
	}
	if string(requester) == target {
		return true, nil // a user adding its own devices
	}
	if g.rooms.ShareRoom(requester, roomstate.URI(target)) {
		return true, nil
	}
	name, _ := g.accounts.LocalUser(target)
	return g.accounts.Consented(name, string(requester))
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

// Exists reports whether a local user is registered.
func (a *Store) Exists(name string) (bool, error) {
	found := false
	err := a.db.View(func(txn *badger.Txn) error {
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
