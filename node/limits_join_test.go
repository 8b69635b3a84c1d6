package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/p2p"
)

// TestJoinBounds hits the join bounds that the flood tests do not: joins
// in flight, joins of one room at once, rooms awaiting a local
// participant (in total and per server), and via servers per join.
func TestJoinBounds(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	j := n.joins
	status := func(err error) int {
		var je *joinError
		if !errors.As(err, &je) {
			t.Fatalf("error %v is not a join error", err)
		}
		return je.status
	}
	var rooms []dag.RoomID
	for range maxJoinsInFlight {
		room := randomRoomID(t)
		if _, err := j.begin(room); err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, room)
	}
	if _, err := j.begin(randomRoomID(t)); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("join %d in flight: %v, want 503", maxJoinsInFlight+1, err)
	}
	wait, err := j.begin(rooms[0])
	if wait == nil || status(err) != http.StatusServiceUnavailable {
		t.Fatalf("second join of a room in flight: %v, want a wait and 503", err)
	}
	j.end(rooms[0])
	select {
	case <-wait:
	default:
		t.Fatal("the waiter was not told that the join ended")
	}
	for _, r := range rooms[1:] {
		j.end(r)
	}

	via := func(i int) dag.ServerID { return dag.ServerID{byte(i), byte(i >> 8), 1} }
	for range maxAwaitingPerServer {
		if err := j.reserve(randomRoomID(t), feed.JoinedInvite, via(0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.reserve(randomRoomID(t), feed.JoinedInvite, via(0)); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("awaiting room %d through one server: %v, want 503", maxAwaitingPerServer+1, err)
	}
	for i := 1; j.awaitingCount() < maxAwaiting; i++ {
		if err := j.reserve(randomRoomID(t), feed.JoinedAPI, via(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.reserve(randomRoomID(t), feed.JoinedAPI, via(9999)); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("awaiting room %d: %v, want 503", maxAwaiting+1, err)
	}

	alice := register(t, n, "alice", "phone")
	vias := make([]string, maxVia+1)
	for i := range vias {
		vias[i] = randomServerHex()
	}
	must(t, 400)(alice.post("/v1/rooms/"+randomRoomID(t).String()+"/join", jsonObj{"via": vias}))
}

// TestSweepKeepsJoinsInFlight: a room reserved by a join still being
// verified is not recorded yet; the sweeper must not take it for one an
// operator left and free its slot (two concurrent invites then exceeded
// the per-server bound under the race detector).
func TestSweepKeepsJoinsInFlight(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	j := n.joins
	via := dag.ServerID{7, 7, 7}
	room := randomRoomID(t)
	if _, err := j.begin(room); err != nil {
		t.Fatal(err)
	}
	if err := j.reserve(room, feed.JoinedInvite, via); err != nil {
		t.Fatal(err)
	}
	j.sweep(time.Now())
	if got := j.awaitingCount(); got != 1 {
		t.Fatalf("after a sweep during the join: %d awaiting rooms, want 1", got)
	}
	j.end(room) // the join failed and was not recorded
	j.sweep(time.Now())
	if got := j.awaitingCount(); got != 0 {
		t.Fatalf("after the join ended unrecorded: %d awaiting rooms, want 0", got)
	}
}

// TestClaimServerLimit: a server claiming for many users and targets is
// held to its own bucket.
func TestClaimServerLimit(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	alice := register(t, n, "alice", "phone")
	remote := dag.ServerID{7}
	must(t, 201)(alice.post("/v1/rooms", jsonObj{"preset": "private-group",
		"servers": []jsonObj{{"server_id": remote.String(), "domain": "x.test"}}}))
	refused := 0
	for i := range accounts.ClaimServerRate.Burst + 1 {
		q := p2p.KeyPackageQuery{Requester: remote, KeyPackageRequest: p2p.KeyPackageRequest{
			Protocol: p2p.MLS10, RequestingUser: fmt.Sprintf("mimi://x.test/u/u%d", i), TargetUser: fmt.Sprintf("mimi://a.test/u/t%d", i)}}
		if _, err := n.accounts.ClaimKeyPackages(context.Background(), q); err != nil {
			var cr *accounts.ClaimRefusal
			var de *p2p.DirectoryError
			if !errors.As(err, &cr) || !errors.As(err, &de) || de.Status != p2p.DirectoryRateLimited {
				t.Fatalf("claim %d: %v", i, err)
			}
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d claims refused, want 1 (the one over the server's burst of %d)", refused, accounts.ClaimServerRate.Burst)
	}
}

// TestConsentBound: a user allows at most accounts.MaxConsents users.
func TestConsentBound(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	register(t, n, "bob", "phone")
	for i := range accounts.MaxConsents {
		if err := n.accounts.Allow("bob", fmt.Sprintf("mimi://x.test/u/u%d", i), time.Now().UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	var ae *apierror.Error
	if err := n.accounts.Allow("bob", "mimi://x.test/u/one-more", time.Now().UnixMilli()); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("consent %d: %v, want 409", accounts.MaxConsents+1, err)
	}
	if ok, err := n.accounts.Consented("bob", "mimi://x.test/u/u0"); !ok || err != nil {
		t.Fatalf("an allowed user is not consented (%v)", err)
	}
}

// TestInviteQueueBound: notices beyond the queue are dropped and counted,
// never queued without bound.
func TestInviteQueueBound(t *testing.T) {
	n := &Node{metrics: NewMetrics()}
	iv := newInviter(n, slog.New(slog.DiscardHandler))
	for range inviteQueue + 1 {
		iv.enqueue(inviteJob{room: randomRoomID(t)})
	}
	if got := counter(t, n.metrics.Registry, "rhizome_invite_notices_total", map[string]string{"outcome": "dropped"}); got != 1 {
		t.Fatalf("dropped notices counted: %v, want 1", got)
	}
}
