package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

// TestBucketsBounded: idle buckets are swept, and past the cap new keys
// share one overflow bucket instead of growing the map.
func TestBucketsBounded(t *testing.T) {
	b := New("device", Rate{PerMinute: 60, Burst: 2})
	b.max = 3
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := b.Take(fmt.Sprint("k", i), t0); !ok {
			t.Fatal("first take refused")
		}
	}
	// k3 and k4 share the overflow bucket (burst 2): the third take fails.
	ok1, _ := b.Take("k3", t0)
	ok2, _ := b.Take("k4", t0)
	ok3, retry := b.Take("k5", t0)
	if !ok1 || !ok2 || ok3 || b.Len() != 3 {
		t.Fatalf("overflow: %v %v %v, size %d", ok1, ok2, ok3, b.Len())
	}
	if retry <= 0 || retry > time.Second {
		t.Fatalf("retry %v, want at most 1 s at 1 per second", retry)
	}
	// A minute later every bucket is full again and the sweep drops them.
	if ok, _ := b.Take("k9", t0.Add(time.Minute)); !ok || b.Len() != 1 {
		t.Fatalf("after the sweep: size %d", b.Len())
	}
}
