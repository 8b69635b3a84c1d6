package p2p_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

func TestMeshGossipAndSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 4, p2ptest.Options{Seed: 1, Latency: 5 * time.Millisecond})
		room := nw.CreateRoom(0)
		// Server 0 holds the create event; the others pull it on join.
		if _, err := nw.WaitConverged(room, nil, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		var sent []dag.EventID
		sent = append(sent, room.CreateID())
		for i := range 20 {
			sent = append(sent, nw.Send(i%4, room).ID())
		}
		took, err := nw.WaitConverged(room, sent, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("20 events on 4 servers converged in %v (virtual)", took)
		nw.Close()
	})
}
