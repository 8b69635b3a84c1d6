package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Labels of RFC 9420, Sections 5.2 and 10.
const (
	labelKeyPackageTBS = "KeyPackageTBS"
	labelKeyPackageRef = "MLS 1.0 KeyPackage Reference"
)

// KeyPackage is a signed, pre-published invitation key of a client
// (RFC 9420, Section 10):
//
//	struct {
//	    ProtocolVersion version;
//	    CipherSuite cipher_suite;
//	    HPKEPublicKey init_key;
//	    LeafNode leaf_node;
//	    Extension extensions<V>;
//	    opaque signature<V>;
//	} KeyPackage;
//
// A decoded KeyPackage keeps its received bytes; [KeyPackage.Ref] and
// [KeyPackage.Verify] use them. Treat a decoded value as read-only.
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     []byte
	LeafNode    LeafNode
	Extensions  Extensions
	Signature   []byte

	raw []byte
}

func (k *KeyPackage) marshalTBS(b *cryptobyte.Builder) {
	b.AddUint16(uint16(k.Version))
	b.AddUint16(uint16(k.CipherSuite))
	tlspl.AddOpaque(b, k.InitKey)
	k.LeafNode.marshal(b)
	k.Extensions.marshal(b)
}

func (k *KeyPackage) marshal(b *cryptobyte.Builder) {
	k.marshalTBS(b)
	tlspl.AddOpaque(b, k.Signature)
}

func (k *KeyPackage) unmarshal(s *cryptobyte.String) error {
	start := *s
	*k = KeyPackage{}
	var v, cs uint16
	if err := readU16(s, &v, "KeyPackage.version"); err != nil {
		return err
	}
	k.Version = ProtocolVersion(v)
	if err := readU16(s, &cs, "KeyPackage.cipher_suite"); err != nil {
		return err
	}
	k.CipherSuite = CipherSuite(cs)
	if err := readOpaqueField(s, &k.InitKey, "KeyPackage.init_key"); err != nil {
		return err
	}
	if err := k.LeafNode.unmarshal(s); err != nil {
		return err
	}
	if err := k.Extensions.unmarshal(s); err != nil {
		return err
	}
	if err := readOpaqueField(s, &k.Signature, "KeyPackage.signature"); err != nil {
		return err
	}
	k.raw = consumed(start, *s)
	return nil
}

// Marshal encodes the fields of k. For a decoded value this equals the
// received bytes (decoding is strict); signatures and hashes still use the
// received bytes themselves.
func (k *KeyPackage) Marshal() ([]byte, error) { return encodeValue(k.marshal) }

// UnmarshalKeyPackage decodes a KeyPackage, rejecting trailing bytes.
func UnmarshalKeyPackage(data []byte) (*KeyPackage, error) {
	var k KeyPackage
	if err := decodeStrict(data, "mls.KeyPackage", k.unmarshal); err != nil {
		return nil, err
	}
	return &k, nil
}

func (k *KeyPackage) tbs() ([]byte, error) {
	if k.raw != nil {
		return withoutTrailingOpaque(k.raw, k.Signature), nil
	}
	return encodeValue(k.marshalTBS)
}

// Sign signs the KeyPackage with SignWithLabel(., "KeyPackageTBS",
// KeyPackageTBS) under its own cipher suite. The leaf node must already be
// signed.
func (k *KeyPackage) Sign(priv SignaturePrivateKey) error {
	k.raw = nil
	tbs, err := k.tbs()
	if err != nil {
		return err
	}
	sig, err := k.CipherSuite.SignWithLabel(priv, labelKeyPackageTBS, tbs)
	if err != nil {
		return fmt.Errorf("mls: sign key package: %w", err)
	}
	k.Signature = sig
	return nil
}

// Verify checks the KeyPackage's signature and its leaf node's signature,
// both against the leaf's signature key, and that the leaf's source is
// key_package (RFC 9420, Section 10.1). Policy checks (lifetime,
// capabilities, init_key distinct from encryption_key) belong to the caller.
func (k *KeyPackage) Verify() error {
	if k.LeafNode.Source != LeafNodeSourceKeyPackage {
		return fmt.Errorf("%w: key package leaf has source %d", ErrInvalidMessage, k.LeafNode.Source)
	}
	if err := k.LeafNode.Verify(k.CipherSuite, nil, 0); err != nil {
		return err
	}
	tbs, err := k.tbs()
	if err != nil {
		return err
	}
	if err := k.CipherSuite.VerifyWithLabel(k.LeafNode.SignatureKey, labelKeyPackageTBS, tbs, k.Signature); err != nil {
		return fmt.Errorf("mls: verify key package: %w", err)
	}
	return nil
}

// Ref returns KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference",
// KeyPackage) over the encoded (for a decoded value: received) bytes
// (RFC 9420, Section 5.2).
func (k *KeyPackage) Ref() ([]byte, error) {
	data := k.raw
	if data == nil {
		var err error
		if data, err = k.Marshal(); err != nil {
			return nil, err
		}
	}
	return k.CipherSuite.RefHash(labelKeyPackageRef, data)
}
