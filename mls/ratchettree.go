package mls

import (
	"errors"
	"iter"
	"slices"
)

// Tree is the in-memory ratchet tree of one epoch of a group (RFC 9420,
// Sections 4.1 and 7): leaves holding members' LeafNodes, parent nodes
// holding HPKE public keys, blanks, and the unmerged leaves of each parent.
// The tree always has a power-of-two number of leaves (Section 7.7).
//
// # Cost model
//
// A Tree is built for groups of 50,000 members and more:
//
//   - Tree hashes (Section 7.8) are cached per node and recomputed only along
//     the paths that changed, so a commit costs O(log n) hashing.
//   - Every parent caches how many non-blank nodes and leaves its subtree
//     holds, so resolutions, filtered direct paths, the leftmost blank leaf
//     and truncation skip blank regions instead of scanning them.
//   - Encryption and signature keys are indexed, so the uniqueness checks of
//     Sections 7.3 and 12.4.2 cost O(1) per key rather than O(n).
//   - Leaves are stored in their wire encoding (about 200 bytes each for
//     suite 1) and decoded on demand by [Tree.Leaf].
//   - [Tree.Clone] is copy-on-write: nodes live in chunks of 256 that two
//     clones share until one of them writes to a chunk, so a snapshot per
//     branch or per epoch costs a few kilobytes, not a copy of the tree.
//
// # Concurrency
//
// A Tree is not safe for concurrent use, with one exception: the read-only
// per-leaf validation [Tree.ValidateLeaves] may run concurrently on disjoint
// (or even overlapping) leaf ranges of one tree as long as nothing modifies
// it meanwhile. Even [Tree.TreeHash] writes to the cache.
//
// Values returned by accessors ([Tree.ParentNode], [Tree.Leaf], key slices)
// must be treated as read-only.
type Tree struct {
	cs      CipherSuite
	nh      int
	nLeaves uint32 // a power of two, or 0 for a tree not yet populated
	owner   *rtOwner
	chunks  []*rtChunk
	enc     rtKeyIndex // encryption keys of all nodes
	sig     rtKeyIndex // signature keys of leaves
	caps    *rtCaps
	capsOwn bool
}

// Errors of ratchet tree operations.
var (
	// ErrBlankLeaf reports an operation on a leaf that must be occupied
	// (e.g. Update or Remove of a blank leaf, RFC 9420, Section 12.1.3).
	ErrBlankLeaf = errors.New("mls: leaf is blank")
	// ErrTreeTooLarge reports a tree that would exceed [MaxLeaves] leaves.
	ErrTreeTooLarge = errors.New("mls: ratchet tree too large")
	// ErrEmptyTree reports an operation that needs at least one leaf.
	ErrEmptyTree = errors.New("mls: ratchet tree has no leaves")
)

const (
	rtChunkShift = 8
	rtChunkNodes = 1 << rtChunkShift
	rtChunkHalf  = rtChunkNodes / 2
	rtChunkMask  = rtChunkNodes - 1
)

// rtOwner identifies the tree allowed to write a chunk in place. It has a
// non-zero size so that distinct owners have distinct addresses.
type rtOwner struct{ _ byte }

// rtChunk holds 256 consecutive nodes: leaves at even, parents at odd
// indices.
type rtChunk struct {
	owner   *rtOwner
	leaves  [rtChunkHalf][]byte      // LeafNode encodings; nil if blank
	parents [rtChunkHalf]*ParentNode // nil if blank; never mutated once stored
	nodeCnt [rtChunkHalf]uint32      // per parent: non-blank nodes in its subtree
	leafCnt [rtChunkHalf]uint32      // per parent: non-blank leaves in its subtree
	hashOK  [rtChunkNodes / 64]uint64
	hash    []byte // tree hash cache, nh bytes per node
}

// NewTree returns an empty ratchet tree for cs. Add the first member with
// [Tree.AddLeaf].
func NewTree(cs CipherSuite) (*Tree, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	return &Tree{cs: cs, nh: p.nh, owner: new(rtOwner), caps: newRTCaps(), capsOwn: true}, nil
}

// CipherSuite returns the tree's cipher suite.
func (t *Tree) CipherSuite() CipherSuite { return t.cs }

// LeafCount returns the number of leaves, blank or not (a power of two).
func (t *Tree) LeafCount() uint32 { return t.nLeaves }

// MemberCount returns the number of non-blank leaves.
func (t *Tree) MemberCount() int {
	if t.nLeaves == 0 {
		return 0
	}
	return int(t.subtreeLeaves(t.root()))
}

// Clone returns an independent copy of t. It is cheap (O(n/256) pointer
// copies): both trees share node storage until either writes to it.
func (t *Tree) Clone() *Tree {
	c := *t
	c.chunks = slices.Clone(t.chunks)
	t.owner, c.owner = new(rtOwner), new(rtOwner)
	c.enc = t.enc.clone()
	c.sig = t.sig.clone()
	t.capsOwn, c.capsOwn = false, false
	return &c
}

func (t *Tree) root() NodeIndex { return NodeIndex(t.nLeaves - 1) }

func (t *Tree) width() uint32 { return NodeWidth(t.nLeaves) }

// rtLeft and rtRight are the children of parent x in a full tree.
func rtLeft(x NodeIndex) NodeIndex  { return x ^ NodeIndex(1)<<(x.Level()-1) }
func rtRight(x NodeIndex) NodeIndex { return x ^ NodeIndex(3)<<(x.Level()-1) }

// rtLeafSpan returns the first leaf and the leaf count of x's subtree.
func rtLeafSpan(x NodeIndex) (LeafIndex, uint32) {
	k := x.Level()
	return LeafIndex((uint32(x) - (uint32(1)<<k - 1)) / 2), uint32(1) << k
}

// inSubtree reports whether node y is in the subtree rooted at x.
func rtInSubtree(y, x NodeIndex) bool {
	k := x.Level()
	lo := uint64(x) - (uint64(1)<<k - 1)
	hi := uint64(x) + (uint64(1)<<k - 1)
	return uint64(y) >= lo && uint64(y) <= hi
}

func (t *Tree) chunkR(x NodeIndex) (*rtChunk, int) {
	return t.chunks[x>>rtChunkShift], int(x & rtChunkMask)
}

// chunkW returns x's chunk for writing, copying it first if it is shared.
func (t *Tree) chunkW(x NodeIndex) (*rtChunk, int) {
	i := x >> rtChunkShift
	c := t.chunks[i]
	if c.owner != t.owner {
		n := *c
		n.owner = t.owner
		n.hash = slices.Clone(c.hash)
		c = &n
		t.chunks[i] = c
	}
	return c, int(x & rtChunkMask)
}

func (t *Tree) newChunk() *rtChunk {
	return &rtChunk{owner: t.owner, hash: make([]byte, rtChunkNodes*t.nh)}
}

// leafRaw returns the encoding of leaf i, nil if blank or out of range.
func (t *Tree) leafRaw(i LeafIndex) []byte {
	if uint32(i) >= t.nLeaves {
		return nil
	}
	c, o := t.chunkR(i.NodeIndex())
	return c.leaves[o>>1]
}

// parent returns the parent node x, nil if blank or out of range.
func (t *Tree) parent(x NodeIndex) *ParentNode {
	if x.IsLeaf() || uint32(x) >= t.width() {
		return nil
	}
	c, o := t.chunkR(x)
	return c.parents[o>>1]
}

// subtreeNodes returns the number of non-blank nodes under x (inclusive).
func (t *Tree) subtreeNodes(x NodeIndex) uint32 {
	c, o := t.chunkR(x)
	if x.IsLeaf() {
		if c.leaves[o>>1] != nil {
			return 1
		}
		return 0
	}
	return c.nodeCnt[o>>1]
}

// subtreeLeaves returns the number of non-blank leaves under x.
func (t *Tree) subtreeLeaves(x NodeIndex) uint32 {
	if x.IsLeaf() {
		return t.subtreeNodes(x)
	}
	c, o := t.chunkR(x)
	return c.leafCnt[o>>1]
}

// adjustCounts adds dn non-blank nodes and dl non-blank leaves to the counts
// of x (if a parent) and every ancestor of x.
func (t *Tree) adjustCounts(x NodeIndex, dn, dl int32) {
	root := t.root()
	y := x
	if y.IsLeaf() {
		if y == root {
			return
		}
		y = parentStep(y)
	}
	for {
		c, o := t.chunkW(y)
		c.nodeCnt[o>>1] = uint32(int32(c.nodeCnt[o>>1]) + dn)
		c.leafCnt[o>>1] = uint32(int32(c.leafCnt[o>>1]) + dl)
		if y == root {
			return
		}
		y = parentStep(y)
	}
}

// Leaf returns the decoded LeafNode at leaf i, or false if the leaf is blank
// or outside the tree. Each call decodes a fresh copy.
func (t *Tree) Leaf(i LeafIndex) (*LeafNode, bool) {
	raw := t.leafRaw(i)
	if raw == nil {
		return nil, false
	}
	n, err := UnmarshalLeafNode(raw)
	if err != nil {
		// Stored leaves were decoded once before being stored.
		return nil, false
	}
	return n, true
}

// LeafEncryptionKey returns the encryption key of leaf i without decoding
// the whole leaf.
func (t *Tree) LeafEncryptionKey(i LeafIndex) ([]byte, bool) {
	raw := t.leafRaw(i)
	if raw == nil {
		return nil, false
	}
	enc, _ := rtLeafKeys(raw)
	return enc, true
}

// LeafSignatureKey returns the signature key of leaf i without decoding the
// whole leaf, e.g. to verify a member's message.
func (t *Tree) LeafSignatureKey(i LeafIndex) ([]byte, bool) {
	raw := t.leafRaw(i)
	if raw == nil {
		return nil, false
	}
	_, sig := rtLeafKeys(raw)
	return sig, true
}

// ParentNode returns parent node x, or false if it is blank, not a parent or
// outside the tree. The result is shared with the tree: do not modify it.
func (t *Tree) ParentNode(x NodeIndex) (*ParentNode, bool) {
	p := t.parent(x)
	return p, p != nil
}

// EncryptionKey returns the HPKE public key of node x, or false if blank.
func (t *Tree) EncryptionKey(x NodeIndex) ([]byte, bool) {
	if l, ok := x.LeafIndex(); ok {
		return t.LeafEncryptionKey(l)
	}
	if p := t.parent(x); p != nil {
		return p.EncryptionKey, true
	}
	return nil, false
}

// Members yields the index of every non-blank leaf in increasing order,
// skipping blank regions of the tree.
func (t *Tree) Members() iter.Seq[LeafIndex] {
	return func(yield func(LeafIndex) bool) {
		if t.nLeaves > 0 {
			t.walkLeaves(t.root(), yield)
		}
	}
}

func (t *Tree) walkLeaves(x NodeIndex, yield func(LeafIndex) bool) bool {
	if t.subtreeLeaves(x) == 0 {
		return true
	}
	if l, ok := x.LeafIndex(); ok {
		return yield(l)
	}
	return t.walkLeaves(rtLeft(x), yield) && t.walkLeaves(rtRight(x), yield)
}

// FindLeaf returns the index of the leaf whose encoding equals leaf's, e.g.
// to locate a joiner's own KeyPackage leaf (RFC 9420, Section 12.4.3.1).
func (t *Tree) FindLeaf(leaf *LeafNode) (LeafIndex, bool) {
	raw, err := leaf.Marshal()
	if err != nil {
		return 0, false
	}
	_, sig := rtLeafKeys(raw)
	for _, x := range t.sig.lookup(sig, t.sigKeyOf) {
		l, _ := x.LeafIndex()
		if string(t.leafRaw(l)) == string(raw) {
			return l, true
		}
	}
	return 0, false
}

// ---------------------------------------------------------------------------
// Node writes. Every write keeps counts, key indices, capability counts and
// hash validity in step.

// setLeaf stores raw (the encoding of the decoded leaf ln) at leaf i, or
// blanks it when raw is nil.
func (t *Tree) setLeaf(i LeafIndex, raw []byte, ln *LeafNode) {
	x := i.NodeIndex()
	old := t.leafRaw(i)
	if old != nil {
		enc, sig := rtLeafKeys(old)
		t.enc.remove(enc, x, t.owner)
		t.sig.remove(sig, x, t.owner)
		if on, err := UnmarshalLeafNode(old); err == nil {
			t.capsW().count(on, -1)
		}
	}
	c, o := t.chunkW(x)
	c.leaves[o>>1] = raw
	if raw != nil {
		enc, sig := rtLeafKeys(raw)
		t.enc.add(enc, x, t.owner)
		t.sig.add(sig, x, t.owner)
		t.capsW().count(ln, +1)
	}
	switch {
	case old == nil && raw != nil:
		t.adjustCounts(x, 1, 1)
	case old != nil && raw == nil:
		t.adjustCounts(x, -1, -1)
	}
	t.invalidate(x)
}

// setParent stores p at parent node x (nil blanks it). p must not be
// modified afterwards.
func (t *Tree) setParent(x NodeIndex, p *ParentNode) {
	c, o := t.chunkW(x)
	old := c.parents[o>>1]
	if old == nil && p == nil {
		return
	}
	if old != nil {
		t.enc.remove(old.EncryptionKey, x, t.owner)
	}
	c.parents[o>>1] = p
	if p != nil {
		t.enc.add(p.EncryptionKey, x, t.owner)
	}
	switch {
	case old == nil && p != nil:
		t.adjustCounts(x, 1, 0)
	case old != nil && p == nil:
		t.adjustCounts(x, -1, 0)
	}
	t.invalidate(x)
}

// blankDirectPath blanks every parent on leaf i's direct path.
func (t *Tree) blankDirectPath(i LeafIndex) {
	root := t.root()
	for x := i.NodeIndex(); x != root; {
		x = parentStep(x)
		t.setParent(x, nil)
	}
}

// extend doubles the leaf count (or creates the first leaf).
func (t *Tree) extend() error {
	if t.nLeaves >= MaxLeaves {
		return ErrTreeTooLarge
	}
	if t.nLeaves == 0 {
		t.nLeaves = 1
		t.chunks = append(t.chunks, t.newChunk())
		return nil
	}
	oldRoot := t.root()
	nodes, leaves := t.subtreeNodes(oldRoot), t.subtreeLeaves(oldRoot)
	t.nLeaves *= 2
	need := int((t.width() + rtChunkMask) >> rtChunkShift)
	for len(t.chunks) < need {
		t.chunks = append(t.chunks, t.newChunk())
	}
	c, o := t.chunkW(t.root())
	c.nodeCnt[o>>1], c.leafCnt[o>>1] = nodes, leaves
	t.invalidate(t.root())
	return nil
}

// Truncate removes the right half of the tree while it holds no non-blank
// leaf (RFC 9420, Section 7.7), leaving at least one leaf. [Tree.RemoveLeaf]
// calls it; it is exported for callers that blank leaves otherwise.
func (t *Tree) Truncate() {
	for t.nLeaves > 1 && t.subtreeLeaves(rtRight(t.root())) == 0 {
		oldRoot := t.root()
		// Drop the keys of the discarded non-blank nodes (the old root and
		// parents of the right subtree) from the index.
		t.setParent(oldRoot, nil)
		t.blankSubtree(rtRight(oldRoot))
		t.nLeaves /= 2
		w := t.width()
		need := int((w + rtChunkMask) >> rtChunkShift)
		for i := need; i < len(t.chunks); i++ {
			t.chunks[i] = nil
		}
		t.chunks = t.chunks[:need]
		// Clear the tail of the last chunk so a later extension starts blank.
		if w&rtChunkMask != 0 {
			c, _ := t.chunkW(NodeIndex(w - 1))
			for o := int(w & rtChunkMask); o < rtChunkNodes; o++ {
				c.hashOK[o/64] &^= 1 << (o % 64)
				c.nodeCnt[o>>1], c.leafCnt[o>>1] = 0, 0
			}
		}
	}
}

// blankSubtree blanks every non-blank parent under x (its leaves are blank).
func (t *Tree) blankSubtree(x NodeIndex) {
	if x.IsLeaf() || t.subtreeNodes(x) == 0 {
		return
	}
	t.blankSubtree(rtLeft(x))
	t.blankSubtree(rtRight(x))
	t.setParent(x, nil)
}
