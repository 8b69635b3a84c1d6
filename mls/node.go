package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// NodeType distinguishes leaf and parent nodes of the ratchet tree
// (RFC 9420, Section 7.8).
type NodeType uint8

// The node types.
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// ParentNode is a non-blank parent node of the ratchet tree (RFC 9420,
// Section 7.1):
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    opaque parent_hash<V>;
//	    uint32 unmerged_leaves<V>;
//	} ParentNode;
type ParentNode struct {
	EncryptionKey  []byte
	ParentHash     []byte
	UnmergedLeaves []LeafIndex
}

func (p *ParentNode) marshal(b *cryptobyte.Builder) {
	tlspl.AddOpaque(b, p.EncryptionKey)
	tlspl.AddOpaque(b, p.ParentHash)
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, l := range p.UnmergedLeaves {
			b.AddUint32(uint32(l))
		}
	})
}

func (p *ParentNode) unmarshal(s *cryptobyte.String) error {
	if err := readOpaqueField(s, &p.EncryptionKey, "ParentNode.encryption_key"); err != nil {
		return err
	}
	if err := readOpaqueField(s, &p.ParentHash, "ParentNode.parent_hash"); err != nil {
		return err
	}
	var v cryptobyte.String
	if !tlspl.ReadVector(s, &v) || len(v)%4 != 0 {
		return errField("ParentNode.unmerged_leaves")
	}
	p.UnmergedLeaves = make([]LeafIndex, 0, len(v)/4)
	for !v.Empty() {
		var x uint32
		v.ReadUint32(&x)
		p.UnmergedLeaves = append(p.UnmergedLeaves, LeafIndex(x))
	}
	return nil
}

// Node is a non-blank node of the ratchet tree: exactly one of Leaf and
// Parent is set (RFC 9420, Section 7.8):
//
//	struct {
//	    NodeType node_type;
//	    select (Node.node_type) {
//	        case leaf:   LeafNode leaf_node;
//	        case parent: ParentNode parent_node;
//	    };
//	} Node;
type Node struct {
	Leaf   *LeafNode
	Parent *ParentNode
}

// Type returns the node's type.
func (n *Node) Type() NodeType {
	if n.Leaf != nil {
		return NodeTypeLeaf
	}
	return NodeTypeParent
}

func (n *Node) marshal(b *cryptobyte.Builder) {
	switch {
	case n.Leaf != nil && n.Parent == nil:
		b.AddUint8(uint8(NodeTypeLeaf))
		n.Leaf.marshal(b)
	case n.Parent != nil && n.Leaf == nil:
		b.AddUint8(uint8(NodeTypeParent))
		n.Parent.marshal(b)
	default:
		b.SetError(fmt.Errorf("mls: encode Node: exactly one of Leaf and Parent must be set"))
	}
}

func (n *Node) unmarshal(s *cryptobyte.String) error {
	var t uint8
	if err := readU8(s, &t, "Node.node_type"); err != nil {
		return err
	}
	*n = Node{}
	switch NodeType(t) {
	case NodeTypeLeaf:
		n.Leaf = new(LeafNode)
		return n.Leaf.unmarshal(s)
	case NodeTypeParent:
		n.Parent = new(ParentNode)
		return n.Parent.unmarshal(s)
	default:
		return &UnknownValueError{Type: "NodeType", Value: uint64(t)}
	}
}

// RatchetTree is the wire form of a ratchet tree, optional<Node>
// ratchet_tree<V>, as carried in the ratchet_tree extension (RFC 9420,
// Section 12.4.3.3): nodes in array order (leaves at even indices), nil for
// a blank node. The encoding omits trailing blank nodes, so a decoded tree
// never ends in a blank node and an empty tree is malformed.
type RatchetTree []*Node

// ErrTrailingBlankNode reports a ratchet_tree whose last node is blank or
// that has no node at all (RFC 9420, Section 12.4.3.3).
var ErrTrailingBlankNode = fmt.Errorf("%w: ratchet tree ends in a blank node", tlspl.ErrMalformed)

func (t RatchetTree) marshal(b *cryptobyte.Builder) {
	if len(t) == 0 || t[len(t)-1] == nil {
		b.SetError(ErrTrailingBlankNode)
		return
	}
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, n := range t {
			tlspl.AddOptional(b, n != nil)
			if n != nil {
				n.marshal(b)
			}
		}
	})
}

func (t *RatchetTree) unmarshal(s *cryptobyte.String) error {
	tree := RatchetTree{}
	err := readListErr(s, "ratchet_tree", func(s *cryptobyte.String) error {
		var present bool
		if err := readOptionalErr(s, "ratchet_tree node", &present); err != nil {
			return err
		}
		if !present {
			tree = append(tree, nil)
			return nil
		}
		n := new(Node)
		if err := n.unmarshal(s); err != nil {
			return err
		}
		tree = append(tree, n)
		return nil
	})
	if err != nil {
		return err
	}
	if len(tree) == 0 || tree[len(tree)-1] == nil {
		return ErrTrailingBlankNode
	}
	*t = tree
	return nil
}

// Marshal returns the TLS encoding of t (the ratchet_tree extension data).
func (t RatchetTree) Marshal() ([]byte, error) { return encodeValue(t.marshal) }

// UnmarshalRatchetTree decodes optional<Node> ratchet_tree<V>, rejecting
// trailing bytes and a trailing blank node.
func UnmarshalRatchetTree(data []byte) (RatchetTree, error) {
	var t RatchetTree
	if err := decodeStrict(data, "mls.RatchetTree", t.unmarshal); err != nil {
		return nil, err
	}
	return t, nil
}
