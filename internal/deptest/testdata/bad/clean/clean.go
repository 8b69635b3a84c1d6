// Package clean uses time only as values, locks but starts nothing, and
// reads an injected clock: all allowed.
package clean

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the injected clock a pure core takes as a parameter.
type Clock interface{ Now() time.Time }

// Later adds a duration to a time the caller supplies.
func Later(now time.Time) time.Time { return now.Add(time.Second) }

// Cache is safe for its callers' goroutines.
type Cache struct {
	mu   sync.Mutex
	once sync.Once
	hits atomic.Int64
	m    map[string]time.Time
}

// Touch records the clock's time for key.
func (c *Cache) Touch(clk Clock, key string) {
	c.once.Do(func() { c.m = map[string]time.Time{} })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hits.Add(1)
	c.m[key] = clk.Now().UTC()
}
