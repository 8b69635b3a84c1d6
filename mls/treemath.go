package mls

import (
	"errors"
	"fmt"
	"math/bits"
)

// Tree math for the left-balanced binary trees of RFC 9420 (Section 4.1 and
// Appendix C). Nodes are numbered in-order: leaves have even indices, parent
// nodes odd ones, and a node's level is the number of trailing one bits.
//
// RFC 9420 trees always have a power-of-two number of leaves, and every
// function here gives the Appendix C answer for those. For any other leaf
// count n the functions describe the left-balanced tree of n leaves (width
// 2n-1): a step that would leave the tree descends or ascends to the nearest
// node inside it, as in earlier drafts. Every function that depends on the
// tree size checks its inputs and returns an error wrapping
// [ErrTreeIndexOutOfRange] rather than panicking or wrapping around, since
// indices come from peers.

// LeafIndex numbers the leaves of a ratchet tree from 0.
type LeafIndex uint32

// NodeIndex numbers all nodes of a ratchet tree in-order from 0.
type NodeIndex uint32

// MaxLeaves is the largest leaf count the tree math accepts, so that every
// node index fits in a [NodeIndex] (the width is then 2^32 - 1).
const MaxLeaves = 1 << 31

// ErrTreeIndexOutOfRange is wrapped by every tree-math error: a node or leaf
// index outside the tree, a leaf count of 0 or above [MaxLeaves], or an
// operation that is undefined at that node (the root's parent, a leaf's
// children).
var ErrTreeIndexOutOfRange = errors.New("mls: tree index out of range")

func treeErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTreeIndexOutOfRange}, args...)...)
}

// NodeIndex returns the node index of leaf l (2*l). It is meaningful for
// l < [MaxLeaves]; larger values wrap, so check leaves against the tree size
// (see [LeafIndex.InTree]) before using them.
func (l LeafIndex) NodeIndex() NodeIndex { return NodeIndex(2 * l) }

// InTree reports whether l is a leaf of a tree with nLeaves leaves.
func (l LeafIndex) InTree(nLeaves uint32) bool { return uint32(l) < nLeaves && nLeaves <= MaxLeaves }

// IsLeaf reports whether x is a leaf node (even index).
func (x NodeIndex) IsLeaf() bool { return x&1 == 0 }

// LeafIndex returns the leaf index of x and true if x is a leaf node.
func (x NodeIndex) LeafIndex() (LeafIndex, bool) {
	if !x.IsLeaf() {
		return 0, false
	}
	return LeafIndex(x / 2), true
}

// Level returns the level of x in the tree: 0 for leaves, the number of
// trailing one bits otherwise.
func (x NodeIndex) Level() uint { return uint(bits.TrailingZeros32(^uint32(x))) }

// InTree reports whether x is a node of a tree with nLeaves leaves.
func (x NodeIndex) InTree(nLeaves uint32) bool { return uint64(x) < uint64(NodeWidth(nLeaves)) }

// NodeWidth returns the number of nodes of a tree with nLeaves leaves:
// 0 for an empty tree, 2*(nLeaves-1)+1 otherwise. It returns 0 for
// nLeaves > [MaxLeaves].
func NodeWidth(nLeaves uint32) uint32 {
	if nLeaves == 0 || nLeaves > MaxLeaves {
		return 0
	}
	return 2*(nLeaves-1) + 1
}

func checkLeafCount(nLeaves uint32) error {
	if nLeaves == 0 || nLeaves > MaxLeaves {
		return treeErr("leaf count %d not in [1, 2^31]", nLeaves)
	}
	return nil
}

func checkNode(x NodeIndex, nLeaves uint32) error {
	if err := checkLeafCount(nLeaves); err != nil {
		return err
	}
	if !x.InTree(nLeaves) {
		return treeErr("node %d not in a tree of %d leaves", x, nLeaves)
	}
	return nil
}

// Root returns the root node of a tree with nLeaves leaves.
func Root(nLeaves uint32) (NodeIndex, error) {
	if err := checkLeafCount(nLeaves); err != nil {
		return 0, err
	}
	w := NodeWidth(nLeaves)
	return NodeIndex(uint32(1)<<(bits.Len32(w)-1) - 1), nil
}

// Left returns the left child of the parent node x. It needs no tree size:
// the left child of a node in the tree is always in the tree.
func Left(x NodeIndex) (NodeIndex, error) {
	k := x.Level()
	if k == 0 {
		return 0, treeErr("leaf %d has no children", x)
	}
	return x ^ NodeIndex(1)<<(k-1), nil
}

// Right returns the right child of the parent node x in a tree of nLeaves
// leaves.
func Right(x NodeIndex, nLeaves uint32) (NodeIndex, error) {
	if err := checkNode(x, nLeaves); err != nil {
		return 0, err
	}
	k := x.Level()
	if k == 0 {
		return 0, treeErr("leaf %d has no children", x)
	}
	r := x ^ NodeIndex(3)<<(k-1)
	// In a tree whose size is not a power of two the right child may lie
	// outside it; descend left until it is inside (never reached for the
	// power-of-two trees of RFC 9420).
	for !r.InTree(nLeaves) {
		r, _ = Left(r)
	}
	return r, nil
}

// parentStep is Appendix C's parent() without the tree-size check.
func parentStep(x NodeIndex) NodeIndex {
	k := x.Level()
	b := (x >> (k + 1)) & 1
	return (x | NodeIndex(1)<<k) ^ (b << (k + 1))
}

// Parent returns the parent of x in a tree of nLeaves leaves; the root has
// none.
func Parent(x NodeIndex, nLeaves uint32) (NodeIndex, error) {
	if err := checkNode(x, nLeaves); err != nil {
		return 0, err
	}
	root, _ := Root(nLeaves)
	if x == root {
		return 0, treeErr("root %d has no parent", x)
	}
	p := parentStep(x)
	for !p.InTree(nLeaves) {
		p = parentStep(p)
	}
	return p, nil
}

// Sibling returns the other child of x's parent.
func Sibling(x NodeIndex, nLeaves uint32) (NodeIndex, error) {
	p, err := Parent(x, nLeaves)
	if err != nil {
		return 0, err
	}
	if x < p {
		return Right(p, nLeaves)
	}
	return Left(p)
}

// DirectPath returns the parents of x from its parent up to the root, in
// that order; empty for the root.
func DirectPath(x NodeIndex, nLeaves uint32) ([]NodeIndex, error) {
	if err := checkNode(x, nLeaves); err != nil {
		return nil, err
	}
	root, _ := Root(nLeaves)
	path := make([]NodeIndex, 0, root.Level())
	for x != root {
		x, _ = Parent(x, nLeaves)
		path = append(path, x)
	}
	return path, nil
}

// Copath returns the siblings of x and of each node of its direct path
// except the root, from the bottom up; empty for the root.
func Copath(x NodeIndex, nLeaves uint32) ([]NodeIndex, error) {
	path, err := DirectPath(x, nLeaves)
	if err != nil {
		return nil, err
	}
	if len(path) == 0 {
		return path, nil
	}
	// The nodes whose siblings form the copath: x, then the direct path
	// without the root.
	out := make([]NodeIndex, len(path))
	cur := x
	for i := range path {
		s, _ := Sibling(cur, nLeaves)
		out[i] = s
		cur = path[i]
	}
	return out, nil
}

// CommonAncestor returns the lowest node that has both x and y as
// descendants (or is one of them). It is the same in every tree that holds
// both nodes, so it takes no tree size.
func CommonAncestor(x, y NodeIndex) NodeIndex {
	// Appendix C common_ancestor_direct: the ancestor is the longest common
	// bit prefix, followed by a 0 and then ones.
	lx, ly := x.Level()+1, y.Level()+1
	if lx <= ly && x>>ly == y>>ly {
		return y
	}
	if ly <= lx && x>>lx == y>>lx {
		return x
	}
	xn, yn := uint64(x), uint64(y)
	k := uint(0)
	for xn != yn {
		xn >>= 1
		yn >>= 1
		k++
	}
	return NodeIndex((xn << k) + (1 << (k - 1)) - 1)
}
