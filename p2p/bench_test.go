package p2p_test

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

const benchServers = 20

// arrivals records, per event, when each server stored it, and signals
// when the last of them did.
type arrivals struct {
	mu    sync.Mutex
	count map[dag.EventID]int
	done  map[dag.EventID]chan struct{}
	need  int
}

func newArrivals(need int) *arrivals {
	return &arrivals{count: map[dag.EventID]int{}, done: map[dag.EventID]chan struct{}{}, need: need}
}

func (a *arrivals) expect(id dag.EventID) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := make(chan struct{})
	a.done[id] = ch
	if a.count[id] >= a.need {
		close(ch)
	}
	return ch
}

func (a *arrivals) stored(id dag.EventID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count[id]++
	if ch, ok := a.done[id]; ok && a.count[id] == a.need {
		close(ch)
	}
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	p := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPropagation measures, on 20 servers of a mocknet (no added link
// latency, so the figure is CPU and protocol cost), the time from Publish
// at one server to the moment the last of the other 19 has stored the
// event (validated, signature checked, put in its store). Publishers rotate.
func BenchmarkPropagation(b *testing.B) {
	arr := newArrivals(benchServers) // the publisher stores it too
	nw := p2ptest.New(b, benchServers, p2ptest.Options{Seed: 41, Configure: func(i int, cfg *p2p.Config) {
		cfg.OnEvent = func(_ dag.RoomID, id dag.EventID) { arr.stored(id) }
	}})
	room := nw.CreateRoom(0)
	if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, time.Minute); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second) // gossip meshes form
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		src := i % benchServers
		ev := nw.NewEvent(src, room, []byte("benchmark payload of a typical small message event"))
		done := arr.expect(ev.ID())
		start := time.Now()
		if err := nw.Nodes[src].Mesh.Publish(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
		select {
		case <-done:
			lat = append(lat, time.Since(start))
		case <-time.After(30 * time.Second):
			b.Fatalf("event %d did not reach all servers", i)
		}
	}
	b.StopTimer()
	reportLatencies(b, lat)
	nw.Close()
}

// BenchmarkPropagationRawGossipsub is the same measurement with bare
// gossipsub (same options: no envelope signature, content-hash message IDs,
// flood publish) and no validation or store, for comparison.
func BenchmarkPropagationRawGossipsub(b *testing.B) {
	mn, err := mocknet.FullMeshConnected(benchServers)
	if err != nil {
		b.Fatal(err)
	}
	defer mn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var topics []*pubsub.Topic
	var got atomic.Int64
	var mu sync.Mutex
	waiting := map[string]chan struct{}{}
	counts := map[string]int{}
	for _, h := range mn.Hosts() {
		ps, err := pubsub.NewGossipSub(ctx, h,
			pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(), pubsub.WithFloodPublish(true),
			pubsub.WithMessageIdFn(func(m *pb.Message) string { s := sha256.Sum256(m.Data); return string(s[:]) }))
		if err != nil {
			b.Fatal(err)
		}
		t, err := ps.Join("bench")
		if err != nil {
			b.Fatal(err)
		}
		sub, err := t.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		self := h.ID()
		go func() {
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if m.ReceivedFrom == self {
					continue
				}
				got.Add(1)
				mu.Lock()
				k := string(m.Data)
				counts[k]++
				if ch, ok := waiting[k]; ok && counts[k] == benchServers-1 {
					close(ch)
				}
				mu.Unlock()
			}
		}()
		topics = append(topics, t)
	}
	time.Sleep(2 * time.Second)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		payload := []byte("benchmark payload of a typical small message event " + string(rune(i)) + time.Now().String())
		done := make(chan struct{})
		mu.Lock()
		waiting[string(payload)] = done
		mu.Unlock()
		start := time.Now()
		if err := topics[i%benchServers].Publish(ctx, payload); err != nil {
			b.Fatal(err)
		}
		select {
		case <-done:
			lat = append(lat, time.Since(start))
		case <-time.After(30 * time.Second):
			b.Fatalf("message %d did not reach all servers", i)
		}
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// BenchmarkCatchUp measures how fast a lagging server pulls a room from one
// peer: the peer holds b.N events the laggard lacks (a chain, as written by
// one busy server), the connection comes back, and the clock stops when the
// laggard has stored (verified, ordered, put) them all. Reported as
// events/s; run it with -benchtime=Nx.
func BenchmarkCatchUp(b *testing.B) {
	var stored atomic.Int64
	target := int64(-1)
	done := make(chan struct{})
	var once sync.Once
	nw := p2ptest.New(b, 2, p2ptest.Options{Seed: 42, Configure: func(i int, cfg *p2p.Config) {
		if i == 0 {
			cfg.OnEvent = func(dag.RoomID, dag.EventID) {
				if stored.Add(1) == atomic.LoadInt64(&target) {
					once.Do(func() { close(done) })
				}
			}
		}
	}})
	room := nw.CreateRoom(1)
	if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, time.Minute); err != nil {
		b.Fatal(err)
	}
	nw.Isolate(0)
	for range b.N {
		ev := nw.NewEvent(1, room, []byte("catch-up payload of a typical small message event"))
		if _, err := nw.Nodes[1].Store.Put(ev); err != nil {
			b.Fatal(err)
		}
	}
	atomic.StoreInt64(&target, stored.Load()+int64(b.N))
	nw.Heal()
	b.ResetTimer()
	start := time.Now()
	// Connect right away rather than waiting for the redial backoff: the
	// pull starts on connection, and the backoff is not what is measured.
	if _, err := nw.MN.ConnectPeers(nw.Nodes[0].PeerID(), nw.Nodes[1].PeerID()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("laggard stored %d of %d events", stored.Load(), b.N)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	nw.Close()
}
