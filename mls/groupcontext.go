package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// GroupContext summarizes the shared state of a group in one epoch
// (RFC 9420, Section 8.1):
//
//	struct {
//	    ProtocolVersion version = mls10;
//	    CipherSuite cipher_suite;
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    opaque tree_hash<V>;
//	    opaque confirmed_transcript_hash<V>;
//	    Extension extensions<V>;
//	} GroupContext;
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              Extensions
}

func (g *GroupContext) marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(g.Version))
	b.AddUint16(uint16(g.CipherSuite))
	tlspl.AddOpaque(b, g.GroupID)
	b.AddUint64(g.Epoch)
	tlspl.AddOpaque(b, g.TreeHash)
	tlspl.AddOpaque(b, g.ConfirmedTranscriptHash)
	g.Extensions.marshal(b)
}

func (g *GroupContext) unmarshal(s *cryptobyte.String) error {
	var v, cs uint16
	if err := readU16(s, &v, "GroupContext.version"); err != nil {
		return err
	}
	g.Version = ProtocolVersion(v)
	if err := readU16(s, &cs, "GroupContext.cipher_suite"); err != nil {
		return err
	}
	g.CipherSuite = CipherSuite(cs)
	if err := readOpaqueField(s, &g.GroupID, "GroupContext.group_id"); err != nil {
		return err
	}
	if err := readU64(s, &g.Epoch, "GroupContext.epoch"); err != nil {
		return err
	}
	if err := readOpaqueField(s, &g.TreeHash, "GroupContext.tree_hash"); err != nil {
		return err
	}
	if err := readOpaqueField(s, &g.ConfirmedTranscriptHash, "GroupContext.confirmed_transcript_hash"); err != nil {
		return err
	}
	return g.Extensions.unmarshal(s)
}

// Marshal returns the TLS encoding of g, the bytes the key schedule takes.
func (g *GroupContext) Marshal() ([]byte, error) { return encodeValue(g.marshal) }

// UnmarshalGroupContext decodes a GroupContext, rejecting trailing bytes.
func UnmarshalGroupContext(data []byte) (*GroupContext, error) {
	var g GroupContext
	if err := decodeStrict(data, "mls.GroupContext", g.unmarshal); err != nil {
		return nil, err
	}
	return &g, nil
}
