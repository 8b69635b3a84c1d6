package node

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
)

// Bucket kinds of the client API's rate limits (the bucket label of
// rhizome_api_rate_limited_total).
const (
	bucketDevice     = "device"
	bucketUser       = "user"
	bucketRoom       = "room"
	bucketRegisterIP = "register_ip"
)

// Bounds of one bucket set.
const (
	// maxBuckets bounds the buckets of one kind. Past it, keys without a
	// bucket share one overflow bucket, so that many keys cannot grow memory
	// and cannot reset their own limits.
	maxBuckets = 50_000
	// bucketSweep is how often full (idle) buckets are dropped: a full
	// bucket is the same as none.
	bucketSweep = time.Minute
)

// bucket is a token bucket: tokens refill at rate per second up to burst.
type bucket struct {
	tokens float64
	last   time.Time
}

// buckets is one kind of rate limit, keyed by device, user, room or address.
type buckets struct {
	kind  string
	rate  float64 // tokens per second; 0 means no limit
	burst float64

	mu        sync.Mutex
	m         map[string]*bucket
	overflow  bucket
	lastSweep time.Time
	max       int
}

func newBuckets(kind string, r Rate) *buckets {
	return &buckets{kind: kind, rate: float64(r.PerMinute) / 60, burst: float64(r.Burst), m: map[string]*bucket{}, max: maxBuckets}
}

// take spends one token of key's bucket at now. If none is left it returns
// how long until one is.
func (b *buckets) take(key string, now time.Time) (ok bool, retry time.Duration) {
	if b.rate == 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.lastSweep) >= bucketSweep {
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
func (b *buckets) sweep(now time.Time) {
	b.lastSweep = now
	for k, bk := range b.m {
		if bk.tokens+now.Sub(bk.last).Seconds()*b.rate >= b.burst {
			delete(b.m, k)
		}
	}
}

// apiLimiter holds the client API's rate limits (config api.rate).
type apiLimiter struct {
	device, user, room, registerIP *buckets
	metrics                        *Metrics
}

func newAPILimiter(r RateLimits, m *Metrics) *apiLimiter {
	return &apiLimiter{
		device: newBuckets(bucketDevice, r.Device), user: newBuckets(bucketUser, r.User),
		room: newBuckets(bucketRoom, r.Room), registerIP: newBuckets(bucketRegisterIP, r.RegisterIP),
		metrics: m,
	}
}

// allow spends a token of each bucket in order, and answers 429 with
// Retry-After for the first that has none. keys pairs each bucket with its
// key.
func (l *apiLimiter) allow(w http.ResponseWriter, keys ...bucketKey) bool {
	now := time.Now()
	for _, k := range keys {
		ok, retry := k.b.take(k.key, now)
		if ok {
			continue
		}
		secs := int(math.Ceil(retry.Seconds()))
		if secs < 1 {
			secs = 1
		}
		l.metrics.APIRateLimited.WithLabelValues(k.b.kind).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, apiErr(http.StatusTooManyRequests, clientapi.CodeRateLimited, "too many requests for this %s: retry after %d s (limit %s)", k.b.kind, secs, k.b.describe()))
		return false
	}
	return true
}

// describe renders the bucket's limit for error messages.
func (b *buckets) describe() string {
	return fmt.Sprintf("%g per minute, bursts of %g", b.rate*60, b.burst)
}

// bucketKey names one bucket of a kind.
type bucketKey struct {
	b   *buckets
	key string
}
