package mls

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// PrivateMessage is an encrypted, signed message (RFC 9420, Section 6.3):
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    ContentType content_type;
//	    opaque authenticated_data<V>;
//	    opaque encrypted_sender_data<V>;
//	    opaque ciphertext<V>;
//	} PrivateMessage;
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

func (m *PrivateMessage) marshal(b *cryptobyte.Builder) {
	tlspl.AddOpaque(b, m.GroupID)
	b.AddUint64(m.Epoch)
	b.AddUint8(uint8(m.ContentType))
	tlspl.AddOpaque(b, m.AuthenticatedData)
	tlspl.AddOpaque(b, m.EncryptedSenderData)
	tlspl.AddOpaque(b, m.Ciphertext)
}

func (m *PrivateMessage) unmarshal(s *cryptobyte.String) error {
	*m = PrivateMessage{}
	if err := readOpaqueField(s, &m.GroupID, "PrivateMessage.group_id"); err != nil {
		return err
	}
	if err := readU64(s, &m.Epoch, "PrivateMessage.epoch"); err != nil {
		return err
	}
	var t uint8
	if err := readU8(s, &t, "PrivateMessage.content_type"); err != nil {
		return err
	}
	m.ContentType = ContentType(t)
	if !m.ContentType.valid() {
		return &UnknownValueError{Type: "ContentType", Value: uint64(t)}
	}
	if err := readOpaqueField(s, &m.AuthenticatedData, "PrivateMessage.authenticated_data"); err != nil {
		return err
	}
	if err := readOpaqueField(s, &m.EncryptedSenderData, "PrivateMessage.encrypted_sender_data"); err != nil {
		return err
	}
	return readOpaqueField(s, &m.Ciphertext, "PrivateMessage.ciphertext")
}

// Marshal returns the TLS encoding of m.
func (m *PrivateMessage) Marshal() ([]byte, error) { return encodeValue(m.marshal) }

// UnmarshalPrivateMessage decodes a PrivateMessage, rejecting trailing bytes
// and unknown content types.
func UnmarshalPrivateMessage(data []byte) (*PrivateMessage, error) {
	var m PrivateMessage
	if err := decodeStrict(data, "mls.PrivateMessage", m.unmarshal); err != nil {
		return nil, err
	}
	return &m, nil
}

// SenderData identifies the sender and key of a PrivateMessage; it is
// encrypted under the sender data secret (RFC 9420, Section 6.3.2).
type SenderData struct {
	LeafIndex  LeafIndex
	Generation uint32
	ReuseGuard [4]byte
}

func (d *SenderData) marshal(b *cryptobyte.Builder) {
	b.AddUint32(uint32(d.LeafIndex))
	b.AddUint32(d.Generation)
	b.AddBytes(d.ReuseGuard[:])
}

func (d *SenderData) unmarshal(s *cryptobyte.String) error {
	var l uint32
	if err := readU32(s, &l, "SenderData.leaf_index"); err != nil {
		return err
	}
	d.LeafIndex = LeafIndex(l)
	if err := readU32(s, &d.Generation, "SenderData.generation"); err != nil {
		return err
	}
	if !s.CopyBytes(d.ReuseGuard[:]) {
		return errField("SenderData.reuse_guard")
	}
	return nil
}

// contentAAD encodes PrivateContentAAD (RFC 9420, Section 6.3.1):
// group_id<V>, uint64 epoch, content_type, authenticated_data<V>.
func (m *PrivateMessage) contentAAD() ([]byte, error) {
	out, err := m.senderDataAADTo(make([]byte, 0, 16+len(m.GroupID)+len(m.AuthenticatedData)))
	if err != nil {
		return nil, err
	}
	return appendOpaque(out, m.AuthenticatedData)
}

// senderDataAAD encodes SenderDataAAD (RFC 9420, Section 6.3.2):
// group_id<V>, uint64 epoch, content_type.
func (m *PrivateMessage) senderDataAAD() ([]byte, error) {
	return m.senderDataAADTo(make([]byte, 0, 13+len(m.GroupID)))
}

func (m *PrivateMessage) senderDataAADTo(dst []byte) ([]byte, error) {
	out, err := appendOpaque(dst, m.GroupID)
	if err != nil {
		return nil, err
	}
	out = binary.BigEndian.AppendUint64(out, m.Epoch)
	return append(out, byte(m.ContentType)), nil
}

// sealSenderData encrypts d into m.EncryptedSenderData; m.Ciphertext must
// already be set.
func (m *PrivateMessage) sealSenderData(cs CipherSuite, senderDataSecret []byte, d *SenderData) error {
	key, nonce, err := cs.SenderDataKeyNonce(senderDataSecret, m.Ciphertext)
	if err != nil {
		return err
	}
	aad, err := m.senderDataAAD()
	if err != nil {
		return err
	}
	pt := binary.BigEndian.AppendUint32(make([]byte, 0, 12), uint32(d.LeafIndex))
	pt = binary.BigEndian.AppendUint32(pt, d.Generation)
	pt = append(pt, d.ReuseGuard[:]...)
	m.EncryptedSenderData, err = cs.Seal(key, nonce, aad, pt)
	return err
}

// OpenSenderData decrypts the message's SenderData (RFC 9420, Section
// 6.3.2).
func (m *PrivateMessage) OpenSenderData(cs CipherSuite, senderDataSecret []byte) (*SenderData, error) {
	key, nonce, err := cs.SenderDataKeyNonce(senderDataSecret, m.Ciphertext)
	if err != nil {
		return nil, err
	}
	aad, err := m.senderDataAAD()
	if err != nil {
		return nil, err
	}
	pt, err := cs.Open(key, nonce, aad, m.EncryptedSenderData)
	if err != nil {
		return nil, fmt.Errorf("%w: sender data: %w", ErrDecrypt, err)
	}
	var d SenderData
	if err := decodeStrict(pt, "mls.SenderData", d.unmarshal); err != nil {
		return nil, err
	}
	return &d, nil
}

// applyReuseGuard XORs the reuse guard into the first four nonce bytes
// (RFC 9420, Section 6.3.1), returning a new slice.
func applyReuseGuard(nonce []byte, guard [4]byte) []byte {
	out := append([]byte(nil), nonce...)
	for i := range guard {
		out[i] ^= guard[i]
	}
	return out
}

// marshalPrivateMessageContent encodes PrivateMessageContent: the content
// body, the auth data and zero padding so that the total is a multiple of
// padBlock (no padding when padBlock <= 1).
func marshalPrivateMessageContent(ac *AuthenticatedContent, padBlock int) ([]byte, error) {
	var body []byte
	var err error
	if ac.Content.ContentType == ContentTypeApplication {
		// The hot path: two opaque vectors, appended into one buffer that
		// already has room for the padding.
		n := 8 + len(ac.Content.ApplicationData) + len(ac.Auth.Signature)
		if padBlock > 1 {
			n += padBlock
		}
		if body, err = appendOpaque(make([]byte, 0, n), ac.Content.ApplicationData); err != nil {
			return nil, err
		}
		if body, err = appendOpaque(body, ac.Auth.Signature); err != nil {
			return nil, err
		}
	} else {
		body, err = encodeValue(func(b *cryptobyte.Builder) {
			ac.Content.marshalBody(b)
			ac.Auth.marshal(b, ac.Content.ContentType)
		})
		if err != nil {
			return nil, err
		}
	}
	if padBlock > 1 {
		if rem := len(body) % padBlock; rem != 0 {
			body = append(body, make([]byte, padBlock-rem)...)
		}
	}
	return body, nil
}

// unmarshalPrivateMessageContent decodes PrivateMessageContent of content
// type t into c (body) and auth, and checks that all padding is zero
// (RFC 9420, Section 6.3.1).
func unmarshalPrivateMessageContent(data []byte, t ContentType, c *FramedContent, auth *FramedContentAuthData) error {
	s := cryptobyte.String(data)
	c.ContentType = t
	err := c.unmarshalBody(&s)
	if err == nil {
		err = auth.unmarshal(&s, t)
	}
	if err != nil {
		return &tlspl.DecodeError{What: "mls.PrivateMessageContent", Err: err}
	}
	for _, x := range s {
		if x != 0 {
			return ErrBadPadding
		}
	}
	return nil
}

// EncryptPrivateMessage encrypts signed content as a PrivateMessage with the
// given message key and nonce of generation gen from the sender's ratchet
// (RFC 9420, Section 6.3). ac must have wire format mls_private_message and
// a member sender. reuseGuard must be fresh random bytes.
func EncryptPrivateMessage(cs CipherSuite, ac *AuthenticatedContent, senderDataSecret, key, nonce []byte, gen uint32, reuseGuard [4]byte, padBlock int) (*PrivateMessage, error) {
	if ac.WireFormat != WireFormatPrivateMessage {
		return nil, fmt.Errorf("%w: content signed for wire format %d, not PrivateMessage", ErrInvalidMessage, ac.WireFormat)
	}
	if ac.Content.Sender.SenderType != SenderTypeMember {
		return nil, fmt.Errorf("%w: PrivateMessage sender must be a member", ErrInvalidMessage)
	}
	m := &PrivateMessage{
		GroupID:           ac.Content.GroupID,
		Epoch:             ac.Content.Epoch,
		ContentType:       ac.Content.ContentType,
		AuthenticatedData: ac.Content.AuthenticatedData,
	}
	pt, err := marshalPrivateMessageContent(ac, padBlock)
	if err != nil {
		return nil, err
	}
	aad, err := m.contentAAD()
	if err != nil {
		return nil, err
	}
	if m.Ciphertext, err = cs.Seal(key, applyReuseGuard(nonce, reuseGuard), aad, pt); err != nil {
		return nil, err
	}
	sd := SenderData{LeafIndex: ac.Content.Sender.LeafIndex, Generation: gen, ReuseGuard: reuseGuard}
	if err := m.sealSenderData(cs, senderDataSecret, &sd); err != nil {
		return nil, err
	}
	return m, nil
}

// DecryptContent decrypts the message's content with the key and nonce of
// the sender's ratchet at the generation sd names, and returns the
// AuthenticatedContent (wire format mls_private_message). The signature is
// not checked here.
func (m *PrivateMessage) DecryptContent(cs CipherSuite, sd *SenderData, key, nonce []byte) (*AuthenticatedContent, error) {
	aad, err := m.contentAAD()
	if err != nil {
		return nil, err
	}
	pt, err := cs.Open(key, applyReuseGuard(nonce, sd.ReuseGuard), aad, m.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: content: %w", ErrDecrypt, err)
	}
	ac := &AuthenticatedContent{WireFormat: WireFormatPrivateMessage}
	ac.Content = FramedContent{
		GroupID:           m.GroupID,
		Epoch:             m.Epoch,
		Sender:            MemberSender(sd.LeafIndex),
		AuthenticatedData: m.AuthenticatedData,
	}
	if err := unmarshalPrivateMessageContent(pt, m.ContentType, &ac.Content, &ac.Auth); err != nil {
		return nil, err
	}
	return ac, nil
}
