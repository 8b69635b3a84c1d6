package badgerstore

import (
	"sync"

	"github.com/rhizome-chat/rhizome/dag"
)

// metaCacheSize is the number of recently stored events whose metadata the
// store caches.
const metaCacheSize = 1 << 16

// metaCache remembers the metadata of the most recently stored events. New
// events name recent events as parents, so validation and Put find most
// parents here instead of in badger. Only the writer adds entries, right
// after the transaction that inserted the events committed, so the cache
// holds only committed events (a purge, which deletes stored events, clears
// it). Readers may therefore see an event between its commit and its
// fsync, as they may through badger itself.
type metaCache struct {
	mu   sync.RWMutex
	m    map[dag.EventID]dag.Meta
	ring []dag.EventID // insertion order, for eviction
	next int
}

func newMetaCache(size int) *metaCache {
	// The map grows as events are stored: presizing it costs every Open
	// (tests open many stores) about 0.1 s.
	return &metaCache{m: map[dag.EventID]dag.Meta{}, ring: make([]dag.EventID, size)}
}

func (c *metaCache) get(id dag.EventID) (dag.Meta, bool) {
	c.mu.RLock()
	m, ok := c.m[id]
	c.mu.RUnlock()
	return m, ok
}

// cachedMeta is one entry to add to a metaCache.
type cachedMeta struct {
	id dag.EventID
	m  dag.Meta
}

// clear forgets every entry (after a purge deleted stored events).
func (c *metaCache) clear() {
	c.mu.Lock()
	clear(c.m)
	clear(c.ring)
	c.next = 0
	c.mu.Unlock()
}

// addAll adds entries, evicting the oldest ones.
func (c *metaCache) addAll(entries []cachedMeta) {
	c.mu.Lock()
	for _, e := range entries {
		if old := c.ring[c.next]; !old.IsZero() {
			delete(c.m, old)
		}
		c.ring[c.next] = e.id
		c.next = (c.next + 1) % len(c.ring)
		c.m[e.id] = e.m
	}
	c.mu.Unlock()
}
