package mls

import (
	"errors"
	"fmt"
	"math/bits"

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
func DecodeTree(cs CipherSuite, data []byte) (*Tree, error) {
	t, err := NewTree(cs)
	if err != nil {
		return nil, err
	}
	var nodes []*Node
	err = decodeStrict(data, "mls.RatchetTree", func(s *cryptobyte.String) error {
		var v cryptobyte.String
		if !tlspl.ReadVector(s, &v) {
			return errField("ratchet_tree")
		}
		for !v.Empty() {
			if uint64(len(nodes)) >= uint64(NodeWidth(MaxLeaves)) {
				return ErrTreeTooLarge
			}
			var present bool
			if err := readOptionalErr(&v, "ratchet_tree node", &present); err != nil {
				return err
			}
			if !present {
				nodes = append(nodes, nil)
				continue
			}
			n := new(Node)
			if err := n.unmarshal(&v); err != nil {
				return err
			}
			nodes = append(nodes, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := t.load(nodes); err != nil {
		return nil, &tlspl.DecodeError{What: "mls.RatchetTree", Err: err}
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
	if err := t.load(nodes); err != nil {
		return nil, err
	}
	return t, nil
}

// load fills an empty tree from a node array.
func (t *Tree) load(nodes []*Node) error {
	if len(nodes) == 0 || nodes[len(nodes)-1] == nil {
		return ErrTrailingBlankNode
	}
	if uint64(len(nodes)) > uint64(NodeWidth(MaxLeaves)) {
		return ErrTreeTooLarge
	}
	// The smallest full tree with at least len(nodes) nodes.
	m := (uint32(len(nodes)) + 2) / 2 // ceil((len+1)/2)
	leaves := uint32(1) << bits.Len32(m-1)
	for t.nLeaves < leaves {
		if err := t.extend(); err != nil {
			return err
		}
	}
	for i, n := range nodes {
		if n == nil {
			continue
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
