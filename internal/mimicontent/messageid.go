package mimicontent

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
)

// MessageID identifies one MIMI content message (Section 3.3): a hash
// algorithm octet followed by the first 31 octets of the hash.
type MessageID [MessageIDSize]byte

// MessageIDSize is the length of a message ID in octets.
const MessageIDSize = 32

// HashAlg returns the hash algorithm octet of the ID (1 = SHA-256).
func (id MessageID) HashAlg() uint8 { return id[0] }

// String returns the ID in lowercase hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// MessageIDFromBytes converts a 32-octet slice into a MessageID.
func MessageIDFromBytes(b []byte) (MessageID, error) {
	var id MessageID
	if len(b) != MessageIDSize {
		return id, invalid("messageId", "not 32 octets")
	}
	copy(id[:], b)
	return id, nil
}

// saltPrefix is how every deterministic mimiContent starts: an array of 7
// items (0x87) whose first item is a 16-octet byte string (0x50).
var saltPrefix = [2]byte{0x80 | 7, 0x40 | SaltSize}

// ComputeMessageID computes the message ID of encoded, the exact bytes of
// a mimiContent as sent, from the sender's and the room's URIs
// (draft-ietf-mimi-content-08, Section 3.3):
//
//	hash_output = SHA-256( senderUriLength || senderUri ||
//	                       roomUriLength   || roomUri   ||
//	                       message         || salt )
//	messageId   = 0x01 || hash_output[0..30]
//
// The lengths are big-endian uint16; the salt is hashed a second time to
// defeat length extension. The ID is always computed over the received
// bytes, never over a re-encoding. The salt is read from the fixed
// position every deterministic mimiContent puts it; ComputeMessageID does
// not otherwise check encoded, so callers decode it first. The sender and
// room should be those MLS authenticated (the sender's credential and the
// room of the MLS group), which for a well-formed message equal the
// senderUri and roomUri extensions; the draft's examples use the latter.
func ComputeMessageID(senderURI, roomURI string, encoded []byte) (MessageID, error) {
	var id MessageID
	if len(senderURI) > math.MaxUint16 || len(roomURI) > math.MaxUint16 {
		return id, invalid("messageId", "URI longer than 65535 octets")
	}
	if len(encoded) < 2+SaltSize || encoded[0] != saltPrefix[0] || encoded[1] != saltPrefix[1] {
		return id, &DecodeError{Field: "salt", Detail: "content does not start with a 7-item array and 16-octet salt", Err: ErrSchema}
	}
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(senderURI))))
	h.Write([]byte(senderURI))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(roomURI))))
	h.Write([]byte(roomURI))
	h.Write(encoded)
	h.Write(encoded[2 : 2+SaltSize])
	sum := h.Sum(nil)
	id[0] = HashAlgSHA256
	copy(id[1:], sum[:MessageIDSize-1])
	return id, nil
}

// EncodeWithID encodes c and computes its message ID from the senderUri
// and roomUri extensions, which must both be set.
func (c *Content) EncodeWithID() ([]byte, MessageID, error) {
	if c.Extensions.SenderURI == "" || c.Extensions.RoomURI == "" {
		return nil, MessageID{}, invalid("mimiExtensions", "senderUri and roomUri are needed for the message ID")
	}
	b, err := c.Encode()
	if err != nil {
		return nil, MessageID{}, err
	}
	id, err := ComputeMessageID(c.Extensions.SenderURI, c.Extensions.RoomURI, b)
	if err != nil {
		return nil, MessageID{}, err
	}
	return b, id, nil
}

// CompareOrder orders two messages as the draft sorts a room or topic:
// by hub accepted timestamp (milliseconds since the UNIX epoch), then by
// the lexically lowest message ID (Sections 3.4 and 5.11). It returns -1,
// 0 or +1.
func CompareOrder(aTimestamp uint64, a MessageID, bTimestamp uint64, b MessageID) int {
	if c := cmp.Compare(aTimestamp, bTimestamp); c != 0 {
		return c
	}
	return bytes.Compare(a[:], b[:])
}
