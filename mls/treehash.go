package mls

import (
	"encoding/binary"
	"hash"
	"slices"
)

// Tree hashes (RFC 9420, Section 7.8):
//
//	struct {
//	    NodeType node_type;
//	    select (TreeHashInput.node_type) {
//	        case leaf:   LeafNodeHashInput leaf_node;   // uint32 leaf_index; optional<LeafNode>
//	        case parent: ParentNodeHashInput parent_node; // optional<ParentNode>; left_hash<V>; right_hash<V>
//	    };
//	} TreeHashInput;
//
// Every node's hash is cached in its chunk with a validity bit. The
// invariant "if a node's hash is invalid then so is its parent's" lets a
// write invalidate only up to the first node that is already invalid, and
// lets [Tree.TreeHash] recompute exactly the invalid nodes: after k writes,
// O(k log n) hashes.

// rtHasher is a reusable hash state and scratch buffer.
type rtHasher struct {
	h   hash.Hash
	buf []byte
}

func (t *Tree) newHasher() *rtHasher {
	p, _ := t.cs.params() // t.cs was checked when the tree was made
	return &rtHasher{h: p.newHash()}
}

// sum hashes hs.buf and appends the digest to dst.
func (hs *rtHasher) sum(dst []byte) []byte {
	hs.h.Reset()
	hs.h.Write(hs.buf)
	return hs.h.Sum(dst)
}

// appendVarint appends n as a minimal RFC 9420 varint (Section 2.1.2).
// Callers keep n below 2^30.
func appendVarint(b []byte, n int) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, 0x40|byte(n>>8), byte(n))
	default:
		return append(b, 0x80|byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendVarintOpaque appends opaque data<V>.
func appendVarintOpaque(b, data []byte) []byte {
	return append(appendVarint(b, len(data)), data...)
}

// appendParentNode appends the encoding of p (RFC 9420, Section 7.1),
// leaving out the unmerged leaves in exclude (sorted).
func appendParentNode(b []byte, p *ParentNode, exclude []LeafIndex) []byte {
	b = appendVarintOpaque(b, p.EncryptionKey)
	b = appendVarintOpaque(b, p.ParentHash)
	n := 0
	for _, l := range p.UnmergedLeaves {
		if !rtContains(exclude, l) {
			n++
		}
	}
	b = appendVarint(b, 4*n)
	for _, l := range p.UnmergedLeaves {
		if !rtContains(exclude, l) {
			b = binary.BigEndian.AppendUint32(b, uint32(l))
		}
	}
	return b
}

func (c *rtChunk) hashValid(o int) bool { return c.hashOK[o/64]&(1<<(o%64)) != 0 }

// invalidate marks the cached hashes of x and its ancestors invalid.
func (t *Tree) invalidate(x NodeIndex) {
	root := t.root()
	for y := x; ; y = parentStep(y) {
		c, o := t.chunkR(y)
		if !c.hashValid(o) {
			return // by the invariant, every ancestor is invalid too
		}
		c, o = t.chunkW(y)
		c.hashOK[o/64] &^= 1 << (o % 64)
		if y == root {
			return
		}
	}
}

// treeHash returns the tree hash of x, computing and caching every invalid
// hash below it. The result aliases the cache: copy it before the next write.
func (t *Tree) treeHash(x NodeIndex, hs *rtHasher) []byte {
	c, o := t.chunkR(x)
	if c.hashValid(o) {
		return c.hash[o*t.nh : (o+1)*t.nh]
	}
	if x.IsLeaf() {
		hs.buf = t.appendLeafHashInput(hs.buf[:0], x, nil)
	} else {
		lh := t.treeHash(rtLeft(x), hs)
		rh := t.treeHash(rtRight(x), hs)
		hs.buf = appendParentHashInputTH(hs.buf[:0], t.parent(x), nil, lh, rh)
	}
	c, o = t.chunkW(x)
	hs.sum(c.hash[o*t.nh : o*t.nh])
	c.hashOK[o/64] |= 1 << (o % 64)
	return c.hash[o*t.nh : (o+1)*t.nh]
}

// appendLeafHashInput appends TreeHashInput for leaf node x, treating it as
// blank if its leaf index is in exclude.
func (t *Tree) appendLeafHashInput(b []byte, x NodeIndex, exclude []LeafIndex) []byte {
	l, _ := x.LeafIndex()
	b = append(b, byte(NodeTypeLeaf))
	b = binary.BigEndian.AppendUint32(b, uint32(l))
	raw := t.leafRaw(l)
	if raw == nil || rtContains(exclude, l) {
		return append(b, 0)
	}
	b = append(b, 1)
	return append(b, raw...)
}

// appendParentHashInputTH appends TreeHashInput for a parent node p (nil if
// blank) with the given child hashes.
func appendParentHashInputTH(b []byte, p *ParentNode, exclude []LeafIndex, lh, rh []byte) []byte {
	b = append(b, byte(NodeTypeParent))
	if p == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendParentNode(b, p, exclude)
	}
	b = appendVarintOpaque(b, lh)
	return appendVarintOpaque(b, rh)
}

// TreeHash returns the tree hash of the root (RFC 9420, Section 7.8), the
// tree_hash of the GroupContext.
func (t *Tree) TreeHash() ([]byte, error) {
	if t.nLeaves == 0 {
		return nil, ErrEmptyTree
	}
	return slices.Clone(t.treeHash(t.root(), t.newHasher())), nil
}

// NodeTreeHash returns the tree hash of the subtree rooted at x.
func (t *Tree) NodeTreeHash(x NodeIndex) ([]byte, error) {
	if uint32(x) >= t.width() {
		return nil, treeErr("node %d not in a tree of %d leaves", x, t.nLeaves)
	}
	return slices.Clone(t.treeHash(x, t.newHasher())), nil
}

// spanHas reports whether a leaf of x's subtree is in sorted.
func spanHas(sorted []LeafIndex, x NodeIndex) bool {
	lo, n := rtLeafSpan(x)
	i, _ := slices.BinarySearch(sorted, lo)
	return i < len(sorted) && uint32(sorted[i]) < uint32(lo)+n
}

// treeHashExcluding returns the tree hash of x in the tree where every leaf
// in exclude (sorted) is blank and removed from all unmerged_leaves lists:
// the original_sibling_tree_hash of RFC 9420, Section 7.9. Subtrees that
// hold no excluded leaf use the cache. The result is freshly allocated or
// aliases the cache.
func (t *Tree) treeHashExcluding(x NodeIndex, exclude []LeafIndex, hs *rtHasher) []byte {
	if !spanHas(exclude, x) {
		return t.treeHash(x, hs)
	}
	if x.IsLeaf() {
		hs.buf = t.appendLeafHashInput(hs.buf[:0], x, exclude)
		return hs.sum(nil)
	}
	lh := t.treeHashExcluding(rtLeft(x), exclude, hs)
	rh := t.treeHashExcluding(rtRight(x), exclude, hs)
	hs.buf = appendParentHashInputTH(hs.buf[:0], t.parent(x), exclude, lh, rh)
	return hs.sum(nil)
}
