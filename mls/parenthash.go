package mls

import (
	"errors"
	"fmt"
	"slices"
)

// Parent hashes (RFC 9420, Section 7.9):
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    opaque parent_hash<V>;
//	    opaque original_sibling_tree_hash<V>;
//	} ParentHashInput;

// ErrBadParentHash reports a parent node that is not parent-hash valid, or
// an UpdatePath leaf whose parent_hash does not match (RFC 9420, Section
// 7.9.2).
var ErrBadParentHash = errors.New("mls: parent hash mismatch")

// TreeError reports the node at which a received tree or UpdatePath failed
// a check. Err is one of the package's sentinels (such as
// [ErrBadParentHash], [ErrBadTreeHash], [ErrDuplicateKey]) or wraps
// [ErrBadSignature]. A TreeError also matches [ErrInvalidMessage].
type TreeError struct {
	Node NodeIndex
	Err  error
}

// Error describes the failure and the node.
func (e *TreeError) Error() string {
	return fmt.Sprintf("mls: ratchet tree node %d: %v", e.Node, e.Err)
}

// Unwrap returns Err and [ErrInvalidMessage].
func (e *TreeError) Unwrap() []error { return []error{e.Err, ErrInvalidMessage} }

// parentHash returns Hash(ParentHashInput) for a node with encryption key
// enc and parent_hash ph whose copath child has (original) tree hash sib.
func parentHash(hs *rtHasher, enc, ph, sib []byte) []byte {
	b := appendVarintOpaque(hs.buf[:0], enc)
	b = appendVarintOpaque(b, ph)
	hs.buf = appendVarintOpaque(b, sib)
	return hs.sum(nil)
}

// nodeParentHash returns the parent_hash field of node x: a parent's, or a
// leaf's whose leaf_node_source is commit.
func (t *Tree) nodeParentHash(x NodeIndex) ([]byte, bool) {
	if l, ok := x.LeafIndex(); ok {
		ln, ok := t.Leaf(l)
		if !ok || ln.Source != LeafNodeSourceCommit {
			return nil, false
		}
		return ln.ParentHash, true
	}
	p := t.parent(x)
	if p == nil {
		return nil, false
	}
	return p.ParentHash, true
}

// VerifyParentHashes checks that every non-blank parent node is parent-hash
// valid (RFC 9420, Section 7.9.2), top down: each has exactly one child C
// with a descendant D such that D is in C's resolution, the resolution of C
// without D equals P's unmerged leaves under C, and D's parent_hash is the
// parent hash of P with copath child S, the other child. Unmerged leaves
// must be sorted (see [Tree.Validate]). It returns a [*TreeError] wrapping
// [ErrBadParentHash].
func (t *Tree) VerifyParentHashes() error {
	if t.nLeaves == 0 {
		return ErrEmptyTree
	}
	hs := t.newHasher()
	t.treeHash(t.root(), hs) // fill the cache
	var res []NodeIndex
	var err error
	t.walkParents(t.root(), func(x NodeIndex, p *ParentNode) bool {
		valid := 0
		for _, c := range []NodeIndex{rtLeft(x), rtRight(x)} {
			s := rtLeft(x)
			if s == c {
				s = rtRight(x)
			}
			res = t.appendResolution(res[:0], c, nil)
			d, ok := chainChild(res, p.UnmergedLeaves, c)
			if !ok {
				continue
			}
			dph, ok := t.nodeParentHash(d)
			if !ok {
				continue
			}
			sib := t.treeHashExcluding(s, p.UnmergedLeaves, hs)
			if string(parentHash(hs, p.EncryptionKey, p.ParentHash, sib)) == string(dph) {
				valid++
			}
		}
		if valid != 1 {
			err = &TreeError{Node: x, Err: ErrBadParentHash}
			return false
		}
		return true
	})
	return err
}

// walkParents calls f on every non-blank parent under x until f returns
// false, skipping blank subtrees. It returns false if f stopped it.
func (t *Tree) walkParents(x NodeIndex, f func(NodeIndex, *ParentNode) bool) bool {
	if x.IsLeaf() || t.subtreeNodes(x) == 0 {
		return true
	}
	if p := t.parent(x); p != nil && !f(x, p) {
		return false
	}
	return t.walkParents(rtLeft(x), f) && t.walkParents(rtRight(x), f)
}

// chainChild returns the single node D of res (the resolution of child c)
// such that res minus D is exactly the unmerged leaves of the parent that lie
// under c.
func chainChild(res []NodeIndex, unmerged []LeafIndex, c NodeIndex) (NodeIndex, bool) {
	under := 0
	for _, l := range unmerged {
		if rtInSubtree(l.NodeIndex(), c) {
			under++
		}
	}
	if len(res) != under+1 {
		return 0, false
	}
	var d NodeIndex
	found := false
	for _, x := range res {
		if l, ok := x.LeafIndex(); ok && slices.Contains(unmerged, l) {
			continue
		}
		if found {
			return 0, false
		}
		d, found = x, true
	}
	return d, found
}

// setPath sets the nodes of a filtered direct path to the given public keys
// with empty unmerged leaves and parent hashes chained from the root down
// (RFC 9420, Sections 7.5 and 7.9.1), and returns the parent hash the
// sender's leaf must carry (empty if the path is empty). The caller has
// blanked the direct path; the copath subtrees are untouched, so their tree
// hashes are the original sibling tree hashes.
func (t *Tree) setPath(steps []pathStep, pubs [][]byte) []byte {
	hs := t.newHasher()
	var above []byte
	for k := len(steps) - 1; k >= 0; k-- {
		n := &ParentNode{EncryptionKey: pubs[k], ParentHash: above}
		t.setParent(steps[k].node, n)
		sib := t.treeHash(steps[k].copath, hs)
		above = parentHash(hs, n.EncryptionKey, n.ParentHash, sib)
	}
	if above == nil {
		above = []byte{}
	}
	return above
}
