package p2p_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// TestPendingExpires: an event whose parent no server has stays pending on
// server 0 until the mesh's heads round expires it, one heads interval
// after its TTL at most; until then the mesh keeps it.
func TestPendingExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = time.Minute
		nw := p2ptest.New(t, 2, p2ptest.Options{Seed: 13, StoreLimits: dag.Limits{PendingTTL: ttl, Now: time.Now}})
		defer nw.Close()
		room := nw.CreateRoom(0)
		if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		n := nw.Nodes[1]
		lost, err := dag.NewSigned(n.Key, room, dag.KindMessage, []dag.EventID{room.CreateID()}, 100, []byte("never sent"))
		if err != nil {
			t.Fatal(err)
		}
		orphan, err := dag.NewSigned(n.Key, room, dag.KindMessage, []dag.EventID{lost.ID()}, 101, []byte("orphan"))
		if err != nil {
			t.Fatal(err)
		}
		if r, err := nw.Nodes[0].Store.Put(orphan); err != nil || r.Status != dag.StatusPending {
			t.Fatalf("put orphan: %v, %v", r.Status, err)
		}
		pending := func() int {
			ids, err := nw.Nodes[0].Store.Pending(room)
			if err != nil {
				t.Fatal(err)
			}
			return len(ids)
		}
		time.Sleep(ttl - time.Second)
		synctest.Wait()
		if pending() != 1 {
			t.Fatal("the orphan expired before its TTL")
		}
		time.Sleep(time.Second + 2500*time.Millisecond) // one heads interval (2 s) past the TTL, and a margin
		synctest.Wait()
		if pending() != 0 {
			t.Fatal("the orphan is still pending a heads interval after its TTL")
		}
	})
}
