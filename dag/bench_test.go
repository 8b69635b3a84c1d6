package dag

import (
	"crypto/ed25519"
	"crypto/rand"
	"runtime"
	"sync/atomic"
	"testing"
)

// benchEvents returns n signed 1 KiB-content events of one room.
func benchEvents(b *testing.B, n int) []*Event {
	return benchEventsFrom(b, testKey(30), n)
}

// benchEventsFrom returns n signed 1 KiB-content events of one room by priv.
func benchEventsFrom(b *testing.B, priv ed25519.PrivateKey, n int) []*Event {
	b.Helper()
	create := mustSign(b, priv, RoomID{}, KindCreate, nil, "bench")
	content := make([]byte, 1024)
	events := []*Event{create}
	for i := 1; i < n; i++ {
		if _, err := rand.Read(content); err != nil {
			b.Fatal(err)
		}
		e, err := NewSigned(priv, create.RoomID(), KindMessage, []EventID{events[i-1].ID()}, int64(i), content)
		if err != nil {
			b.Fatal(err)
		}
		events = append(events, e)
	}
	return events
}

// BenchmarkVerifyEvent measures the signature-bound ceiling of ingest:
// Ed25519 verification of decoded 1 KiB events, on every core.
func BenchmarkVerifyEvent(b *testing.B) {
	events := benchEvents(b, 256)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := events[i%len(events)].Verify(); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeEvent measures strict decoding and ID hashing of 1 KiB
// events (no signature check).
func BenchmarkDecodeEvent(b *testing.B) {
	events := benchEvents(b, 64)
	b.ReportAllocs()
	b.SetBytes(int64(events[1].Size()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(events[1+i%(len(events)-1)].Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEventBatch measures VerifyBatch on chunks of 64 decoded
// 1 KiB events from two origins, on every core: the signature-bound ceiling
// of a receive path that verifies in batches (sync answers, ingest).
func BenchmarkVerifyEventBatch(b *testing.B) {
	events := benchEvents(b, 256)
	other := benchEventsFrom(b, testKey(31), 256)
	mixed := make([]*Event, 0, 512)
	for i := range events {
		mixed = append(mixed, events[i], other[i])
	}
	const chunk = 64
	b.ReportAllocs()
	b.ResetTimer()
	var total atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			start := (i * chunk) % len(mixed)
			if k, err := VerifyBatch(mixed[start : start+chunk]); k >= 0 {
				b.Error(err)
				return
			}
			total.Add(chunk)
			i++
		}
	})
	b.ReportMetric(float64(total.Load())/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total.Load())/1000*float64(runtime.GOMAXPROCS(0)), "core-µs/event")
}
