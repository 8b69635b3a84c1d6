package badgerstore

import (
	"sync"

	"github.com/rhizome-chat/rhizome/dag"
)

// metaCache remembers the metadata of the most recently stored events. New
// events name recent events as parents, so validation and Put find most
// parents here instead of in badger. Only the writer adds entries, right
// after inserting an event into its transaction; if that transaction is
// discarded the writer clears the cache. Readers may therefore see an event
// between its commit and its fsync, as they may through badger itself.
type metaCache struct {
	mu   sync.RWMutex
	m    map[dag.EventID]dag.Meta
	ring []dag.EventID // insertion order, for eviction
	next int
}

func newMetaCache(size int) *metaCache {
	return &metaCache{m: make(map[dag.EventID]dag.Meta, size), ring: make([]dag.EventID, size)}
}

func (c *metaCache) get(id dag.EventID) (dag.Meta, bool) {
	c.mu.RLock()
	m, ok := c.m[id]
	c.mu.RUnlock()
	return m, ok
}

func (c *metaCache) add(id dag.EventID, m dag.Meta) {
	c.mu.Lock()
	if old := c.ring[c.next]; !old.IsZero() {
		delete(c.m, old)
	}
	c.ring[c.next] = id
	c.next = (c.next + 1) % len(c.ring)
	c.m[id] = m
	c.mu.Unlock()
}

func (c *metaCache) clear() {
	c.mu.Lock()
	clear(c.m)
	clear(c.ring)
	c.next = 0
	c.mu.Unlock()
}
