package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// CredentialType identifies the form of a [Credential] (RFC 9420, Section
// 5.3 and 17.5).
type CredentialType uint16

// The credential types of RFC 9420.
const (
	CredentialTypeBasic CredentialType = 0x0001
	CredentialTypeX509  CredentialType = 0x0002
)

// Credential binds an identity to a signature key (RFC 9420, Section 5.3):
//
//	struct {
//	    CredentialType credential_type;
//	    select (Credential.credential_type) {
//	        case basic: opaque identity<V>;
//	        case x509:  Certificate certificates<V>;
//	    };
//	} Credential;
//
// A credential of any other type cannot be decoded (its body has no length
// prefix), so it is rejected with an [*UnknownValueError].
type Credential struct {
	CredentialType CredentialType
	// Identity is the identity of a basic credential.
	Identity []byte
	// Certificates holds the DER certificates (cert_data) of an x509
	// credential, leaf first.
	Certificates [][]byte
}

// NewBasicCredential returns a basic credential for identity.
func NewBasicCredential(identity []byte) Credential {
	return Credential{CredentialType: CredentialTypeBasic, Identity: identity}
}

func (c *Credential) marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(c.CredentialType))
	switch c.CredentialType {
	case CredentialTypeBasic:
		tlspl.AddOpaque(b, c.Identity)
	case CredentialTypeX509:
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, cert := range c.Certificates {
				tlspl.AddOpaque(b, cert)
			}
		})
	default:
		b.SetError(&UnknownValueError{Type: "CredentialType", Value: uint64(c.CredentialType)})
	}
}

func (c *Credential) unmarshal(s *cryptobyte.String) error {
	var t uint16
	if err := readU16(s, &t, "Credential.credential_type"); err != nil {
		return err
	}
	*c = Credential{CredentialType: CredentialType(t)}
	switch c.CredentialType {
	case CredentialTypeBasic:
		return readOpaqueField(s, &c.Identity, "Credential.identity")
	case CredentialTypeX509:
		c.Certificates = [][]byte{}
		return readListErr(s, "Credential.certificates", func(s *cryptobyte.String) error {
			var cert []byte
			if err := readOpaqueField(s, &cert, "Certificate.cert_data"); err != nil {
				return err
			}
			c.Certificates = append(c.Certificates, cert)
			return nil
		})
	default:
		return &UnknownValueError{Type: "CredentialType", Value: uint64(t)}
	}
}

// Marshal returns the TLS encoding of c.
func (c *Credential) Marshal() ([]byte, error) { return encodeValue(c.marshal) }

// UnmarshalCredential decodes a Credential, rejecting trailing bytes.
func UnmarshalCredential(data []byte) (*Credential, error) {
	var c Credential
	if err := decodeStrict(data, "mls.Credential", c.unmarshal); err != nil {
		return nil, err
	}
	return &c, nil
}
