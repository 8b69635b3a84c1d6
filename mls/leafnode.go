package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// LeafNodeSource tells how a [LeafNode] was created (RFC 9420, Section 7.2).
type LeafNodeSource uint8

// The leaf node sources.
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// Lifetime bounds the validity of a KeyPackage's leaf, in seconds since the
// Unix epoch (RFC 9420, Section 7.2).
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// Label for LeafNode signatures (RFC 9420, Section 7.2).
const labelLeafNodeTBS = "LeafNodeTBS"

// LeafNode is a member's leaf in the ratchet tree (RFC 9420, Section 7.2):
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    SignaturePublicKey signature_key;
//	    Credential credential;
//	    Capabilities capabilities;
//	    LeafNodeSource leaf_node_source;
//	    select (LeafNode.leaf_node_source) {
//	        case key_package: Lifetime lifetime;
//	        case update:      struct{};
//	        case commit:      opaque parent_hash<V>;
//	    };
//	    Extension extensions<V>;
//	    opaque signature<V>;
//	} LeafNode;
//
// A decoded LeafNode keeps the bytes it was decoded from: signatures and
// hashes are computed over them. Treat a decoded value as read-only; to
// change one, build a new LeafNode.
type LeafNode struct {
	EncryptionKey []byte
	SignatureKey  []byte
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      Lifetime // when Source is LeafNodeSourceKeyPackage
	ParentHash    []byte   // when Source is LeafNodeSourceCommit
	Extensions    Extensions
	Signature     []byte

	raw []byte
}

func (n *LeafNode) marshalTBSFields(b *cryptobyte.Builder) {
	tlspl.AddOpaque(b, n.EncryptionKey)
	tlspl.AddOpaque(b, n.SignatureKey)
	n.Credential.marshal(b)
	n.Capabilities.marshal(b)
	b.AddUint8(uint8(n.Source))
	switch n.Source {
	case LeafNodeSourceKeyPackage:
		b.AddUint64(n.Lifetime.NotBefore)
		b.AddUint64(n.Lifetime.NotAfter)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		tlspl.AddOpaque(b, n.ParentHash)
	default:
		b.SetError(&UnknownValueError{Type: "LeafNodeSource", Value: uint64(n.Source)})
	}
	n.Extensions.marshal(b)
}

func (n *LeafNode) marshal(b *cryptobyte.Builder) {
	n.marshalTBSFields(b)
	tlspl.AddOpaque(b, n.Signature)
}

func (n *LeafNode) unmarshal(s *cryptobyte.String) error {
	start := *s
	*n = LeafNode{}
	if err := readOpaqueField(s, &n.EncryptionKey, "LeafNode.encryption_key"); err != nil {
		return err
	}
	if err := readOpaqueField(s, &n.SignatureKey, "LeafNode.signature_key"); err != nil {
		return err
	}
	if err := n.Credential.unmarshal(s); err != nil {
		return err
	}
	if err := n.Capabilities.unmarshal(s); err != nil {
		return err
	}
	var src uint8
	if err := readU8(s, &src, "LeafNode.leaf_node_source"); err != nil {
		return err
	}
	n.Source = LeafNodeSource(src)
	switch n.Source {
	case LeafNodeSourceKeyPackage:
		if err := readU64(s, &n.Lifetime.NotBefore, "Lifetime.not_before"); err != nil {
			return err
		}
		if err := readU64(s, &n.Lifetime.NotAfter, "Lifetime.not_after"); err != nil {
			return err
		}
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		if err := readOpaqueField(s, &n.ParentHash, "LeafNode.parent_hash"); err != nil {
			return err
		}
	default:
		return &UnknownValueError{Type: "LeafNodeSource", Value: uint64(src)}
	}
	if err := n.Extensions.unmarshal(s); err != nil {
		return err
	}
	if err := readOpaqueField(s, &n.Signature, "LeafNode.signature"); err != nil {
		return err
	}
	n.raw = consumed(start, *s)
	return nil
}

// Marshal encodes the fields of n. For a decoded value this equals the
// received bytes (decoding is strict); signatures and hashes still use the
// received bytes themselves.
func (n *LeafNode) Marshal() ([]byte, error) { return encodeValue(n.marshal) }

// UnmarshalLeafNode decodes a LeafNode, rejecting trailing bytes.
func UnmarshalLeafNode(data []byte) (*LeafNode, error) {
	var n LeafNode
	if err := decodeStrict(data, "mls.LeafNode", n.unmarshal); err != nil {
		return nil, err
	}
	return &n, nil
}

// tbs returns LeafNodeTBS: every field but the signature, followed for the
// update and commit sources by group_id<V> and uint32 leaf_index.
func (n *LeafNode) tbs(groupID []byte, leafIndex LeafIndex) ([]byte, error) {
	var body []byte
	if n.raw != nil {
		body = withoutTrailingOpaque(n.raw, n.Signature)
	} else {
		var err error
		if body, err = encodeValue(n.marshalTBSFields); err != nil {
			return nil, err
		}
	}
	if n.Source == LeafNodeSourceKeyPackage {
		return body, nil
	}
	return encodeValue(func(b *cryptobyte.Builder) {
		b.AddBytes(body)
		tlspl.AddOpaque(b, groupID)
		b.AddUint32(uint32(leafIndex))
	})
}

// Sign computes the leaf's signature with SignWithLabel(., "LeafNodeTBS",
// LeafNodeTBS). groupID and leafIndex are used only for the update and
// commit sources. The leaf's signature key must match priv.
func (n *LeafNode) Sign(cs CipherSuite, priv SignaturePrivateKey, groupID []byte, leafIndex LeafIndex) error {
	n.raw = nil
	tbs, err := n.tbs(groupID, leafIndex)
	if err != nil {
		return err
	}
	sig, err := cs.SignWithLabel(priv, labelLeafNodeTBS, tbs)
	if err != nil {
		return fmt.Errorf("mls: sign leaf node: %w", err)
	}
	n.Signature = sig
	return nil
}

// Verify checks the leaf's signature against its own signature key
// (RFC 9420, Section 7.3). groupID and leafIndex are used only for the
// update and commit sources.
func (n *LeafNode) Verify(cs CipherSuite, groupID []byte, leafIndex LeafIndex) error {
	tbs, err := n.tbs(groupID, leafIndex)
	if err != nil {
		return err
	}
	if err := cs.VerifyWithLabel(n.SignatureKey, labelLeafNodeTBS, tbs, n.Signature); err != nil {
		return fmt.Errorf("mls: verify leaf node: %w", err)
	}
	return nil
}

// withoutTrailingOpaque strips the final opaque<V> field, whose value is
// last, from raw. Decoding is strict (minimal varints), so the field's
// encoded size is exactly varintLen(len(last)) + len(last).
func withoutTrailingOpaque(raw, last []byte) []byte {
	n := len(last) + varintLen(len(last))
	return raw[:len(raw)-n]
}

// varintLen is the size of the minimal RFC 9420 varint for n.
func varintLen(n int) int {
	switch {
	case n < 1<<6:
		return 1
	case n < 1<<14:
		return 2
	default:
		return 4
	}
}
