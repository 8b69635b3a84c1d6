package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// ProposalType identifies a proposal (RFC 9420, Section 17.4).
type ProposalType uint16

// Proposal types of RFC 9420 and draft-ietf-mls-extensions.
//
// The extensions draft has changed its suggested values between versions
// (self_remove was 0x0008, 0x0009 and 0x000c; app_data_update 0x0008); we
// use app_data_update = 0x0008, app_ephemeral = 0x0009 (reserved, not
// implemented) and self_remove = 0x000a, the values OpenMLS deploys, so that
// the two never collide. docs/mls.md records this decision.
const (
	ProposalTypeAdd                    ProposalType = 0x0001
	ProposalTypeUpdate                 ProposalType = 0x0002
	ProposalTypeRemove                 ProposalType = 0x0003
	ProposalTypePreSharedKey           ProposalType = 0x0004
	ProposalTypeReInit                 ProposalType = 0x0005
	ProposalTypeExternalInit           ProposalType = 0x0006
	ProposalTypeGroupContextExtensions ProposalType = 0x0007
	ProposalTypeAppDataUpdate          ProposalType = 0x0008
	ProposalTypeSelfRemove             ProposalType = 0x000a
)

// Proposal is one proposed change to a group (RFC 9420, Section 12.1). The
// concrete types are [*AddProposal], [*UpdateProposal], [*RemoveProposal],
// [*PreSharedKeyProposal], [*ReInitProposal], [*ExternalInitProposal],
// [*GroupContextExtensionsProposal], [*AppDataUpdateProposal] and
// [*SelfRemoveProposal].
//
// On the wire a Proposal is its uint16 proposal_type followed by the body.
// A proposal of an unknown type cannot be decoded (the body carries no
// length), so the decoder rejects it with an [*UnknownValueError].
type Proposal interface {
	// ProposalType returns the proposal's type.
	ProposalType() ProposalType
	marshalBody(b *cryptobyte.Builder)
}

// AddProposal adds the client of a KeyPackage (RFC 9420, Section 12.1.1).
type AddProposal struct {
	KeyPackage KeyPackage
}

// UpdateProposal replaces the sender's leaf (RFC 9420, Section 12.1.2).
type UpdateProposal struct {
	LeafNode LeafNode
}

// RemoveProposal removes the member at a leaf (RFC 9420, Section 12.1.3).
type RemoveProposal struct {
	Removed LeafIndex
}

// PreSharedKeyProposal injects a PSK into the next epoch (RFC 9420,
// Section 12.1.4).
type PreSharedKeyProposal struct {
	PSK PreSharedKeyID
}

// ReInitProposal asks to reinitialize the group (RFC 9420, Section 12.1.5).
type ReInitProposal struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite CipherSuite
	Extensions  Extensions
}

// ExternalInitProposal carries the KEM output of an external join
// (RFC 9420, Section 12.1.6).
type ExternalInitProposal struct {
	KEMOutput []byte
}

// GroupContextExtensionsProposal replaces the GroupContext extensions
// (RFC 9420, Section 12.1.7).
type GroupContextExtensionsProposal struct {
	Extensions Extensions
}

// AppDataUpdateOperation is the op of an [AppDataUpdateProposal].
type AppDataUpdateOperation uint8

// The AppDataUpdate operations (draft-ietf-mls-extensions); 0 is invalid.
const (
	AppDataUpdateOperationUpdate AppDataUpdateOperation = 1
	AppDataUpdateOperationRemove AppDataUpdateOperation = 2
)

// AppDataUpdateProposal updates one component's entry of the
// app_data_dictionary GroupContext extension (draft-ietf-mls-extensions):
//
//	struct {
//	    ComponentID component_id;
//	    AppDataUpdateOperation op;
//	    select (AppDataUpdate.op) {
//	        case update: opaque update<V>;
//	        case remove: struct{};
//	    };
//	} AppDataUpdate;
type AppDataUpdateProposal struct {
	ComponentID ComponentID
	Op          AppDataUpdateOperation
	Update      []byte // when Op is AppDataUpdateOperationUpdate
}

// SelfRemoveProposal lets a member leave the group (draft-ietf-mls-extensions,
// "SelfRemove"); its body is empty: the removed leaf is the proposal's
// sender.
type SelfRemoveProposal struct{}

// ProposalType returns [ProposalTypeAdd].
func (*AddProposal) ProposalType() ProposalType { return ProposalTypeAdd }

// ProposalType returns [ProposalTypeUpdate].
func (*UpdateProposal) ProposalType() ProposalType { return ProposalTypeUpdate }

// ProposalType returns [ProposalTypeRemove].
func (*RemoveProposal) ProposalType() ProposalType { return ProposalTypeRemove }

// ProposalType returns [ProposalTypePreSharedKey].
func (*PreSharedKeyProposal) ProposalType() ProposalType { return ProposalTypePreSharedKey }

// ProposalType returns [ProposalTypeReInit].
func (*ReInitProposal) ProposalType() ProposalType { return ProposalTypeReInit }

// ProposalType returns [ProposalTypeExternalInit].
func (*ExternalInitProposal) ProposalType() ProposalType { return ProposalTypeExternalInit }

// ProposalType returns [ProposalTypeGroupContextExtensions].
func (*GroupContextExtensionsProposal) ProposalType() ProposalType {
	return ProposalTypeGroupContextExtensions
}

// ProposalType returns [ProposalTypeAppDataUpdate].
func (*AppDataUpdateProposal) ProposalType() ProposalType { return ProposalTypeAppDataUpdate }

// ProposalType returns [ProposalTypeSelfRemove].
func (*SelfRemoveProposal) ProposalType() ProposalType { return ProposalTypeSelfRemove }

func (p *AddProposal) marshalBody(b *cryptobyte.Builder)    { p.KeyPackage.marshal(b) }
func (p *UpdateProposal) marshalBody(b *cryptobyte.Builder) { p.LeafNode.marshal(b) }
func (p *RemoveProposal) marshalBody(b *cryptobyte.Builder) { b.AddUint32(uint32(p.Removed)) }
func (p *PreSharedKeyProposal) marshalBody(b *cryptobyte.Builder) {
	p.PSK.marshal(b)
}
func (p *ReInitProposal) marshalBody(b *cryptobyte.Builder) {
	tlspl.AddOpaque(b, p.GroupID)
	b.AddUint16(uint16(p.Version))
	b.AddUint16(uint16(p.CipherSuite))
	p.Extensions.marshal(b)
}
func (p *ExternalInitProposal) marshalBody(b *cryptobyte.Builder) { tlspl.AddOpaque(b, p.KEMOutput) }
func (p *GroupContextExtensionsProposal) marshalBody(b *cryptobyte.Builder) {
	p.Extensions.marshal(b)
}
func (p *AppDataUpdateProposal) marshalBody(b *cryptobyte.Builder) {
	b.AddUint32(uint32(p.ComponentID))
	b.AddUint8(uint8(p.Op))
	switch p.Op {
	case AppDataUpdateOperationUpdate:
		tlspl.AddOpaque(b, p.Update)
	case AppDataUpdateOperationRemove:
	default:
		b.SetError(&UnknownValueError{Type: "AppDataUpdateOperation", Value: uint64(p.Op)})
	}
}
func (*SelfRemoveProposal) marshalBody(*cryptobyte.Builder) {}

// marshalProposal appends proposal_type and body. A nil proposal sets an
// error on b.
func marshalProposal(b *cryptobyte.Builder, p Proposal) {
	if p == nil {
		b.SetError(errField("nil Proposal"))
		return
	}
	b.AddUint16(uint16(p.ProposalType()))
	p.marshalBody(b)
}

// unmarshalProposal reads a Proposal.
func unmarshalProposal(s *cryptobyte.String) (Proposal, error) {
	var t uint16
	if err := readU16(s, &t, "Proposal.proposal_type"); err != nil {
		return nil, err
	}
	switch ProposalType(t) {
	case ProposalTypeAdd:
		p := new(AddProposal)
		return p, p.KeyPackage.unmarshal(s)
	case ProposalTypeUpdate:
		p := new(UpdateProposal)
		return p, p.LeafNode.unmarshal(s)
	case ProposalTypeRemove:
		p := new(RemoveProposal)
		var r uint32
		err := readU32(s, &r, "Remove.removed")
		p.Removed = LeafIndex(r)
		return p, err
	case ProposalTypePreSharedKey:
		p := new(PreSharedKeyProposal)
		return p, p.PSK.unmarshal(s)
	case ProposalTypeReInit:
		p := new(ReInitProposal)
		if err := readOpaqueField(s, &p.GroupID, "ReInit.group_id"); err != nil {
			return nil, err
		}
		var v, cs uint16
		if err := readU16(s, &v, "ReInit.version"); err != nil {
			return nil, err
		}
		if err := readU16(s, &cs, "ReInit.cipher_suite"); err != nil {
			return nil, err
		}
		p.Version, p.CipherSuite = ProtocolVersion(v), CipherSuite(cs)
		return p, p.Extensions.unmarshal(s)
	case ProposalTypeExternalInit:
		p := new(ExternalInitProposal)
		return p, readOpaqueField(s, &p.KEMOutput, "ExternalInit.kem_output")
	case ProposalTypeGroupContextExtensions:
		p := new(GroupContextExtensionsProposal)
		return p, p.Extensions.unmarshal(s)
	case ProposalTypeAppDataUpdate:
		p := new(AppDataUpdateProposal)
		var id uint32
		var op uint8
		if err := readU32(s, &id, "AppDataUpdate.component_id"); err != nil {
			return nil, err
		}
		if err := readU8(s, &op, "AppDataUpdate.op"); err != nil {
			return nil, err
		}
		p.ComponentID, p.Op = ComponentID(id), AppDataUpdateOperation(op)
		switch p.Op {
		case AppDataUpdateOperationUpdate:
			return p, readOpaqueField(s, &p.Update, "AppDataUpdate.update")
		case AppDataUpdateOperationRemove:
			return p, nil
		default:
			return nil, &UnknownValueError{Type: "AppDataUpdateOperation", Value: uint64(op)}
		}
	case ProposalTypeSelfRemove:
		return new(SelfRemoveProposal), nil
	default:
		return nil, &UnknownValueError{Type: "ProposalType", Value: uint64(t)}
	}
}

// MarshalProposal returns the TLS encoding of p.
func MarshalProposal(p Proposal) ([]byte, error) {
	return encodeValue(func(b *cryptobyte.Builder) { marshalProposal(b, p) })
}

// UnmarshalProposal decodes a Proposal, rejecting trailing bytes.
func UnmarshalProposal(data []byte) (Proposal, error) {
	var p Proposal
	err := decodeStrict(data, "mls.Proposal", func(s *cryptobyte.String) error {
		var err error
		p, err = unmarshalProposal(s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ProposalOrRefType says whether a commit carries a proposal inline or by
// reference (RFC 9420, Section 12.4).
type ProposalOrRefType uint8

// The ProposalOrRef types.
const (
	ProposalOrRefTypeProposal  ProposalOrRefType = 1
	ProposalOrRefTypeReference ProposalOrRefType = 2
)

// ProposalOrRef is one entry of a commit's proposal list: exactly one of
// Proposal (inline) and Reference (a ProposalRef) is set.
type ProposalOrRef struct {
	Proposal  Proposal
	Reference []byte
}

func (p *ProposalOrRef) marshal(b *cryptobyte.Builder) {
	if p.Proposal != nil {
		b.AddUint8(uint8(ProposalOrRefTypeProposal))
		marshalProposal(b, p.Proposal)
		return
	}
	b.AddUint8(uint8(ProposalOrRefTypeReference))
	tlspl.AddOpaque(b, p.Reference)
}

func (p *ProposalOrRef) unmarshal(s *cryptobyte.String) error {
	var t uint8
	if err := readU8(s, &t, "ProposalOrRef.type"); err != nil {
		return err
	}
	*p = ProposalOrRef{}
	switch ProposalOrRefType(t) {
	case ProposalOrRefTypeProposal:
		var err error
		p.Proposal, err = unmarshalProposal(s)
		return err
	case ProposalOrRefTypeReference:
		return readOpaqueField(s, &p.Reference, "ProposalOrRef.reference")
	default:
		return &UnknownValueError{Type: "ProposalOrRefType", Value: uint64(t)}
	}
}
