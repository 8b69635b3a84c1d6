package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/feed"
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
			n := startTestNode(b, b.TempDir(), "a.test")
			alice := register(b, n, "alice", "phone")
			created := must(b, 201)(alice.post("/v1/rooms", jsonObj{"preset": "private-group", "name": "Small"}))
			small, createID := str(created["room"]), str(created["event"])
			g := alice.group(n, small)
			for i := range 9 {
				alice.sendMessage(g, small, createID, fmt.Sprint("m", i))
			}
			if big > 0 {
				bc := must(b, 201)(alice.post("/v1/rooms", jsonObj{"preset": "private-group", "name": "Big"}))
				bigRoom := mustRoomID(b, str(bc["room"]))
				ev := mustEventID(b, str(bc["event"]))
				for done := 0; done < big; done += 1000 {
					batch := make([]feed.Entry, 1000)
					for i := range batch {
						batch[i] = feed.Entry{Room: bigRoom, Event: ev, Kind: dag.KindMessage}
					}
					processed, err := n.local.Processed(bigRoom)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := n.local.Append(bigRoom, processed, batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			roomID := mustRoomID(b, small)
			b.Run("stream-open", func(b *testing.B) {
				for range b.N {
					s := alice.openStream("?since=0&room=" + small)
					for range 10 {
						s.next(b, 5*time.Second)
					}
					s.body.Close()
				}
			})
			b.Run("reload", func(b *testing.B) {
				for range b.N {
					n.rooms.writeMu.Lock()
					n.rooms.reloadLocked(roomID)
					n.rooms.writeMu.Unlock()
				}
			})
		})
	}
}
