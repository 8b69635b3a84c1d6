package mls

import "sync"

// proposalCache is the proposals received in one epoch (RFC 9420,
// Section 12.4), in arrival order, by reference. An epoch's states (a
// PublicGroup per accepted proposal, a Group and its copies) each see a
// prefix of one shared, append-only log, so copying a state costs O(1)
// and adding a proposal O(1) amortized: n proposals in an epoch cost O(n),
// not the O(n^2) of a copied list. A state that adds to a log that
// another state has extended past its prefix first copies its prefix (a
// fork of the epoch's proposals, as when two proposals are processed on
// the same state). The zero value is an empty cache.
type proposalCache struct {
	log *proposalLog
	n   int // the prefix of log this state sees
}

// proposalLog is the shared log of a proposalCache.
type proposalLog struct {
	mu    sync.Mutex
	items []cachedProposal
	index map[string]int // ProposalRef -> position of the proposal
}

// len returns how many proposals the cache holds.
func (c *proposalCache) len() int { return c.n }

// all returns the proposals in arrival order. The slice is shared: the
// caller must not modify it.
func (c *proposalCache) all() []cachedProposal {
	if c.log == nil {
		return nil
	}
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	return c.log.items[:c.n:c.n]
}

// find returns the proposal whose ProposalRef is ref.
func (c *proposalCache) find(ref []byte) (cachedProposal, bool) {
	if c.log == nil {
		return cachedProposal{}, false
	}
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	i, ok := c.log.index[string(ref)]
	if !ok || i >= c.n {
		return cachedProposal{}, false
	}
	return c.log.items[i], true
}

// add appends cp unless a proposal with its reference is there already.
func (c *proposalCache) add(cp cachedProposal) {
	if _, dup := c.find(cp.ref); dup {
		return
	}
	if c.log != nil {
		c.log.mu.Lock()
		if len(c.log.items) == c.n {
			c.log.items = append(c.log.items, cp)
			c.log.index[string(cp.ref)] = c.n
			c.log.mu.Unlock()
			c.n++
			return
		}
		c.log.mu.Unlock()
	}
	// A fresh log, or a fork: copy the prefix this state sees.
	prefix := c.all()
	l := &proposalLog{items: make([]cachedProposal, 0, len(prefix)+1), index: make(map[string]int, len(prefix)+1)}
	for _, p := range prefix {
		l.index[string(p.ref)] = len(l.items)
		l.items = append(l.items, p)
	}
	l.index[string(cp.ref)] = len(l.items)
	l.items = append(l.items, cp)
	c.log, c.n = l, len(l.items)
}
