package p2p_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/badgerstore"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// TestPartitionHeal splits 10 servers into groups, keeps every side sending
// while split, heals the links, and requires every server to end with the
// identical event set: everything sent on any side, nothing lost, nothing
// pending, within a bounded (virtual) time. The meshes reconnect and pull by
// themselves; the test only relinks the mocknet.
func TestPartitionHeal(t *testing.T) {
	tests := []struct {
		name   string
		groups [][]int
	}{
		{"5/5", [][]int{{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}}},
		{"3/3/4", [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8, 9}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				runPartition(t, uint64(100+i), tt.groups)
			})
		})
	}
}

func runPartition(t *testing.T, seed uint64, groups [][]int) {
	const (
		perSide      = 30 // events sent on each side during the partition
		healDeadline = 60 * time.Second
	)
	nw := p2ptest.New(t, 10, p2ptest.Options{Seed: seed, Latency: 10 * time.Millisecond})
	defer nw.Close()
	room := nw.CreateRoom(0)
	sent := []dag.EventID{room.CreateID()}
	if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
		t.Fatalf("create: %v", err)
	}
	for i := range 10 {
		sent = append(sent, nw.Send(i, room).ID())
	}
	if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
		t.Fatalf("before partition: %v", err)
	}

	nw.Partition(groups...)
	time.Sleep(time.Second)
	for k := range perSide {
		for _, g := range groups {
			sender := g[k%len(g)]
			sent = append(sent, nw.Send(sender, room).ID())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Each side converges on its own events while split...
	for gi, g := range groups {
		ids, err := p2ptest.EventIDs(nw.Nodes[g[0]].Store, room)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nw.WaitConverged(room, ids, 30*time.Second, g...); err != nil {
			t.Fatalf("side %d while split: %v", gi, err)
		}
		// ...and none of them holds all events yet.
		if len(ids) >= len(sent) {
			t.Fatalf("side %d holds %d of %d events while split: the partition leaked", gi, len(ids), len(sent))
		}
	}

	// Stay split well past gossip's message cache (5 heartbeats), so that
	// whatever crosses after the heal crosses through sync.
	time.Sleep(10 * time.Second)
	nw.Heal()
	took, err := nw.WaitConverged(room, sent, healDeadline)
	if err != nil {
		t.Fatalf("after heal: %v", err)
	}
	// One more event after the heal reaches everyone too.
	sent = append(sent, nw.Send(9, room).ID())
	if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
		t.Fatalf("after heal, new event: %v", err)
	}
	ids, _ := p2ptest.EventIDs(nw.Nodes[0].Store, room)
	t.Logf("groups %v: %d events, all 10 servers identical (digest %s), converged %v (virtual) after heal",
		fmt.Sprint(groups), len(ids), p2ptest.Digest(ids), took)
}

// TestPartitionHealBadger runs a smaller partition and heal on the durable
// store (badger in temporary directories, fsync on every batch) in real
// time, to show the transport against the store the node runs.
func TestPartitionHealBadger(t *testing.T) {
	dir := t.TempDir()
	nw := p2ptest.New(t, 4, p2ptest.Options{Seed: 300, NewStore: func(i int) (dag.Store, error) {
		return badgerstore.Open(filepath.Join(dir, fmt.Sprint(i)), badgerstore.Options{CacheMiB: 16})
	}})
	defer nw.Close()
	room := nw.CreateRoom(0)
	sent := []dag.EventID{room.CreateID()}
	if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	nw.Partition([]int{0, 1}, []int{2, 3})
	for k := range 10 {
		sent = append(sent, nw.Send(k%2, room).ID(), nw.Send(2+k%2, room).ID())
	}
	time.Sleep(500 * time.Millisecond)
	nw.Heal()
	took, err := nw.WaitConverged(room, sent, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("badger stores: %d events identical on 4 servers %v after heal", len(sent), took)
}
