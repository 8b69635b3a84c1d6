package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/p2p"
)

// TestJoinBounds hits the join bounds that the flood tests do not: joins
// in flight, joins of one room at once, rooms awaiting a local
// participant (in total and per server), and via servers per join.
func TestJoinBounds(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	j := n.Joins()
	status := func(err error) int {
		var je *node.JoinError
		if !errors.As(err, &je) {
			t.Fatalf("error %v is not a join error", err)
		}
		return je.Status()
	}
	var rooms []dag.RoomID
	for range node.MaxJoinsInFlight {
		room := randomRoomID(t)
		if _, err := j.Begin(room); err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, room)
	}
	if _, err := j.Begin(randomRoomID(t)); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("join %d in flight: %v, want 503", node.MaxJoinsInFlight+1, err)
	}
	wait, err := j.Begin(rooms[0])
	if wait == nil || status(err) != http.StatusServiceUnavailable {
		t.Fatalf("second join of a room in flight: %v, want a wait and 503", err)
	}
	j.End(rooms[0])
	select {
	case <-wait:
	default:
		t.Fatal("the waiter was not told that the join ended")
	}
	for _, r := range rooms[1:] {
		j.End(r)
	}

	via := func(i int) dag.ServerID { return dag.ServerID{byte(i), byte(i >> 8), 1} }
	for range node.MaxAwaitingPerServer {
		if err := j.Reserve(randomRoomID(t), feed.JoinedInvite, via(0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Reserve(randomRoomID(t), feed.JoinedInvite, via(0)); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("awaiting room %d through one server: %v, want 503", node.MaxAwaitingPerServer+1, err)
	}
	for i := 1; j.AwaitingCount() < node.MaxAwaiting; i++ {
		if err := j.Reserve(randomRoomID(t), feed.JoinedAPI, via(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Reserve(randomRoomID(t), feed.JoinedAPI, via(9999)); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("awaiting room %d: %v, want 503", node.MaxAwaiting+1, err)
	}

	alice := nodetest.Register(t, n, "alice", "phone")
	vias := make([]string, node.MaxVia+1)
	for i := range vias {
		vias[i] = randomServerHex()
	}
	nodetest.Must(t, 400)(alice.Post("/v1/rooms/"+randomRoomID(t).String()+"/join", nodetest.JSON{"via": vias}))
}

// TestSweepKeepsJoinsInFlight: a room reserved by a join still being
// verified is not recorded yet; the sweeper must not take it for one an
// operator left and free its slot (two concurrent invites then exceeded
// the per-server bound under the race detector).
func TestSweepKeepsJoinsInFlight(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	j := n.Joins()
	via := dag.ServerID{7, 7, 7}
	room := randomRoomID(t)
	if _, err := j.Begin(room); err != nil {
		t.Fatal(err)
	}
	if err := j.Reserve(room, feed.JoinedInvite, via); err != nil {
		t.Fatal(err)
	}
	j.Sweep(time.Now())
	if got := j.AwaitingCount(); got != 1 {
		t.Fatalf("after a sweep during the join: %d awaiting rooms, want 1", got)
	}
	j.End(room) // the join failed and was not recorded
	j.Sweep(time.Now())
	if got := j.AwaitingCount(); got != 0 {
		t.Fatalf("after the join ended unrecorded: %d awaiting rooms, want 0", got)
	}
}

// TestClaimServerLimit: a server claiming for many users and targets is
// held to its own bucket.
func TestClaimServerLimit(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	alice := nodetest.Register(t, n, "alice", "phone")
	remote := dag.ServerID{7}
	nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group",
		"servers": []nodetest.JSON{{"server_id": remote.String(), "domain": "x.test"}}}))
	refused := 0
	for i := range accounts.ClaimServerRate.Burst + 1 {
		q := p2p.KeyPackageQuery{Requester: remote, KeyPackageRequest: p2p.KeyPackageRequest{
			Protocol: p2p.MLS10, RequestingUser: fmt.Sprintf("mimi://x.test/u/u%d", i), TargetUser: fmt.Sprintf("mimi://a.test/u/t%d", i)}}
		if _, err := n.Accounts().ClaimKeyPackages(context.Background(), q); err != nil {
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
	nodetest.Register(t, n, "bob", "phone")
	for i := range accounts.MaxConsents {
		if err := n.Accounts().Allow("bob", fmt.Sprintf("mimi://x.test/u/u%d", i), time.Now().UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	var ae *apierror.Error
	if err := n.Accounts().Allow("bob", "mimi://x.test/u/one-more", time.Now().UnixMilli()); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("consent %d: %v, want 409", accounts.MaxConsents+1, err)
	}
	if ok, err := n.Accounts().Consented("bob", "mimi://x.test/u/u0"); !ok || err != nil {
		t.Fatalf("an allowed user is not consented (%v)", err)
	}
}
