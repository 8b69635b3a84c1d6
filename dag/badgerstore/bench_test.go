package badgerstore

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// benchRooms returns the wire bytes of about n events with 1 KiB of content,
// spread over 4 rooms with forks and merges, interleaved room by room in
// creation order, and the rooms' create events (stored before the clock).
func benchRooms(b *testing.B, n int) (creates []*dag.Event, wire [][]byte) {
	b.Helper()
	const rooms = 4
	rng := rand.New(rand.NewPCG(1, 2))
	var all [][]*dag.Event
	for r := range rooms {
		events, err := dagtest.RandomDAG(rng, n/rooms+2, 1024, []ed25519Key{dagtest.Key(byte(70 + r)), dagtest.Key(byte(80 + r))})
		if err != nil {
			b.Fatal(err)
		}
		creates = append(creates, events[0])
		all = append(all, events[1:])
	}
	for i := 0; len(wire) < n; i++ {
		for _, events := range all {
			wire = append(wire, events[i].Bytes())
		}
	}
	return creates, wire[:n]
}

// verifyRate measures pure parallel signature verification of the same kind
// of events, in events per second, for comparison in the same run.
func verifyRate(b *testing.B, wire [][]byte) float64 {
	n := min(len(wire), 20000)
	events := make([]*dag.Event, n)
	for i := range events {
		e, err := dag.Decode(wire[i])
		if err != nil {
			b.Fatal(err)
		}
		events[i] = e
	}
	var next atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := events[i].Verify(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for range runtime.GOMAXPROCS(0) {
		<-done
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkIngest measures the whole receive path for 1 KiB events: decode,
// validate (structure, signature, room and parents against the store), and a
// durable Put (group commit, fsync before return), with parallel producers.
// It reports events/s, the pure verification rate measured in the same run,
// and their ratio (target: >= 20,000 events/s and >= 0.6).
func BenchmarkIngest(b *testing.B) {
	creates, wire := benchRooms(b, b.N)
	s, err := Open(b.TempDir(), Options{Limits: dag.Limits{PendingPerRoom: b.N + 1, PendingPerOrigin: b.N + 1}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, c := range creates {
		if _, err := s.Put(c); err != nil {
			b.Fatal(err)
		}
	}
	verify := verifyRate(b, wire)
	var next atomic.Int64
	b.SetParallelism(128) // Puts block on fsync; many producers fill each group commit
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			raw := wire[next.Add(1)-1]
			e, err := dag.Decode(raw)
			if err != nil {
				b.Error(err)
				return
			}
			if err := dag.Validate(e, s); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Put(e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(verify, "verify-events/s")
	b.ReportMetric(rate/verify, "ingest/verify")
	st := s.Stats()
	b.ReportMetric(float64(st.Puts)/float64(max(st.Syncs, 1)), "puts/fsync")
	b.ReportMetric(float64(st.SyncTime.Microseconds())/float64(max(st.Syncs, 1)), "µs/fsync")
}
