package badgerstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
	"github.com/rhizome-chat/rhizome/p2p"
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

// verifyRates measures pure parallel signature verification of the same
// events, in events per second and CPU time per event, for comparison in
// the same run: one at a time (Event.Verify) and in chunks of batchSize
// (dag.VerifyBatch).
func verifyRates(b *testing.B, wire [][]byte) (single, batch rate) {
	n := min(len(wire), 20000)
	events := make([]*dag.Event, n)
	for i := range events {
		e, err := dag.Decode(wire[i])
		if err != nil {
			b.Fatal(err)
		}
		events[i] = e
	}
	single = parallelRate(n, 1, func(lo, hi int) {
		if err := events[lo].Verify(); err != nil {
			b.Error(err)
		}
	})
	batch = parallelRate(n, batchSize, func(lo, hi int) {
		if k, err := dag.VerifyBatch(events[lo:hi]); k >= 0 {
			b.Error(err)
		}
	})
	return single, batch
}

// rate is a throughput: events per second and CPU time per event.
type rate struct {
	perSecond float64
	cpu       time.Duration
}

// parallelRate runs work over n items in chunks of chunk on every core and
// measures the rate.
func parallelRate(n, chunk int, work func(lo, hi int)) rate {
	var next atomic.Int64
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), cpuTime()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= n {
					return
				}
				work(lo, min(lo+chunk, n))
			}
		})
	}
	wg.Wait()
	return rate{float64(n) / time.Since(start).Seconds(), (cpuTime() - cpu0) / time.Duration(n)}
}

// batchSize is the number of events a producer handles at once in batch
// mode: one sync answer's worth, and VerifyBatch's chunk.
const batchSize = 64

// BenchmarkIngest measures the whole receive path for 1 KiB events: decode,
// verify, and a durable Put, which checks the structural and room rules
// atomically with the write (group commit, fsync before return). It reports
// events/s, CPU time per event, and the pure verification rates measured in
// the same run, with the ratios ingest/verify (target: >= 20,000 events/s,
// and >= 0.6 of the verification rate).
//
// mode=sync is the path of sync answers (p2p catch-up): 16 producers each
// take 64 events at a time, verify them with dag.VerifyBatch and store them
// with one PutAll. mode=gossip is the path of gossip: 256 producers (p2p
// stores each room's gossip from its own goroutine) each take one event,
// verify it through a shared p2p.Verifier (as p2p's gossip validators do)
// and Put it. The ratios are given against both verification rates:
// ingest/verify against one-at-a-time verification (BenchmarkVerifyEvent's
// ceiling) and ingest/verify-batch against batch verification.
//
// With 4 rooms, consecutive events are parent and child, so concurrent
// producers deliver many children before their parents (pending churn); with
// 256 rooms, as on a server with many rooms, few events wait.
func BenchmarkIngest(b *testing.B) {
	for _, mode := range []string{"sync", "gossip"} {
		for _, rooms := range []int{256, 4} {
			b.Run(fmt.Sprintf("mode=%s/rooms=%d", mode, rooms), func(b *testing.B) { benchIngest(b, mode == "sync", rooms) })
		}
	}
}

func benchIngest(b *testing.B, batched bool, rooms int) {
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
	single, batch := verifyRates(b, wire)
	var pending atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	if batched {
		r := parallelProducers(16, b.N, batchSize, func(lo, hi int) error {
			evs := make([]*dag.Event, hi-lo)
			for i, raw := range wire[lo:hi] {
				e, err := dag.Decode(raw)
				if err != nil {
					return err
				}
				evs[i] = e
			}
			if k, err := dag.VerifyBatch(evs); k >= 0 {
				return err
			}
			res, errs := s.PutAll(evs)
			for i := range res {
				if errs[i] != nil {
					return errs[i]
				}
				if res[i].Status == dag.StatusPending {
					pending.Add(1)
				}
			}
			return nil
		})
		if r != nil {
			b.Fatal(r)
		}
	} else {
		v := p2p.NewVerifier(0)
		defer v.Close()
		r := parallelProducers(256, b.N, 1, func(lo, _ int) error {
			e, err := dag.Decode(wire[lo])
			if err != nil {
				return err
			}
			if err := v.Verify(e); err != nil {
				return err
			}
			res, err := s.Put(e)
			if err != nil {
				return err
			}
			if res.Status == dag.StatusPending {
				pending.Add(1)
			}
			return nil
		})
		if r != nil {
			b.Fatal(r)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(pending.Load())/float64(b.N), "pending/event")
	cpu := (cpuTime() - cpu0) / time.Duration(b.N)
	ingest := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(float64(cpu.Microseconds()), "cpu-µs/event")
	b.ReportMetric(ingest, "events/s")
	b.ReportMetric(single.perSecond, "verify-events/s")
	b.ReportMetric(float64(single.cpu.Microseconds()), "verify-cpu-µs/event")
	b.ReportMetric(ingest/single.perSecond, "ingest/verify")
	b.ReportMetric(batch.perSecond, "verify-batch-events/s")
	b.ReportMetric(ingest/batch.perSecond, "ingest/verify-batch")
	st := s.Stats()
	b.ReportMetric(float64(st.Puts)/float64(max(st.Syncs, 1)), "puts/fsync")
	b.ReportMetric(float64(st.SyncTime.Microseconds())/float64(max(st.Syncs, 1)), "µs/fsync")
}

// parallelProducers runs work over n items, chunk items at a time, on the
// given number of goroutines, and returns the first error.
func parallelProducers(producers, n, chunk int, work func(lo, hi int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, producers)
	for p := range producers {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= n {
					return
				}
				if err := work(lo, min(lo+chunk, n)); err != nil {
					errs[p] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
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

// BenchmarkPutManyTips measures durable Puts into a room that keeps a given
// number of tips: the room starts with that many children of its create
// event, and each measured event extends one of them (lanes taken in turn),
// so it replaces one tip with itself and the count stays put. With a key
// per tip the cost per Put does not depend on the count
// (docs/performance.md). Puts go in PutAll groups of 64, one fsync each.
func BenchmarkPutManyTips(b *testing.B) {
	for _, tips := range []int{10, 10000} {
		b.Run(fmt.Sprintf("tips=%d", tips), func(b *testing.B) { benchPutManyTips(b, tips) })
	}
}

func benchPutManyTips(b *testing.B, tips int) {
	key := dagtest.Key(90)
	content := func(i int) []byte { return fmt.Appendf(nil, "event %d of the many-tips bench", i) }
	create, err := dag.NewSigned(key, dag.RoomID{}, dag.KindCreate, nil, 0, content(0))
	if err != nil {
		b.Fatal(err)
	}
	room := create.RoomID()
	lanes := make([]dag.EventID, tips)
	setup := []*dag.Event{create}
	events := make([]*dag.Event, 0, b.N)
	for i := range tips + b.N {
		parent := create.ID()
		if i >= tips {
			parent = lanes[i%tips]
		}
		e, err := dag.NewSigned(key, room, dag.KindMessage, []dag.EventID{parent}, int64(i+1), content(i+1))
		if err != nil {
			b.Fatal(err)
		}
		lanes[i%tips] = e.ID()
		if i < tips {
			setup = append(setup, e)
		} else {
			events = append(events, e)
		}
	}
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	putAll := func(evs []*dag.Event) {
		for lo := 0; lo < len(evs); lo += 64 {
			if _, errs := s.PutAll(evs[lo:min(lo+64, len(evs))]); errors.Join(errs...) != nil {
				b.Fatal(errors.Join(errs...))
			}
		}
	}
	putAll(setup)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	putAll(events)
	b.StopTimer()
	b.ReportMetric(float64(((cpuTime()-cpu0)/time.Duration(b.N)).Nanoseconds())/1000, "cpu-µs/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if got, err := s.Tips(room); err != nil || len(got) != tips {
		b.Fatalf("%d tips after the run, %v; want %d", len(got), err, tips)
	}
}
