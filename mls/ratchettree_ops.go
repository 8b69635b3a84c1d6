package mls

import (
	"errors"
	"fmt"
	"slices"
)

// Tree operations: the effects of Add, Update and Remove proposals (RFC
// 9420, Section 12.1) and resolutions and filtered direct paths (Section
// 4.1).

// prepareLeaf encodes leaf and checks that the encoding decodes, so that
// everything stored in the tree can be decoded again. A decoded leaf (one
// that keeps its received bytes) is used as it is.
func prepareLeaf(leaf *LeafNode) ([]byte, *LeafNode, error) {
	if leaf == nil {
		return nil, nil, errors.New("mls: nil leaf node")
	}
	if leaf.raw != nil {
		return leaf.raw, leaf, nil
	}
	raw, err := leaf.Marshal()
	if err != nil {
		return nil, nil, err
	}
	dec, err := UnmarshalLeafNode(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: leaf node does not round-trip: %w", err)
	}
	return dec.raw, dec, nil
}

// firstBlankLeaf returns the leftmost blank leaf, or false if there is none.
func (t *Tree) firstBlankLeaf() (LeafIndex, bool) {
	if t.nLeaves == 0 || t.subtreeLeaves(t.root()) == t.nLeaves {
		return 0, false
	}
	x := t.root()
	for !x.IsLeaf() {
		l := rtLeft(x)
		if _, n := rtLeafSpan(l); t.subtreeLeaves(l) < n {
			x = l
		} else {
			x = rtRight(x)
		}
	}
	l, _ := x.LeafIndex()
	return l, true
}

// ReserveLeaf returns the leftmost blank leaf, extending the tree first if
// there is none, as an external joiner's leaf is chosen (RFC 9420, Section
// 12.4.3.2). The leaf stays blank until an UpdatePath fills it.
func (t *Tree) ReserveLeaf() (LeafIndex, error) {
	if l, ok := t.firstBlankLeaf(); ok {
		return l, nil
	}
	l := LeafIndex(t.nLeaves)
	if err := t.extend(); err != nil {
		return 0, err
	}
	return l, nil
}

// AddLeaf applies an Add (RFC 9420, Section 12.1.1): it places leaf at the
// leftmost blank leaf L (extending the tree if needed), and adds L to the
// unmerged leaves of every non-blank parent on L's direct path. It does not
// validate the leaf; see [Tree.CheckLeafNode].
func (t *Tree) AddLeaf(leaf *LeafNode) (LeafIndex, error) {
	raw, dec, err := prepareLeaf(leaf)
	if err != nil {
		return 0, err
	}
	l, err := t.ReserveLeaf()
	if err != nil {
		return 0, err
	}
	root := t.root()
	for x := l.NodeIndex(); x != root; {
		x = parentStep(x)
		if p := t.parent(x); p != nil {
			t.setParent(x, withUnmerged(p, l))
		}
	}
	t.setLeaf(l, raw, dec)
	return l, nil
}

// withUnmerged returns a copy of p with l inserted in its sorted unmerged
// leaves.
func withUnmerged(p *ParentNode, l LeafIndex) *ParentNode {
	i, found := slices.BinarySearch(p.UnmergedLeaves, l)
	n := &ParentNode{EncryptionKey: p.EncryptionKey, ParentHash: p.ParentHash}
	if found {
		n.UnmergedLeaves = p.UnmergedLeaves
		return n
	}
	n.UnmergedLeaves = make([]LeafIndex, 0, len(p.UnmergedLeaves)+1)
	n.UnmergedLeaves = append(n.UnmergedLeaves, p.UnmergedLeaves[:i]...)
	n.UnmergedLeaves = append(n.UnmergedLeaves, l)
	n.UnmergedLeaves = append(n.UnmergedLeaves, p.UnmergedLeaves[i:]...)
	return n
}

// UpdateLeaf applies an Update from the member at leaf i (RFC 9420, Section
// 12.1.2): it replaces the leaf and blanks its direct path. It does not
// validate the leaf; see [Tree.CheckLeafNode].
func (t *Tree) UpdateLeaf(i LeafIndex, leaf *LeafNode) error {
	if t.leafRaw(i) == nil {
		return fmt.Errorf("%w: update of leaf %d", ErrBlankLeaf, i)
	}
	raw, dec, err := prepareLeaf(leaf)
	if err != nil {
		return err
	}
	t.setLeaf(i, raw, dec)
	t.blankDirectPath(i)
	return nil
}

// RemoveLeaf applies a Remove of the member at leaf i (RFC 9420, Section
// 12.1.3): it blanks the leaf and its direct path, then truncates the tree.
func (t *Tree) RemoveLeaf(i LeafIndex) error {
	if t.leafRaw(i) == nil {
		return fmt.Errorf("%w: removal of leaf %d", ErrBlankLeaf, i)
	}
	t.setLeaf(i, nil, nil)
	t.blankDirectPath(i)
	t.Truncate()
	return nil
}

// ---------------------------------------------------------------------------
// Resolutions (RFC 9420, Section 4.1.1).

// Resolution returns the resolution of node x: x itself followed by its
// unmerged leaves if x is not blank, nothing for a blank leaf, and the
// resolutions of both children for a blank parent. Blank subtrees are
// skipped without being visited.
func (t *Tree) Resolution(x NodeIndex) ([]NodeIndex, error) {
	if uint32(x) >= t.width() {
		return nil, treeErr("node %d not in a tree of %d leaves", x, t.nLeaves)
	}
	return t.appendResolution(nil, x, nil), nil
}

// appendResolution appends the resolution of x minus the leaves in exclude
// (sorted) to dst.
func (t *Tree) appendResolution(dst []NodeIndex, x NodeIndex, exclude []LeafIndex) []NodeIndex {
	if t.subtreeNodes(x) == 0 {
		return dst
	}
	if l, ok := x.LeafIndex(); ok {
		if !rtContains(exclude, l) {
			dst = append(dst, x)
		}
		return dst
	}
	if p := t.parent(x); p != nil {
		dst = append(dst, x)
		for _, l := range p.UnmergedLeaves {
			if !rtContains(exclude, l) {
				dst = append(dst, l.NodeIndex())
			}
		}
		return dst
	}
	dst = t.appendResolution(dst, rtLeft(x), exclude)
	return t.appendResolution(dst, rtRight(x), exclude)
}

func rtContains(sorted []LeafIndex, l LeafIndex) bool {
	_, ok := slices.BinarySearch(sorted, l)
	return ok
}

// pathStep is one node of a filtered direct path with the child of it that
// is on the copath.
type pathStep struct {
	node, copath NodeIndex
}

// filteredPath returns leaf i's filtered direct path (RFC 9420, Section
// 4.1.2): the direct path minus the nodes whose copath child has an empty
// resolution, with those copath children.
func (t *Tree) filteredPath(i LeafIndex) ([]pathStep, error) {
	if uint32(i) >= t.nLeaves {
		return nil, treeErr("leaf %d not in a tree of %d leaves", i, t.nLeaves)
	}
	root := t.root()
	var out []pathStep
	for x := i.NodeIndex(); x != root; {
		p := parentStep(x)
		sib := rtLeft(p)
		if sib == x {
			sib = rtRight(p)
		}
		if t.subtreeNodes(sib) > 0 {
			out = append(out, pathStep{node: p, copath: sib})
		}
		x = p
	}
	return out, nil
}

// FilteredDirectPath returns the filtered direct path of leaf i, bottom up
// (RFC 9420, Section 4.1.2).
func (t *Tree) FilteredDirectPath(i LeafIndex) ([]NodeIndex, error) {
	steps, err := t.filteredPath(i)
	if err != nil {
		return nil, err
	}
	out := make([]NodeIndex, len(steps))
	for k, s := range steps {
		out[k] = s.node
	}
	return out, nil
}
