package room

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
)

// BenchmarkRoomStep measures events per second through the engine alone
// (no store, no network): application messages (authorization in their
// epoch, the observer's epoch check) and commits with an UpdatePath (the
// MLS external observer's verification, room policy, the ordering
// machine), in a room of two members.
func BenchmarkRoomStep(b *testing.B) {
	b.Run("message", func(b *testing.B) {
		k := newKit(b)
		e1 := k.addBob()
		alice := k.users["alice"]
		evs := make([]*dag.Event, b.N)
		for i := range evs {
			msg, err := alice.g.Send(rand.Reader, nil, []byte("hello"))
			if err != nil {
				b.Fatal(err)
			}
			raw, _ := msg.Marshal()
			content, _ := (&roomevent.Message{Sender: roomevent.Sender{User: alice.user, Client: alice.device}, Epoch: e1, Message: raw}).Marshal()
			evs[i] = k.sign("a.test", k.room, dag.KindMessage, []dag.EventID{e1}, content)
		}
		stepAll(b, k, evs)
	})
	b.Run("commit", func(b *testing.B) {
		k := newKit(b)
		parent := k.addBob()
		alice := k.users["alice"]
		evs := make([]*dag.Event, b.N)
		for i := range evs {
			ev, pc := k.commitEvent(commitSpec{by: "alice", parent: parent})
			if err := alice.g.MergeCommit(pc, ev.ID().Bytes(), time.Now()); err != nil {
				b.Fatal(err)
			}
			evs[i], parent = ev, ev.ID()
		}
		stepAll(b, k, evs)
	})
}

// stepAll times stepping evs one by one, each accepted, and reports
// events per second.
func stepAll(b *testing.B, k *kit, evs []*dag.Event) {
	b.ReportAllocs()
	b.ResetTimer()
	for _, ev := range evs {
		k.e.Step(ev)
		if rd := k.e.Ready(); len(rd.Rejected) > 0 {
			b.Fatal(rd.Rejected[0].Err)
		}
		k.e.Advance()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
