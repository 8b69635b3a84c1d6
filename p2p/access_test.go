package p2p_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// TestAccessControl checks that a room's events go only to the servers that
// participate in it: a non-participant's sync requests are refused with
// "forbidden", gossip does not reach it, and naming another room's events
// under a room it does participate in yields nothing.
func TestAccessControl(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 3, p2ptest.Options{Seed: 31, Latency: 2 * time.Millisecond})
		defer nw.Close()
		// Room "secret" of servers 0 and 1 only; room "open" of all three.
		open := nw.CreateRoom(0)
		create, err := dag.NewSigned(nw.Nodes[0].Key, dag.RoomID{}, dag.KindCreate, nil, 99, []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		secret := create.RoomID()
		nw.ACL.Allow(secret, nw.Nodes[0].ID, nw.Nodes[1].ID)
		if _, err := nw.Nodes[0].Store.Put(create); err != nil {
			t.Fatal(err)
		}
		for _, n := range nw.Nodes {
			if err := n.Mesh.JoinRoom(secret); err != nil { // server 2 tries too
				t.Fatal(err)
			}
		}
		want := []dag.EventID{create.ID()}
		for range 5 {
			want = append(want, nw.Send(0, secret).ID())
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := nw.WaitConverged(secret, want, 30*time.Second, 0, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := nw.WaitConverged(open, []dag.EventID{open.CreateID()}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second) // several heads rounds
		if ids, _ := p2ptest.EventIDs(nw.Nodes[2].Store, secret); len(ids) != 0 {
			t.Fatalf("non-participant holds %d events of the secret room", len(ids))
		}

		ctx := context.Background()
		outsider, owner := nw.Nodes[2].Mesh, nw.Nodes[0].PeerID()
		_, err = outsider.Heads(ctx, owner, secret)
		var re *p2p.RefusedError
		if !errors.As(err, &re) || re.Status != p2p.StatusForbidden {
			t.Fatalf("heads of the secret room: got %v, want forbidden", err)
		}
		if _, err := outsider.GetEvents(ctx, owner, secret, want); !errors.As(err, &re) || re.Status != p2p.StatusForbidden {
			t.Fatalf("get_events in the secret room: got %v, want forbidden", err)
		}
		// Asking for the secret room's events under the open room.
		got, err := outsider.GetEvents(ctx, owner, open, want)
		if err != nil || len(got) != 0 {
			t.Fatalf("secret events through the open room: %d events, err %v", len(got), err)
		}
		// A participant may fetch them; once revoked, it may not.
		got, err = nw.Nodes[1].Mesh.GetEvents(ctx, owner, secret, want)
		if err != nil || len(got) != len(want) {
			t.Fatalf("participant get_events: %d events, err %v", len(got), err)
		}
		nw.ACL.Revoke(secret, nw.Nodes[1].ID)
		if _, err := nw.Nodes[1].Mesh.Heads(ctx, owner, secret); !errors.As(err, &re) || re.Status != p2p.StatusForbidden {
			t.Fatalf("revoked participant: got %v, want forbidden", err)
		}
		nw.Close()
	})
}

// TestSyncRateLimit checks the per-peer request rate of the sync server.
func TestSyncRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 2, p2ptest.Options{Seed: 32, Configure: func(i int, cfg *p2p.Config) {
			cfg.SyncRate = p2p.Rate{PerSecond: 1, Burst: 5}
			cfg.HeadsInterval = time.Hour // no background requests
		}})
		defer nw.Close()
		room := nw.CreateRoom(0)
		time.Sleep(time.Second) // the join-time pull uses part of the burst
		var limited int
		for range 10 {
			_, err := nw.Nodes[1].Mesh.Heads(context.Background(), nw.Nodes[0].PeerID(), room)
			var re *p2p.RefusedError
			if errors.As(err, &re) && re.Status == p2p.StatusRateLimited {
				limited++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if limited < 4 {
			t.Fatalf("%d of 10 rapid requests rate limited, want at least 4 (burst 5)", limited)
		}
		nw.Close()
	})
}
