package badgerstore

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// benchRooms returns the wire bytes of n events with 1 KiB of content,
// spread over the given number of rooms with forks and merges, interleaved
// room by room in creation order, and the rooms' create events (stored
// before the clock starts).
func benchRooms(b *testing.B, n, rooms int) (creates []*dag.Event, wire [][]byte) {
	b.Helper()
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

// cpuTime returns the CPU time (user and system) the process has used. Under
// a loaded machine, CPU time per event is a steadier figure than wall rate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// verifyRate measures pure parallel signature verification of the same kind
// of events, in events per second, for comparison in the same run.
func verifyRate(b *testing.B, wire [][]byte) (rate float64, cpuPerEvent time.Duration) {
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
	start, cpu0 := time.Now(), cpuTime()
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
	return float64(n) / time.Since(start).Seconds(), (cpuTime() - cpu0) / time.Duration(n)
}

// BenchmarkIngest measures the whole receive path for 1 KiB events: decode,
// validate (structure, signature, room and parents against the store), and a
// durable Put (group commit, fsync before return), with 256 parallel
// producers. It reports events/s, the pure verification rate measured in the
// same run, and their ratio (target: >= 20,000 events/s and >= 0.6), and CPU
// time per event, which is steadier than rates on a shared machine.
//
// With 4 rooms, consecutive events are parent and child, so concurrent
// producers deliver many children before their parents (pending churn); with
// 256 rooms, as on a server with many rooms, few events wait.
func BenchmarkIngest(b *testing.B) {
	for _, rooms := range []int{4, 256} {
		b.Run(fmt.Sprintf("rooms=%d", rooms), func(b *testing.B) { benchIngest(b, rooms) })
	}
}

func benchIngest(b *testing.B, rooms int) {
	creates, wire := benchRooms(b, b.N, rooms)
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
	verify, verifyCPU := verifyRate(b, wire)
	var next, pending atomic.Int64
	b.SetParallelism(128) // Puts block on fsync; many producers fill each group commit
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
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
			res, err := s.Put(e)
			if err != nil {
				b.Error(err)
				return
			}
			if res.Status == dag.StatusPending {
				pending.Add(1)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(pending.Load())/float64(b.N), "pending/event")
	cpu := (cpuTime() - cpu0) / time.Duration(b.N)
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(float64(cpu.Microseconds()), "cpu-µs/event")
	b.ReportMetric(float64(verifyCPU.Microseconds()), "verify-cpu-µs/event")
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(verify, "verify-events/s")
	b.ReportMetric(rate/verify, "ingest/verify")
	st := s.Stats()
	b.ReportMetric(float64(st.Puts)/float64(max(st.Syncs, 1)), "puts/fsync")
	b.ReportMetric(float64(st.SyncTime.Microseconds())/float64(max(st.Syncs, 1)), "µs/fsync")
}

// BenchmarkPut measures the store alone: durable Puts of decoded 1 KiB
// events (no signature check), with parallel producers.
func BenchmarkPut(b *testing.B) {
	creates, wire := benchRooms(b, b.N, 256)
	events := make([]*dag.Event, len(wire))
	for i, raw := range wire {
		e, err := dag.Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		events[i] = e
	}
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
	var next, pending atomic.Int64
	b.SetParallelism(128)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := s.Put(events[next.Add(1)-1])
			if err != nil {
				b.Error(err)
				return
			}
			if res.Status == dag.StatusPending {
				pending.Add(1)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(((cpuTime() - cpu0) / time.Duration(b.N)).Microseconds()), "cpu-µs/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	st := s.Stats()
	b.ReportMetric(float64(st.Puts)/float64(max(st.Syncs, 1)), "puts/fsync")
}
