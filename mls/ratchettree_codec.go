package mls

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// ErrNodeType reports a ratchet_tree entry of the wrong type for its
// position: leaves sit at even and parents at odd indices (RFC 9420,
// Section 12.4.3.3).
var ErrNodeType = fmt.Errorf("%w: ratchet tree node of the wrong type for its position", tlspl.ErrMalformed)

// DecodeTree decodes the ratchet_tree extension data, optional<Node>
// ratchet_tree<V> (RFC 9420, Section 12.4.3.3), into a [Tree] for cs,
// padding it with blank nodes to the next full tree. Decoding checks the
// encoding only; validate a received tree with [Tree.Validate] before use.
//
// Nodes are stored as they are decoded, so a large tree is never held in
// its decoded wire form.
func DecodeTree(cs CipherSuite, data []byte) (*Tree, error) {
	t, err := NewTree(cs)
	if err != nil {
		return nil, err
	}
	err = decodeStrict(data, "mls.RatchetTree", func(s *cryptobyte.String) error {
		var v cryptobyte.String
		if !tlspl.ReadVector(s, &v) {
			return errField("ratchet_tree")
		}
		i, lastBlank := 0, true
		for ; !v.Empty(); i++ {
			var present bool
			if err := readOptionalErr(&v, "ratchet_tree node", &present); err != nil {
				return err
			}
			if lastBlank = !present; lastBlank {
				continue
			}
			n := new(Node)
			if err := n.unmarshal(&v); err != nil {
				return err
			}
			if err := t.loadNode(i, n); err != nil {
				return err
			}
		}
		if i == 0 || lastBlank {
			return ErrTrailingBlankNode
		}
		return t.growTo(i)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// NewTreeFromNodes builds a [Tree] for cs from the wire form of a ratchet
// tree, with the same checks as [DecodeTree].
func NewTreeFromNodes(cs CipherSuite, nodes RatchetTree) (*Tree, error) {
	t, err := NewTree(cs)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 || nodes[len(nodes)-1] == nil {
		return nil, ErrTrailingBlankNode
	}
	for i, n := range nodes {
		if n != nil {
			if err := t.loadNode(i, n); err != nil {
				return nil, err
			}
		}
	}
	if err := t.growTo(len(nodes)); err != nil {
		return nil, err
	}
	return t, nil
}

// growTo extends the tree until it has at least count nodes.
func (t *Tree) growTo(count int) error {
	if uint64(count) > uint64(NodeWidth(MaxLeaves)) {
		return ErrTreeTooLarge
	}
	for uint64(t.width()) < uint64(count) {
		if err := t.extend(); err != nil {
			return err
		}
	}
	return nil
}

// loadNode stores the non-blank node n at index i of a tree being loaded.
func (t *Tree) loadNode(i int, n *Node) error {
	if err := t.growTo(i + 1); err != nil {
		return err
	}
	x := NodeIndex(i)
	switch {
	case x.IsLeaf() && n.Leaf != nil && n.Parent == nil:
		raw, dec, err := prepareLeaf(n.Leaf)
		if err != nil {
			return err
		}
		l, _ := x.LeafIndex()
		t.setLeaf(l, raw, dec)
	case !x.IsLeaf() && n.Parent != nil && n.Leaf == nil:
		p := *n.Parent
		t.setParent(x, &p)
	default:
		return fmt.Errorf("%w (node %d)", ErrNodeType, i)
	}
	return nil
}

// Nodes returns the wire form of the tree: one entry per node up to the
// last non-blank one, nil for blanks. Leaves are freshly decoded; parent
// nodes are shared with the tree and must not be modified.
func (t *Tree) Nodes() RatchetTree {
	last := t.lastNonBlank()
	if last < 0 {
		return nil
	}
	out := make(RatchetTree, last+1)
	for i := range out {
		x := NodeIndex(i)
		if l, ok := x.LeafIndex(); ok {
			if ln, ok := t.Leaf(l); ok {
				out[i] = &Node{Leaf: ln}
			}
		} else if p := t.parent(x); p != nil {
			out[i] = &Node{Parent: p}
		}
	}
	return out
}

// lastNonBlank returns the index of the last non-blank node, or -1.
func (t *Tree) lastNonBlank() int {
	if t.nLeaves == 0 || t.subtreeNodes(t.root()) == 0 {
		return -1
	}
	x := t.root()
	for {
		if x.IsLeaf() {
			return int(x)
		}
		r := rtRight(x)
		if t.subtreeNodes(r) > 0 {
			x = r
			continue
		}
		if t.parent(x) != nil {
			return int(x)
		}
		x = rtLeft(x)
	}
}

// Encode returns the ratchet_tree extension data for the tree (RFC 9420,
// Section 12.4.3.3), omitting trailing blank nodes.
func (t *Tree) Encode() ([]byte, error) {
	last := t.lastNonBlank()
	if last < 0 {
		return nil, ErrEmptyTree
	}
	var buf []byte
	for i := 0; i <= last; i++ {
		x := NodeIndex(i)
		if l, ok := x.LeafIndex(); ok {
			raw := t.leafRaw(l)
			if raw == nil {
				buf = append(buf, 0)
				continue
			}
			buf = append(buf, 1, byte(NodeTypeLeaf))
			buf = append(buf, raw...)
			continue
		}
		p := t.parent(x)
		if p == nil {
			buf = append(buf, 0)
			continue
		}
		buf = append(buf, 1, byte(NodeTypeParent))
		buf = appendParentNode(buf, p, nil)
	}
	if len(buf) >= 1<<30 {
		return nil, errors.New("mls: encoded ratchet tree exceeds 2^30 bytes")
	}
	return appendVarintOpaque(make([]byte, 0, len(buf)+4), buf), nil
}
