package node

import (
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
)

// TestEpochCacheBound: a room's cache of epoch servers holds at most
// maxCachedEpochs entries (a writer naming many distinct stored events
// cannot grow it without bound); past that it starts over, and rooms are
// independent; drop forgets a room.
func TestEpochCacheBound(t *testing.T) {
	var c epochCache
	var a, b dag.RoomID
	a[0], b[0] = 1, 2
	id := func(i int) dag.EventID {
		var e dag.EventID
		e[0], e[1], e[2] = byte(i>>16), byte(i>>8), byte(i)
		return e
	}
	servers := &[]dag.ServerID{{7}}
	c.put(b, id(0), servers)
	for i := range maxCachedEpochs {
		c.put(a, id(i), nil)
	}
	if n := len(c.m[a]); n != maxCachedEpochs {
		t.Fatalf("%d entries, want %d", n, maxCachedEpochs)
	}
	c.put(a, id(maxCachedEpochs), servers)
	if n := len(c.m[a]); n != 1 {
		t.Errorf("%d entries after the bound, want 1 (started over)", n)
	}
	if got, ok := c.get(a, id(maxCachedEpochs)); !ok || got != servers {
		t.Error("the entry that crossed the bound is not cached")
	}
	if _, ok := c.get(a, id(0)); ok {
		t.Error("an entry from before the bound survived")
	}
	if got, ok := c.get(b, id(0)); !ok || got != servers {
		t.Error("another room's entry was lost")
	}
	c.drop(b)
	if _, ok := c.get(b, id(0)); ok {
		t.Error("drop kept the room")
	}
}
