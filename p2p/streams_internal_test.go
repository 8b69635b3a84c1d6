package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestStreamPeerSlots checks the requesting side's per-peer slots: n at a
// time per peer, a waiter gets the next free one or its context's error,
// other peers are not affected, and no entry outlives its users.
func TestStreamPeerSlots(t *testing.T) {
	ps := newPeerSlots(2)
	a, b := peer.ID("a"), peer.ID("b")
	ctx := context.Background()
	r1, err1 := ps.acquire(ctx, a)
	r2, err2 := ps.acquire(ctx, a)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := ps.acquire(short, a); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third slot of a: %v, want the deadline", err)
	}
	rb, err := ps.acquire(ctx, b)
	if err != nil {
		t.Fatalf("slot of b: %v", err)
	}
	got := make(chan func(), 1)
	go func() {
		r, _ := ps.acquire(ctx, a)
		got <- r
	}()
	r1()
	select {
	case r3 := <-got:
		r3()
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not get the released slot")
	}
	r2()
	rb()
	if n := len(ps.peers); n != 0 {
		t.Fatalf("%d entries left after every release", n)
	}
}
