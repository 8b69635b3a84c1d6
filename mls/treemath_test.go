package mls

import (
	"errors"
	"slices"
	"testing"
)

func TestTreeMathSmallTree(t *testing.T) {
	t.Parallel()
	// The 4-leaf tree of RFC 9420, Appendix C:
	//
	//	       3
	//	   1       5
	//	 0   2   4   6
	const n = 4
	if w := NodeWidth(n); w != 7 {
		t.Fatalf("NodeWidth = %d", w)
	}
	if r, _ := Root(n); r != 3 {
		t.Fatalf("Root = %d", r)
	}
	dp, _ := DirectPath(0, n)
	cp, _ := Copath(0, n)
	if !slices.Equal(dp, []NodeIndex{1, 3}) || !slices.Equal(cp, []NodeIndex{2, 5}) {
		t.Errorf("DirectPath(0) = %v, Copath(0) = %v", dp, cp)
	}
	dp, _ = DirectPath(3, n)
	cp, _ = Copath(3, n)
	if len(dp) != 0 || len(cp) != 0 {
		t.Errorf("root: DirectPath = %v, Copath = %v", dp, cp)
	}
	for _, tt := range []struct{ x, y, want NodeIndex }{
		{0, 2, 1}, {0, 6, 3}, {4, 6, 5}, {2, 4, 3}, {1, 0, 1}, {5, 5, 5}, {3, 6, 3},
	} {
		if got := CommonAncestor(tt.x, tt.y); got != tt.want {
			t.Errorf("CommonAncestor(%d, %d) = %d, want %d", tt.x, tt.y, got, tt.want)
		}
	}
	if l, ok := NodeIndex(6).LeafIndex(); !ok || l != 3 {
		t.Errorf("LeafIndex(6) = %d, %v", l, ok)
	}
	if _, ok := NodeIndex(5).LeafIndex(); ok {
		t.Error("node 5 is a leaf")
	}
	if LeafIndex(3).NodeIndex() != 6 || NodeIndex(7).Level() != 3 || NodeIndex(0xffffffff).Level() != 32 {
		t.Error("NodeIndex/Level wrong")
	}
}

func TestTreeMathOutOfRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    func() error
	}{
		{"root of empty tree", func() error { _, err := Root(0); return err }},
		{"root of oversized tree", func() error { _, err := Root(MaxLeaves + 1); return err }},
		{"parent of root", func() error { _, err := Parent(3, 4); return err }},
		{"parent outside tree", func() error { _, err := Parent(7, 4); return err }},
		{"parent in empty tree", func() error { _, err := Parent(0, 0); return err }},
		{"left of leaf", func() error { _, err := Left(4); return err }},
		{"right of leaf", func() error { _, err := Right(4, 4); return err }},
		{"right outside tree", func() error { _, err := Right(9, 4); return err }},
		{"sibling of root", func() error { _, err := Sibling(3, 4); return err }},
		{"sibling outside tree", func() error { _, err := Sibling(100, 4); return err }},
		{"direct path outside tree", func() error { _, err := DirectPath(0xffffffff, 4); return err }},
		{"copath outside tree", func() error { _, err := Copath(8, 4); return err }},
		{"copath oversized tree", func() error { _, err := Copath(0, 0xffffffff); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f(); !errors.Is(err, ErrTreeIndexOutOfRange) {
				t.Errorf("err = %v, want ErrTreeIndexOutOfRange", err)
			}
		})
	}
	if NodeWidth(0) != 0 || NodeWidth(MaxLeaves+1) != 0 || NodeWidth(MaxLeaves) != 0xffffffff {
		t.Error("NodeWidth bounds wrong")
	}
	if LeafIndex(4).InTree(4) || !LeafIndex(3).InTree(4) || NodeIndex(7).InTree(4) || !NodeIndex(6).InTree(4) {
		t.Error("InTree wrong")
	}
}

// TestTreeMathLargestTree runs the size-dependent functions at the edge of
// the index space, where a careless shift would overflow or loop.
func TestTreeMathLargestTree(t *testing.T) {
	t.Parallel()
	for _, n := range []uint32{MaxLeaves, MaxLeaves - 1, 1<<30 + 1} {
		root, err := Root(n)
		if err != nil || root != 1<<31-1 {
			t.Fatalf("Root(%d) = %d, %v", n, root, err)
		}
		last := LeafIndex(n - 1).NodeIndex()
		for _, x := range []NodeIndex{0, last, root - 1, root + 1} {
			dp, err := DirectPath(x, n)
			if err != nil || len(dp) == 0 || dp[len(dp)-1] != root || len(dp) > 31 {
				t.Fatalf("n=%d DirectPath(%d) = %v, %v", n, x, dp, err)
			}
			cp, err := Copath(x, n)
			if err != nil || len(cp) != len(dp) {
				t.Fatalf("n=%d Copath(%d) = %v, %v", n, x, cp, err)
			}
		}
	}
}

// TestTreeMathConsistency checks the relations between the functions on
// every node of every tree up to 70 leaves, power of two or not.
func TestTreeMathConsistency(t *testing.T) {
	t.Parallel()
	for n := uint32(1); n <= 70; n++ {
		w := NodeWidth(n)
		root, _ := Root(n)
		for x := NodeIndex(0); uint32(x) < w; x++ {
			if x.Level() > 0 {
				l, err := Left(x)
				if err != nil || !l.InTree(n) {
					t.Fatalf("n=%d Left(%d) = %d, %v", n, x, l, err)
				}
				r, err := Right(x, n)
				if err != nil || !r.InTree(n) || r <= x || l >= x {
					t.Fatalf("n=%d Right(%d) = %d, %v", n, x, r, err)
				}
				for _, c := range []NodeIndex{l, r} {
					if p, err := Parent(c, n); err != nil || p != x {
						t.Fatalf("n=%d Parent(child %d of %d) = %d, %v", n, c, x, p, err)
					}
				}
				if s, _ := Sibling(l, n); s != r {
					t.Fatalf("n=%d Sibling(%d) = %d, want %d", n, l, s, r)
				}
			}
			dp, err := DirectPath(x, n)
			if err != nil {
				t.Fatal(err)
			}
			if x == root {
				if len(dp) != 0 {
					t.Fatalf("n=%d root direct path %v", n, dp)
				}
				continue
			}
			if dp[len(dp)-1] != root {
				t.Fatalf("n=%d DirectPath(%d) = %v does not end at root %d", n, x, dp, root)
			}
			cp, _ := Copath(x, n)
			if len(cp) != len(dp) {
				t.Fatalf("n=%d Copath(%d) = %v vs DirectPath %v", n, x, cp, dp)
			}
			for i, s := range cp {
				// Each copath node is a child of the matching direct-path node.
				if p, _ := Parent(s, n); p != dp[i] {
					t.Fatalf("n=%d Copath(%d)[%d] = %d has parent %d, want %d", n, x, i, s, p, dp[i])
				}
			}
			// The common ancestor of x and any leaf is on x's direct path
			// (or x itself).
			for l := uint32(0); l < n; l++ {
				a := CommonAncestor(x, LeafIndex(l).NodeIndex())
				if a != x && !slices.Contains(dp, a) {
					t.Fatalf("n=%d CommonAncestor(%d, leaf %d) = %d not on %v", n, x, l, a, dp)
				}
			}
		}
	}
}
