package consensus

import (
	"fmt"
	"testing"
)

// longChainMachine returns a machine of a non-hub server of five holding
// a chain of n certified commits (each sealed by the term-0 hub and acked
// by a quorum), loaded with Restore.
func longChainMachine(tb testing.TB, n int) (*kit, *Machine) {
	tb.Helper()
	k := newKit(5)
	var evs []Event
	parent := "root"
	for i := range n {
		name := fmt.Sprintf("c%d", i)
		evs = append(evs, k.commit(name, parent), k.seal(parent, name, 0, false, 0, nil))
		evs = append(evs, k.acks(3, parent, name, 0)...)
		parent = name
	}
	m, err := New(Config{Room: k.room, Root: k.root, Membership: k.mem, Self: k.cands[4], Params: DefaultParams()})
	if err != nil {
		tb.Fatal(err)
	}
	if _, errs := m.Restore(evs); len(errs) > 0 {
		tb.Fatal(errs)
	}
	if got := m.CertifiedLen(); got != n {
		tb.Fatalf("certified %d of %d commits", got, n)
	}
	return k, m
}

// BenchmarkMachineLongChain measures the machine's cost per event in a
// long-lived room, for chains of 100 to 10,000 certified commits: a tick,
// and an ack that changes nothing (a vote for the certified tip in a later
// term; the view takes it in place, see ackInert). Neither re-evaluates
// the view, so their cost must not grow with the chain (reportOrder
// compares the chain with the last reported one at every drive).
func BenchmarkMachineLongChain(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		k, m := longChainMachine(b, n)
		b.Run(fmt.Sprintf("tick/chain=%d", n), func(b *testing.B) {
			for b.Loop() {
				m.Tick()
			}
		})
		tip := fmt.Sprintf("c%d", n-1)
		slot := fmt.Sprintf("c%d", n-2)
		term := uint64(1) // across runs (-count): each ack must be new
		b.Run(fmt.Sprintf("inert-ack/chain=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Step(k.ack(k.cands[3], slot, tip, term)); err != nil {
					b.Fatal(err)
				}
				term++
			}
		})
	}
}

// TestForkPoint checks the bisection against a linear scan over chains
// that share a prefix (paths of one tree, as canonical chains are), of
// every length up to 9 and every fork point.
func TestForkPoint(t *testing.T) {
	id := func(branch string, i int) EventID { return EventID(fmt.Sprintf("%s%d", branch, i)) }
	for la := range 10 {
		for lb := range 10 {
			for common := range min(la, lb) + 1 {
				var a, b []EventID
				for i := range la {
					a = append(a, id(map[bool]string{true: "x", false: "a"}[i < common], i))
				}
				for i := range lb {
					b = append(b, id(map[bool]string{true: "x", false: "b"}[i < common], i))
				}
				if got := forkPoint(a, b); got != common {
					t.Fatalf("forkPoint(%v, %v) = %d, want %d", a, b, got, common)
				}
			}
		}
	}
}
