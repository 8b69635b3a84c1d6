package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// WireFormat identifies the kind of an [MLSMessage] (RFC 9420, Section 6).
type WireFormat uint16

// The wire formats of RFC 9420.
const (
	WireFormatPublicMessage  WireFormat = 0x0001
	WireFormatPrivateMessage WireFormat = 0x0002
	WireFormatWelcome        WireFormat = 0x0003
	WireFormatGroupInfo      WireFormat = 0x0004
	WireFormatKeyPackage     WireFormat = 0x0005
)

// ContentType is the type of a message's content (RFC 9420, Section 6).
type ContentType uint8

// The content types.
const (
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

func (t ContentType) valid() bool { return t >= ContentTypeApplication && t <= ContentTypeCommit }

// SenderType says who sent a message (RFC 9420, Section 6).
type SenderType uint8

// The sender types.
const (
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

// Sender identifies a message's sender (RFC 9420, Section 6):
// LeafIndex for a member, SenderIndex (into the external_senders
// extension) for an external sender, nothing for new members.
type Sender struct {
	SenderType  SenderType
	LeafIndex   LeafIndex
	SenderIndex uint32
}

// MemberSender returns the Sender of the member at leaf.
func MemberSender(leaf LeafIndex) Sender {
	return Sender{SenderType: SenderTypeMember, LeafIndex: leaf}
}

func (s *Sender) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(s.SenderType))
	switch s.SenderType {
	case SenderTypeMember:
		b.AddUint32(uint32(s.LeafIndex))
	case SenderTypeExternal:
		b.AddUint32(s.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		b.SetError(&UnknownValueError{Type: "SenderType", Value: uint64(s.SenderType)})
	}
}

func (s *Sender) unmarshal(str *cryptobyte.String) error {
	var t uint8
	if err := readU8(str, &t, "Sender.sender_type"); err != nil {
		return err
	}
	*s = Sender{SenderType: SenderType(t)}
	switch s.SenderType {
	case SenderTypeMember:
		var l uint32
		err := readU32(str, &l, "Sender.leaf_index")
		s.LeafIndex = LeafIndex(l)
		return err
	case SenderTypeExternal:
		return readU32(str, &s.SenderIndex, "Sender.sender_index")
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
		return nil
	default:
		return &UnknownValueError{Type: "SenderType", Value: uint64(t)}
	}
}

// FramedContent is the content of a handshake or application message with
// its framing (RFC 9420, Section 6):
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    Sender sender;
//	    opaque authenticated_data<V>;
//	    ContentType content_type;
//	    select (FramedContent.content_type) {
//	        case application: opaque application_data<V>;
//	        case proposal:    Proposal proposal;
//	        case commit:      Commit commit;
//	    };
//	} FramedContent;
//
// Exactly the field of ContentType is used. A decoded FramedContent keeps
// its received bytes for signatures and transcript hashes; treat it as
// read-only.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          Proposal
	Commit            *Commit

	raw []byte
}

func (c *FramedContent) marshalBody(b *cryptobyte.Builder) {
	switch c.ContentType {
	case ContentTypeApplication:
		tlspl.AddOpaque(b, c.ApplicationData)
	case ContentTypeProposal:
		marshalProposal(b, c.Proposal)
	case ContentTypeCommit:
		if c.Commit == nil {
			b.SetError(errField("nil FramedContent.commit"))
			return
		}
		c.Commit.marshal(b)
	default:
		b.SetError(&UnknownValueError{Type: "ContentType", Value: uint64(c.ContentType)})
	}
}

func (c *FramedContent) unmarshalBody(s *cryptobyte.String) error {
	switch c.ContentType {
	case ContentTypeApplication:
		return readOpaqueField(s, &c.ApplicationData, "FramedContent.application_data")
	case ContentTypeProposal:
		var err error
		c.Proposal, err = unmarshalProposal(s)
		return err
	case ContentTypeCommit:
		c.Commit = new(Commit)
		return c.Commit.unmarshal(s)
	default:
		return &UnknownValueError{Type: "ContentType", Value: uint64(c.ContentType)}
	}
}

func (c *FramedContent) marshal(b *cryptobyte.Builder) {
	tlspl.AddOpaque(b, c.GroupID)
	b.AddUint64(c.Epoch)
	c.Sender.marshal(b)
	tlspl.AddOpaque(b, c.AuthenticatedData)
	b.AddUint8(uint8(c.ContentType))
	c.marshalBody(b)
}

func (c *FramedContent) unmarshal(s *cryptobyte.String) error {
	start := *s
	*c = FramedContent{}
	if err := readOpaqueField(s, &c.GroupID, "FramedContent.group_id"); err != nil {
		return err
	}
	if err := readU64(s, &c.Epoch, "FramedContent.epoch"); err != nil {
		return err
	}
	if err := c.Sender.unmarshal(s); err != nil {
		return err
	}
	if err := readOpaqueField(s, &c.AuthenticatedData, "FramedContent.authenticated_data"); err != nil {
		return err
	}
	var t uint8
	if err := readU8(s, &t, "FramedContent.content_type"); err != nil {
		return err
	}
	c.ContentType = ContentType(t)
	if err := c.unmarshalBody(s); err != nil {
		return err
	}
	c.raw = consumed(start, *s)
	return nil
}

// bytes returns the received encoding, or a fresh one for a built value.
func (c *FramedContent) bytes() ([]byte, error) {
	if c.raw != nil {
		return c.raw, nil
	}
	return encodeValue(c.marshal)
}

// FramedContentAuthData authenticates a FramedContent (RFC 9420,
// Section 6.1): the sender's signature and, for a commit, the confirmation
// tag.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte // commits only
}

func (a *FramedContentAuthData) marshal(b *cryptobyte.Builder, t ContentType) {
	tlspl.AddOpaque(b, a.Signature)
	if t == ContentTypeCommit {
		tlspl.AddOpaque(b, a.ConfirmationTag)
	}
}

func (a *FramedContentAuthData) unmarshal(s *cryptobyte.String, t ContentType) error {
	*a = FramedContentAuthData{}
	if err := readOpaqueField(s, &a.Signature, "FramedContentAuthData.signature"); err != nil {
		return err
	}
	if t == ContentTypeCommit {
		return readOpaqueField(s, &a.ConfirmationTag, "FramedContentAuthData.confirmation_tag")
	}
	return nil
}

// AuthenticatedContent is a FramedContent with its wire format and
// authentication data (RFC 9420, Section 6.1). It is what a receiver
// obtains from a verified PublicMessage or decrypted PrivateMessage, and the
// input to transcript hashes and ProposalRef.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

func (a *AuthenticatedContent) marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(a.WireFormat))
	a.Content.marshal(b)
	a.Auth.marshal(b, a.Content.ContentType)
}

func (a *AuthenticatedContent) unmarshal(s *cryptobyte.String) error {
	var wf uint16
	if err := readU16(s, &wf, "AuthenticatedContent.wire_format"); err != nil {
		return err
	}
	a.WireFormat = WireFormat(wf)
	if a.WireFormat != WireFormatPublicMessage && a.WireFormat != WireFormatPrivateMessage {
		return &UnknownValueError{Type: "WireFormat", Value: uint64(wf)}
	}
	if err := a.Content.unmarshal(s); err != nil {
		return err
	}
	return a.Auth.unmarshal(s, a.Content.ContentType)
}

// Marshal returns the TLS encoding of a.
func (a *AuthenticatedContent) Marshal() ([]byte, error) { return encodeValue(a.marshal) }

// UnmarshalAuthenticatedContent decodes an AuthenticatedContent, rejecting
// trailing bytes.
func UnmarshalAuthenticatedContent(data []byte) (*AuthenticatedContent, error) {
	var a AuthenticatedContent
	if err := decodeStrict(data, "mls.AuthenticatedContent", a.unmarshal); err != nil {
		return nil, err
	}
	return &a, nil
}

// Label of FramedContent signatures (RFC 9420, Section 6.1).
const labelFramedContentTBS = "FramedContentTBS"

// tbs encodes FramedContentTBS: version, wire format, the content, and for
// member and new_member_commit senders the serialized GroupContext.
func (a *AuthenticatedContent) tbs(groupContext []byte) ([]byte, error) {
	content, err := a.Content.bytes()
	if err != nil {
		return nil, err
	}
	needsContext := a.Content.Sender.SenderType == SenderTypeMember ||
		a.Content.Sender.SenderType == SenderTypeNewMemberCommit
	if needsContext && groupContext == nil {
		return nil, fmt.Errorf("mls: FramedContentTBS for sender type %d needs the GroupContext", a.Content.Sender.SenderType)
	}
	out := make([]byte, 0, 4+len(content)+len(groupContext))
	out = append(out, byte(ProtocolVersionMLS10>>8), byte(ProtocolVersionMLS10),
		byte(a.WireFormat>>8), byte(a.WireFormat))
	out = append(out, content...)
	if needsContext {
		out = append(out, groupContext...)
	}
	return out, nil
}

// SignFramedContent signs content for sending with wire format wf
// (RFC 9420, Section 6.1). groupContext is the serialized GroupContext of
// the epoch (required for member and new_member_commit senders). For a
// commit the caller sets Auth.ConfirmationTag afterwards, once the new
// epoch's confirmation key is known.
func SignFramedContent(cs CipherSuite, wf WireFormat, content *FramedContent, groupContext []byte, priv SignaturePrivateKey) (*AuthenticatedContent, error) {
	ac := &AuthenticatedContent{WireFormat: wf, Content: *content}
	tbs, err := ac.tbs(groupContext)
	if err != nil {
		return nil, err
	}
	sig, err := cs.SignWithLabel(priv, labelFramedContentTBS, tbs)
	if err != nil {
		return nil, fmt.Errorf("mls: sign content: %w", err)
	}
	ac.Auth.Signature = sig
	return ac, nil
}

// VerifySignature checks the content's signature against the sender's
// signature public key (RFC 9420, Section 6.1).
func (a *AuthenticatedContent) VerifySignature(cs CipherSuite, signerPub, groupContext []byte) error {
	tbs, err := a.tbs(groupContext)
	if err != nil {
		return err
	}
	if err := cs.VerifyWithLabel(signerPub, labelFramedContentTBS, tbs, a.Auth.Signature); err != nil {
		return fmt.Errorf("mls: verify content signature: %w", err)
	}
	return nil
}

// Label of ProposalRef (RFC 9420, Section 5.2).
const labelProposalRef = "MLS 1.0 Proposal Reference"

// ProposalRef returns RefHash("MLS 1.0 Proposal Reference",
// AuthenticatedContent) for a proposal message (RFC 9420, Section 5.2).
func (a *AuthenticatedContent) ProposalRef(cs CipherSuite) ([]byte, error) {
	if a.Content.ContentType != ContentTypeProposal {
		return nil, fmt.Errorf("%w: ProposalRef of a non-proposal", ErrInvalidMessage)
	}
	data, err := a.receivedBytes()
	if err != nil {
		return nil, err
	}
	return cs.RefHash(labelProposalRef, data)
}

// receivedBytes encodes the AuthenticatedContent around the FramedContent
// as received (see [FramedContent]), for hashing.
func (a *AuthenticatedContent) receivedBytes() ([]byte, error) {
	content, err := a.Content.bytes()
	if err != nil {
		return nil, err
	}
	return encodeValue(func(b *cryptobyte.Builder) {
		b.AddUint16(uint16(a.WireFormat))
		b.AddBytes(content)
		a.Auth.marshal(b, a.Content.ContentType)
	})
}
