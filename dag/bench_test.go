package dag

import (
	"crypto/rand"
	"testing"
)

// benchEvents returns n signed 1 KiB-content events of one room.
func benchEvents(b *testing.B, n int) []*Event {
	b.Helper()
	priv := testKey(30)
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
