package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Label of GroupInfo signatures (RFC 9420, Section 12.4.3).
const labelGroupInfoTBS = "GroupInfoTBS"

// GroupInfo describes a group to joiners (RFC 9420, Section 12.4.3):
//
//	struct {
//	    GroupContext group_context;
//	    Extension extensions<V>;
//	    MAC confirmation_tag;
//	    uint32 signer;
//	    opaque signature<V>;
//	} GroupInfo;
//
// A decoded GroupInfo keeps its received bytes for signature verification;
// treat it as read-only.
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag []byte
	Signer          LeafIndex
	Signature       []byte

	raw []byte
}

func (g *GroupInfo) marshalTBS(b *cryptobyte.Builder) {
	g.GroupContext.marshal(b)
	g.Extensions.marshal(b)
	tlspl.AddOpaque(b, g.ConfirmationTag)
	b.AddUint32(uint32(g.Signer))
}

func (g *GroupInfo) marshal(b *cryptobyte.Builder) {
	g.marshalTBS(b)
	tlspl.AddOpaque(b, g.Signature)
}

func (g *GroupInfo) unmarshal(s *cryptobyte.String) error {
	start := *s
	*g = GroupInfo{}
	if err := g.GroupContext.unmarshal(s); err != nil {
		return err
	}
	if err := g.Extensions.unmarshal(s); err != nil {
		return err
	}
	if err := readOpaqueField(s, &g.ConfirmationTag, "GroupInfo.confirmation_tag"); err != nil {
		return err
	}
	var signer uint32
	if err := readU32(s, &signer, "GroupInfo.signer"); err != nil {
		return err
	}
	g.Signer = LeafIndex(signer)
	if err := readOpaqueField(s, &g.Signature, "GroupInfo.signature"); err != nil {
		return err
	}
	g.raw = consumed(start, *s)
	return nil
}

// Marshal encodes the fields of g. For a decoded value this equals the
// received bytes (decoding is strict); signatures and hashes still use the
// received bytes themselves.
func (g *GroupInfo) Marshal() ([]byte, error) { return encodeValue(g.marshal) }

// UnmarshalGroupInfo decodes a GroupInfo, rejecting trailing bytes.
func UnmarshalGroupInfo(data []byte) (*GroupInfo, error) {
	var g GroupInfo
	if err := decodeStrict(data, "mls.GroupInfo", g.unmarshal); err != nil {
		return nil, err
	}
	return &g, nil
}

func (g *GroupInfo) tbs() ([]byte, error) {
	if g.raw != nil {
		return withoutTrailingOpaque(g.raw, g.Signature), nil
	}
	return encodeValue(g.marshalTBS)
}

// Sign signs the GroupInfo with SignWithLabel(., "GroupInfoTBS",
// GroupInfoTBS) under the group's cipher suite.
func (g *GroupInfo) Sign(priv SignaturePrivateKey) error {
	g.raw = nil
	tbs, err := g.tbs()
	if err != nil {
		return err
	}
	sig, err := g.GroupContext.CipherSuite.SignWithLabel(priv, labelGroupInfoTBS, tbs)
	if err != nil {
		return fmt.Errorf("mls: sign group info: %w", err)
	}
	g.Signature = sig
	return nil
}

// Verify checks the signature against signerPub, the signature key of the
// leaf at g.Signer (RFC 9420, Section 12.4.3.1).
func (g *GroupInfo) Verify(signerPub []byte) error {
	tbs, err := g.tbs()
	if err != nil {
		return err
	}
	if err := g.GroupContext.CipherSuite.VerifyWithLabel(signerPub, labelGroupInfoTBS, tbs, g.Signature); err != nil {
		return fmt.Errorf("mls: verify group info: %w", err)
	}
	return nil
}
