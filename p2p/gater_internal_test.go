package p2p

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeClock is a settable clock for the gater.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeGater() (*Gater, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_000_000, 0)}
	g := NewGater(nil, nil)
	g.now = c.now
	return g, c
}

// TestGaterBackoff checks the misbehaviour blocks: each block in a row
// doubles, up to 64 x the base; offences during a block are one strike; a
// peer clean for the longest block starts again from the base; and the
// node's own blocks (Block) are independent of them.
func TestGaterBackoff(t *testing.T) {
	const base = time.Minute
	g, clock := newFakeGater()
	p := peer.ID("peer-a")

	var want []time.Duration
	for k := range maxBlockShift + 3 {
		want = append(want, base<<min(k, maxBlockShift))
	}
	for k, w := range want {
		d, strike := g.Punish(p, base)
		if d != w || strike != k+1 {
			t.Fatalf("block %d: %v (strike %d), want %v (strike %d)", k+1, d, strike, w, k+1)
		}
		if d2, s2 := g.Punish(p, base); d2 != 0 || s2 != 0 {
			t.Fatalf("offence during block %d counted again: %v, %d", k+1, d2, s2)
		}
		clock.add(d - time.Second)
		if !g.Blocked(p) {
			t.Fatalf("block %d lifted a second early", k+1)
		}
		clock.add(time.Second)
		if g.Blocked(p) {
			t.Fatalf("block %d not lifted after %v", k+1, d)
		}
	}
	if got := base << maxBlockShift; got != 64*time.Minute {
		t.Fatalf("cap %v, want 64 x base", got)
	}

	// Clean for just under the longest block: the backoff stays at the cap.
	clock.add(base<<maxBlockShift - time.Second)
	if d, _ := g.Punish(p, base); d != base<<maxBlockShift {
		t.Fatalf("after a short clean period: %v, want the cap", d)
	}
	// Clean for the longest block: it starts again from the base.
	clock.add(base<<maxBlockShift + base<<maxBlockShift)
	if d, strike := g.Punish(p, base); d != base || strike != 1 {
		t.Fatalf("after the clean period: %v (strike %d), want %v (strike 1)", d, strike, base)
	}

	// Block and Punish are separate: lifting one leaves the other.
	q := peer.ID("peer-b")
	g.Block(q, time.Hour)
	if d, _ := g.Punish(q, base); d != base {
		t.Fatalf("punish of a node-blocked peer: %v", d)
	}
	g.Block(q, -time.Second) // the node lifts its block
	if !g.Blocked(q) {
		t.Fatal("lifting the node's block lifted the misbehaviour block")
	}
	if n := g.blockedCount(); n != 2 {
		t.Fatalf("%d peers counted blocked, want 2", n)
	}
	clock.add(base)
	if g.Blocked(q) {
		t.Fatal("still blocked after both blocks ended")
	}
	if n, want := g.metrics.blocks.Load(), uint64(len(want)+3); n != want {
		t.Fatalf("%d blocks counted, want %d (repeats during a block are not blocks)", n, want)
	}
	if n := g.blockedCount(); n != 0 {
		t.Fatalf("%d peers counted blocked, want 0", n)
	}
}

// TestGaterRecordsBounded fills the gater past maxBlockRecords: it keeps at
// most that many records, sweeps forgotten ones first and otherwise drops
// the block that ends first.
func TestGaterRecordsBounded(t *testing.T) {
	g, clock := newFakeGater()
	id := func(i int) peer.ID { return peer.ID([]byte{byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range maxBlockRecords {
		g.Punish(id(i), time.Hour+time.Duration(i)*time.Millisecond)
	}
	g.Punish(id(maxBlockRecords), 2*time.Hour)
	if n := len(g.blocked); n != maxBlockRecords {
		t.Fatalf("%d records, want %d", n, maxBlockRecords)
	}
	if _, ok := g.blocked[id(0)]; ok {
		t.Fatal("the block ending first was kept")
	}
	if !g.Blocked(id(maxBlockRecords)) || !g.Blocked(id(1)) {
		t.Fatal("a current block was lost")
	}
	// Once every record is forgotten, a new one sweeps them all.
	clock.add(200 * time.Hour)
	g.Punish(id(maxBlockRecords+1), time.Minute)
	if n := len(g.blocked); n != 1 {
		t.Fatalf("%d records after the sweep, want 1", n)
	}
}
