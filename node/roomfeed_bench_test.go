package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// BenchmarkSmallRoomBesideBig measures, in one node, opening a device
// stream of a small room (its create event and 9 messages, read to the
// last) and reloading that room's engine from its feed, with and without a
// big room of 100,000 feed entries beside it: the small room's cost must
// not depend on the big one (the feed is kept per room). The big room's
// entries are written to the feed directly (message entries; they are
// never read here).
func BenchmarkSmallRoomBesideBig(b *testing.B) {
	for _, big := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("big=%d", big), func(b *testing.B) {
			n := nodetest.Start(b, nodetest.Options{Dir: b.TempDir(), Name: "a.test"})
			alice := nodetest.Register(b, n, "alice", "phone")
			created := nodetest.Must(b, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Small"}))
			small, createID := nodetest.Str(created["room"]), nodetest.Str(created["event"])
			g := alice.Group(small)
			for i := range 9 {
				alice.SendMessage(g, small, createID, fmt.Sprint("m", i))
			}
			if big > 0 {
				bc := nodetest.Must(b, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Big"}))
				bigRoom := nodetest.RoomID(b, nodetest.Str(bc["room"]))
				ev := nodetest.EventID(b, nodetest.Str(bc["event"]))
				for done := 0; done < big; done += 1000 {
					batch := make([]feed.Entry, 1000)
					for i := range batch {
						batch[i] = feed.Entry{Room: bigRoom, Event: ev, Kind: dag.KindMessage}
					}
					processed, err := n.Local().Processed(bigRoom)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := n.Local().Append(bigRoom, processed, batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			roomID := nodetest.RoomID(b, small)
			b.Run("stream-open", func(b *testing.B) {
				for range b.N {
					s := alice.OpenStream("?since=0&room=" + small)
					for range 10 {
						s.Next(b, 5*time.Second)
					}
					s.Close()
				}
			})
			b.Run("reload", func(b *testing.B) {
				for range b.N {
					n.Rooms().WriteMu().Lock()
					n.Rooms().ReloadLocked(roomID)
					n.Rooms().WriteMu().Unlock()
				}
			})
		})
	}
}
