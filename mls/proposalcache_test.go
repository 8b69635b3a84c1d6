package mls

import (
	"fmt"
	"testing"
)

// TestProposalCacheShares: copies of a cache share its log; each sees its
// own prefix whatever the others add after the copy, a fork copies only
// when two add to the same prefix, and duplicates are kept once.
func TestProposalCacheShares(t *testing.T) {
	cp := func(name string) cachedProposal { return cachedProposal{ref: []byte(name)} }
	refs := func(c *proposalCache) string {
		out := ""
		for _, p := range c.all() {
			out += string(p.ref)
		}
		return out
	}
	var base proposalCache
	base.add(cp("a"))
	base.add(cp("b"))
	base.add(cp("a")) // duplicate
	x, y := base, base
	x.add(cp("x")) // extends the shared log in place
	y.add(cp("y")) // same prefix, log already extended: forks
	x.add(cp("z"))
	for _, tc := range []struct {
		c    *proposalCache
		want string
	}{{&base, "ab"}, {&x, "abxz"}, {&y, "aby"}} {
		if got := refs(tc.c); got != tc.want {
			t.Errorf("proposals %q, want %q", got, tc.want)
		}
		for _, r := range []string{"a", "b", "x", "y", "z"} {
			_, ok := tc.c.find([]byte(r))
			if want := contains(tc.want, r); ok != want {
				t.Errorf("cache %q: find(%s) = %v, want %v", tc.want, r, ok, want)
			}
		}
	}
	if x.log != base.log || y.log == base.log {
		t.Error("x should share base's log and y should have forked")
	}
	var empty proposalCache
	if _, ok := empty.find([]byte("a")); ok || empty.len() != 0 || len(empty.all()) != 0 {
		t.Error("the zero cache is not empty")
	}
}

func contains(s, r string) bool {
	for _, c := range s {
		if string(c) == r {
			return true
		}
	}
	return false
}

// BenchmarkProposalCacheAdd: adding to an epoch's cache after n proposals
// costs the same for every n (a state copy plus an append).
func BenchmarkProposalCacheAdd(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var c proposalCache
			for i := range n {
				c.add(cachedProposal{ref: fmt.Appendf(nil, "p%d", i)})
			}
			refs := make([][]byte, b.N)
			for i := range refs {
				refs[i] = fmt.Appendf(nil, "q%d", i)
			}
			b.ResetTimer()
			for i := range b.N {
				next := c // what a state clone does
				next.add(cachedProposal{ref: refs[i]})
				c = next
			}
		})
	}
}
