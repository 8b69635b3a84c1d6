package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Rate is a token-bucket rate: Burst requests at once, refilled at PerSecond.
type Rate struct {
	PerSecond float64
	Burst     int
}

// limiter keeps one token bucket per key (a peer, a room, a room and
// origin). Buckets of keys that have been idle long enough to be full again
// are dropped, so the map stays as small as the set of recently active keys.
type limiter[K comparable] struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[K]*bucket
	sweep   time.Time
}

// peerLimiter is a limiter per peer.
type peerLimiter = limiter[peer.ID]

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter[K comparable](r Rate, now func() time.Time) *limiter[K] {
	if now == nil {
		now = time.Now
	}
	return &limiter[K]{rate: r, now: now, buckets: make(map[K]*bucket)}
}

func newPeerLimiter(r Rate, now func() time.Time) *peerLimiter { return newLimiter[peer.ID](r, now) }

// allow takes one token from k's bucket and reports whether there was one.
func (l *limiter[K]) allow(k K) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[k]
	if b == nil {
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[k] = b
	}
	b.tokens += now.Sub(b.last).Seconds() * l.rate.PerSecond
	b.tokens = min(b.tokens, float64(l.rate.Burst))
	b.last = now
	ok := b.tokens >= 1
	if ok {
		b.tokens--
	}
	if full := time.Duration(float64(l.rate.Burst) / max(l.rate.PerSecond, 1e-9) * float64(time.Second)); now.Sub(l.sweep) > full {
		for id, ob := range l.buckets {
			if now.Sub(ob.last) > full {
				delete(l.buckets, id)
			}
		}
		l.sweep = now
	}
	return ok
}

// semaphore bounds concurrency globally and per peer without blocking: a
// caller that finds no slot gets a busy answer instead of waiting, which is
// the back-pressure the requester sees.
type semaphore struct {
	total, perPeer int

	mu    sync.Mutex
	used  int
	peers map[peer.ID]int
}

func newSemaphore(total, perPeer int) *semaphore {
	return &semaphore{total: total, perPeer: perPeer, peers: make(map[peer.ID]int)}
}

func (s *semaphore) tryAcquire(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used >= s.total || s.peers[p] >= s.perPeer {
		return false
	}
	s.used++
	s.peers[p]++
	return true
}

func (s *semaphore) release(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used--
	if s.peers[p]--; s.peers[p] <= 0 {
		delete(s.peers, p)
	}
}
