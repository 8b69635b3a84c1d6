// Package ratelimit is the node's token buckets, keyed by device, user,
// room, address or server, and bounded in memory.
package ratelimit

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Bounds of one bucket set.
const (
	// MaxBuckets bounds the buckets of one kind. Past it, keys without a
	// bucket share one overflow bucket, so that many keys cannot grow memory
	// and cannot reset their own limits.
	MaxBuckets = 50_000
	// sweepEvery is how often full (idle) buckets are dropped: a full
	// bucket is the same as none.
	sweepEvery = time.Minute
)

// Rate is a token bucket: Burst requests at once, refilled at PerMinute.
// PerMinute 0 disables the bucket.
type Rate struct {
	PerMinute int `json:"per_minute"`
	Burst     int `json:"burst"`
}

// bucket is a token bucket: tokens refill at rate per second up to burst.
type bucket struct {
	tokens float64
	last   time.Time
}

// Buckets is one kind of rate limit: a token bucket per key.
type Buckets struct {
	kind  string
	rate  float64 // tokens per second; 0 means no limit
	burst float64

	mu        sync.Mutex
	m         map[string]*bucket
	overflow  bucket
	lastSweep time.Time
	max       int
}

// New returns the buckets of kind (a name for errors and metrics) at r.
func New(kind string, r Rate) *Buckets {
	return NewPerSecond(kind, float64(r.PerMinute)/60, r.Burst)
}

// NewPerSecond returns the buckets of kind refilling at perSecond tokens up
// to burst; perSecond 0 means no limit.
func NewPerSecond(kind string, perSecond float64, burst int) *Buckets {
	return &Buckets{kind: kind, rate: perSecond, burst: float64(burst), m: map[string]*bucket{}, max: MaxBuckets}
}

// Kind names the buckets.
func (b *Buckets) Kind() string { return b.kind }

// Take spends one token of key's bucket at now. If none is left it returns
// how long until one is.
func (b *Buckets) Take(key string, now time.Time) (ok bool, retry time.Duration) {
	if b.rate == 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.lastSweep) >= sweepEvery {
		b.sweep(now)
	}
	bk := b.m[key]
	if bk == nil {
		if len(b.m) >= b.max {
			bk = &b.overflow
			if bk.last.IsZero() {
				bk.tokens, bk.last = b.burst, now
			}
		} else {
			bk = &bucket{tokens: b.burst, last: now}
			b.m[key] = bk
		}
	}
	if dt := now.Sub(bk.last).Seconds(); dt > 0 {
		bk.tokens = math.Min(b.burst, bk.tokens+dt*b.rate)
		bk.last = now
	}
	if bk.tokens >= 1 {
		bk.tokens--
		return true, 0
	}
	return false, time.Duration((1 - bk.tokens) / b.rate * float64(time.Second))
}

// sweep drops the buckets that have refilled completely; b.mu is held.
func (b *Buckets) sweep(now time.Time) {
	b.lastSweep = now
	for k, bk := range b.m {
		if bk.tokens+now.Sub(bk.last).Seconds()*b.rate >= b.burst {
			delete(b.m, k)
		}
	}
}

// Len returns the number of keys with their own bucket.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// Describe renders the limit for error messages.
func (b *Buckets) Describe() string {
	return fmt.Sprintf("%g per minute, bursts of %g", b.rate*60, b.burst)
}
