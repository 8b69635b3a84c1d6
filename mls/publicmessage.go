package mls

import (
	"crypto/hmac"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// PublicMessage is a signed, unencrypted message (RFC 9420, Section 6.2):
//
//	struct {
//	    FramedContent content;
//	    FramedContentAuthData auth;
//	    select (PublicMessage.content.sender.sender_type) {
//	        case member: MAC membership_tag;
//	        case external, new_member_commit, new_member_proposal: struct{};
//	    };
//	} PublicMessage;
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte // member senders only
}

func (m *PublicMessage) marshal(b *cryptobyte.Builder) {
	m.Content.marshal(b)
	m.Auth.marshal(b, m.Content.ContentType)
	if m.Content.Sender.SenderType == SenderTypeMember {
		tlspl.AddOpaque(b, m.MembershipTag)
	}
}

func (m *PublicMessage) unmarshal(s *cryptobyte.String) error {
	*m = PublicMessage{}
	if err := m.Content.unmarshal(s); err != nil {
		return err
	}
	if err := m.Auth.unmarshal(s, m.Content.ContentType); err != nil {
		return err
	}
	if m.Content.Sender.SenderType == SenderTypeMember {
		return readOpaqueField(s, &m.MembershipTag, "PublicMessage.membership_tag")
	}
	return nil
}

// Marshal returns the TLS encoding of m.
func (m *PublicMessage) Marshal() ([]byte, error) { return encodeValue(m.marshal) }

// UnmarshalPublicMessage decodes a PublicMessage, rejecting trailing bytes.
func UnmarshalPublicMessage(data []byte) (*PublicMessage, error) {
	var m PublicMessage
	if err := decodeStrict(data, "mls.PublicMessage", m.unmarshal); err != nil {
		return nil, err
	}
	return &m, nil
}

// AuthenticatedContent returns the message's content with wire format
// mls_public_message.
func (m *PublicMessage) AuthenticatedContent() *AuthenticatedContent {
	return &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: m.Content, Auth: m.Auth}
}

// membershipTagInput encodes AuthenticatedContentTBM = FramedContentTBS ||
// FramedContentAuthData (RFC 9420, Section 6.2).
func (m *PublicMessage) membershipTagInput(groupContext []byte) ([]byte, error) {
	ac := m.AuthenticatedContent()
	tbs, err := ac.tbs(groupContext)
	if err != nil {
		return nil, err
	}
	auth, err := encodeValue(func(b *cryptobyte.Builder) { m.Auth.marshal(b, m.Content.ContentType) })
	if err != nil {
		return nil, err
	}
	return append(tbs, auth...), nil
}

// NewPublicMessage frames signed content as a PublicMessage and, for a
// member sender, computes membership_tag = MAC(membership_key,
// AuthenticatedContentTBM) (RFC 9420, Section 6.2). ac must have wire format
// mls_public_message and, for a commit, its confirmation tag set.
func NewPublicMessage(cs CipherSuite, ac *AuthenticatedContent, membershipKey, groupContext []byte) (*PublicMessage, error) {
	if ac.WireFormat != WireFormatPublicMessage {
		return nil, fmt.Errorf("%w: content signed for wire format %d, not PublicMessage", ErrInvalidMessage, ac.WireFormat)
	}
	m := &PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if m.Content.Sender.SenderType != SenderTypeMember {
		return m, nil
	}
	in, err := m.membershipTagInput(groupContext)
	if err != nil {
		return nil, err
	}
	if m.MembershipTag, err = cs.MAC(membershipKey, in); err != nil {
		return nil, err
	}
	return m, nil
}

// VerifyMembershipTag checks a member sender's membership tag; for other
// sender types it checks that there is none to check.
func (m *PublicMessage) VerifyMembershipTag(cs CipherSuite, membershipKey, groupContext []byte) error {
	if m.Content.Sender.SenderType != SenderTypeMember {
		return nil
	}
	in, err := m.membershipTagInput(groupContext)
	if err != nil {
		return err
	}
	want, err := cs.MAC(membershipKey, in)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, m.MembershipTag) {
		return ErrBadMembershipTag
	}
	return nil
}
