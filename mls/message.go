package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// MLSMessage is the top-level MLS message (RFC 9420, Section 6):
//
//	struct {
//	    ProtocolVersion version = mls10;
//	    WireFormat wire_format;
//	    select (MLSMessage.wire_format) {
//	        case mls_public_message:  PublicMessage public_message;
//	        case mls_private_message: PrivateMessage private_message;
//	        case mls_welcome:         Welcome welcome;
//	        case mls_group_info:      GroupInfo group_info;
//	        case mls_key_package:     KeyPackage key_package;
//	    };
//	} MLSMessage;
//
// Exactly the field named by WireFormat is set. Any version other than
// mls10 and any unknown wire format is rejected with an
// [*UnknownValueError].
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

func (m *MLSMessage) marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(m.Version))
	b.AddUint16(uint16(m.WireFormat))
	missing := false
	switch m.WireFormat {
	case WireFormatPublicMessage:
		if missing = m.PublicMessage == nil; !missing {
			m.PublicMessage.marshal(b)
		}
	case WireFormatPrivateMessage:
		if missing = m.PrivateMessage == nil; !missing {
			m.PrivateMessage.marshal(b)
		}
	case WireFormatWelcome:
		if missing = m.Welcome == nil; !missing {
			m.Welcome.marshal(b)
		}
	case WireFormatGroupInfo:
		if missing = m.GroupInfo == nil; !missing {
			m.GroupInfo.marshal(b)
		}
	case WireFormatKeyPackage:
		if missing = m.KeyPackage == nil; !missing {
			m.KeyPackage.marshal(b)
		}
	default:
		b.SetError(&UnknownValueError{Type: "WireFormat", Value: uint64(m.WireFormat)})
	}
	if missing {
		b.SetError(fmt.Errorf("mls: encode MLSMessage: no body for wire format %d", m.WireFormat))
	}
}

func (m *MLSMessage) unmarshal(s *cryptobyte.String) error {
	*m = MLSMessage{}
	var v, wf uint16
	if err := readU16(s, &v, "MLSMessage.version"); err != nil {
		return err
	}
	m.Version = ProtocolVersion(v)
	if m.Version != ProtocolVersionMLS10 {
		return &UnknownValueError{Type: "ProtocolVersion", Value: uint64(v)}
	}
	if err := readU16(s, &wf, "MLSMessage.wire_format"); err != nil {
		return err
	}
	m.WireFormat = WireFormat(wf)
	switch m.WireFormat {
	case WireFormatPublicMessage:
		m.PublicMessage = new(PublicMessage)
		return m.PublicMessage.unmarshal(s)
	case WireFormatPrivateMessage:
		m.PrivateMessage = new(PrivateMessage)
		return m.PrivateMessage.unmarshal(s)
	case WireFormatWelcome:
		m.Welcome = new(Welcome)
		return m.Welcome.unmarshal(s)
	case WireFormatGroupInfo:
		m.GroupInfo = new(GroupInfo)
		return m.GroupInfo.unmarshal(s)
	case WireFormatKeyPackage:
		m.KeyPackage = new(KeyPackage)
		return m.KeyPackage.unmarshal(s)
	default:
		return &UnknownValueError{Type: "WireFormat", Value: uint64(wf)}
	}
}

// Marshal returns the TLS encoding of m.
func (m *MLSMessage) Marshal() ([]byte, error) { return encodeValue(m.marshal) }

// UnmarshalMLSMessage decodes an MLSMessage, rejecting trailing bytes.
func UnmarshalMLSMessage(data []byte) (*MLSMessage, error) {
	var m MLSMessage
	if err := decodeStrict(data, "mls.MLSMessage", m.unmarshal); err != nil {
		return nil, err
	}
	return &m, nil
}
