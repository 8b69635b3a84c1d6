package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// ExtensionType identifies an [Extension] (RFC 9420, Section 17.3).
type ExtensionType uint16

// Extension types of RFC 9420 and draft-ietf-mls-extensions.
const (
	ExtensionTypeApplicationID        ExtensionType = 0x0001
	ExtensionTypeRatchetTree          ExtensionType = 0x0002
	ExtensionTypeRequiredCapabilities ExtensionType = 0x0003
	ExtensionTypeExternalPub          ExtensionType = 0x0004
	ExtensionTypeExternalSenders      ExtensionType = 0x0005
	// ExtensionTypeAppDataDictionary is app_data_dictionary from
	// draft-ietf-mls-extensions (value 0x0006 as the draft suggests).
	ExtensionTypeAppDataDictionary ExtensionType = 0x0006
)

// Extension is one typed, opaque extension (RFC 9420, Section 7.2).
type Extension struct {
	ExtensionType ExtensionType
	ExtensionData []byte
}

// Extensions is an extension list, as in Extension extensions<V>. RFC 9420
// (Section 13.4) forbids two extensions of the same type in one list: the
// decoder rejects that with [ErrDuplicateExtension] and so does the encoder.
type Extensions []Extension

// Find returns the extension of type t.
func (e Extensions) Find(t ExtensionType) (Extension, bool) {
	for _, x := range e {
		if x.ExtensionType == t {
			return x, true
		}
	}
	return Extension{}, false
}

func (e Extensions) marshal(b *cryptobyte.Builder) {
	if err := e.checkUnique(); err != nil {
		b.SetError(err)
		return
	}
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, x := range e {
			b.AddUint16(uint16(x.ExtensionType))
			tlspl.AddOpaque(b, x.ExtensionData)
		}
	})
}

// checkUnique rejects two extensions of one type. It runs in linear time:
// a hostile list can hold millions of entries.
func (e Extensions) checkUnique() error {
	if len(e) < 2 {
		return nil
	}
	seen := make(map[ExtensionType]struct{}, len(e))
	for _, x := range e {
		if _, dup := seen[x.ExtensionType]; dup {
			return fmt.Errorf("%w: 0x%04x", ErrDuplicateExtension, uint16(x.ExtensionType))
		}
		seen[x.ExtensionType] = struct{}{}
	}
	return nil
}

func (e *Extensions) unmarshal(s *cryptobyte.String) error {
	list := Extensions{}
	err := readListErr(s, "extensions", func(s *cryptobyte.String) error {
		var x Extension
		var t uint16
		if err := readU16(s, &t, "Extension.extension_type"); err != nil {
			return err
		}
		x.ExtensionType = ExtensionType(t)
		if err := readOpaqueField(s, &x.ExtensionData, "Extension.extension_data"); err != nil {
			return err
		}
		list = append(list, x)
		return nil
	})
	if err != nil {
		return err
	}
	if err := list.checkUnique(); err != nil {
		return err
	}
	*e = list
	return nil
}

// ProtocolVersion is the MLS protocol version (RFC 9420, Section 6).
type ProtocolVersion uint16

// ProtocolVersionMLS10 is MLS 1.0, the only version RFC 9420 defines.
const ProtocolVersionMLS10 ProtocolVersion = 1

// Capabilities lists what a client supports (RFC 9420, Section 7.2).
// Unknown (e.g. GREASE) values are kept as they are.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []CipherSuite
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

func (c *Capabilities) marshal(b *cryptobyte.Builder) {
	addU16s(b, c.Versions)
	addU16s(b, c.CipherSuites)
	addU16s(b, c.Extensions)
	addU16s(b, c.Proposals)
	addU16s(b, c.Credentials)
}

func (c *Capabilities) unmarshal(s *cryptobyte.String) error {
	if err := readU16s(s, &c.Versions, "Capabilities.versions"); err != nil {
		return err
	}
	if err := readU16s(s, &c.CipherSuites, "Capabilities.cipher_suites"); err != nil {
		return err
	}
	if err := readU16s(s, &c.Extensions, "Capabilities.extensions"); err != nil {
		return err
	}
	if err := readU16s(s, &c.Proposals, "Capabilities.proposals"); err != nil {
		return err
	}
	return readU16s(s, &c.Credentials, "Capabilities.credentials")
}

// RequiredCapabilities is the required_capabilities GroupContext extension
// (RFC 9420, Section 11.1).
type RequiredCapabilities struct {
	ExtensionTypes  []ExtensionType
	ProposalTypes   []ProposalType
	CredentialTypes []CredentialType
}

func (r *RequiredCapabilities) marshal(b *cryptobyte.Builder) {
	addU16s(b, r.ExtensionTypes)
	addU16s(b, r.ProposalTypes)
	addU16s(b, r.CredentialTypes)
}

func (r *RequiredCapabilities) unmarshal(s *cryptobyte.String) error {
	if err := readU16s(s, &r.ExtensionTypes, "RequiredCapabilities.extension_types"); err != nil {
		return err
	}
	if err := readU16s(s, &r.ProposalTypes, "RequiredCapabilities.proposal_types"); err != nil {
		return err
	}
	return readU16s(s, &r.CredentialTypes, "RequiredCapabilities.credential_types")
}

// Marshal returns the extension_data encoding of r.
func (r *RequiredCapabilities) Marshal() ([]byte, error) { return encodeValue(r.marshal) }

// UnmarshalRequiredCapabilities decodes required_capabilities extension data.
func UnmarshalRequiredCapabilities(data []byte) (*RequiredCapabilities, error) {
	var r RequiredCapabilities
	if err := decodeStrict(data, "mls.RequiredCapabilities", r.unmarshal); err != nil {
		return nil, err
	}
	return &r, nil
}

// ExternalPub is the external_pub GroupInfo extension (RFC 9420, Section
// 12.4.3.2): the HPKE public key for external commits.
type ExternalPub struct {
	ExternalPub []byte
}

// Marshal returns the extension_data encoding of e.
func (e *ExternalPub) Marshal() ([]byte, error) {
	return encodeValue(func(b *cryptobyte.Builder) { tlspl.AddOpaque(b, e.ExternalPub) })
}

// UnmarshalExternalPub decodes external_pub extension data.
func UnmarshalExternalPub(data []byte) (*ExternalPub, error) {
	var e ExternalPub
	err := decodeStrict(data, "mls.ExternalPub", func(s *cryptobyte.String) error {
		return readOpaqueField(s, &e.ExternalPub, "ExternalPub.external_pub")
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// ExternalSender is one entry of the external_senders GroupContext extension
// (RFC 9420, Section 12.1.8.1). Rhizome servers are external senders.
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// ExternalSenders is the external_senders extension: ExternalSender
// external_senders<V>.
type ExternalSenders []ExternalSender

// Marshal returns the extension_data encoding of e.
func (e ExternalSenders) Marshal() ([]byte, error) {
	return encodeValue(func(b *cryptobyte.Builder) {
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for i := range e {
				tlspl.AddOpaque(b, e[i].SignatureKey)
				e[i].Credential.marshal(b)
			}
		})
	})
}

// UnmarshalExternalSenders decodes external_senders extension data.
func UnmarshalExternalSenders(data []byte) (ExternalSenders, error) {
	out := ExternalSenders{}
	err := decodeStrict(data, "mls.ExternalSenders", func(s *cryptobyte.String) error {
		return readListErr(s, "external_senders", func(s *cryptobyte.String) error {
			var x ExternalSender
			if err := readOpaqueField(s, &x.SignatureKey, "ExternalSender.signature_key"); err != nil {
				return err
			}
			if err := x.Credential.unmarshal(s); err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ComponentID identifies an application component (draft-ietf-mls-extensions,
// Section "Component IDs").
type ComponentID uint32

// ComponentData is one entry of an [AppDataDictionary].
type ComponentData struct {
	ComponentID ComponentID
	Data        []byte
}

// AppDataDictionary is the content of the app_data_dictionary extension
// (draft-ietf-mls-extensions): entries sorted by component_id, at most one
// per component. Rhizome binds its room state into the GroupContext with it.
type AppDataDictionary struct {
	ComponentData []ComponentData
}

// ErrUnsortedComponents reports an app_data_dictionary whose entries are not
// strictly ascending by component_id.
var ErrUnsortedComponents = fmt.Errorf("%w: app_data_dictionary entries not strictly sorted", tlspl.ErrMalformed)

func (d *AppDataDictionary) check() error {
	for i := 1; i < len(d.ComponentData); i++ {
		if d.ComponentData[i].ComponentID <= d.ComponentData[i-1].ComponentID {
			return ErrUnsortedComponents
		}
	}
	return nil
}

// Get returns the data of component id.
func (d *AppDataDictionary) Get(id ComponentID) ([]byte, bool) {
	for _, c := range d.ComponentData {
		if c.ComponentID == id {
			return c.Data, true
		}
	}
	return nil, false
}

// Marshal returns the extension_data encoding of d. Entries must already be
// sorted and unique.
func (d *AppDataDictionary) Marshal() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return encodeValue(func(b *cryptobyte.Builder) {
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, c := range d.ComponentData {
				b.AddUint32(uint32(c.ComponentID))
				tlspl.AddOpaque(b, c.Data)
			}
		})
	})
}

// UnmarshalAppDataDictionary decodes app_data_dictionary extension data and
// rejects unsorted or duplicate component IDs.
func UnmarshalAppDataDictionary(data []byte) (*AppDataDictionary, error) {
	d := AppDataDictionary{ComponentData: []ComponentData{}}
	err := decodeStrict(data, "mls.AppDataDictionary", func(s *cryptobyte.String) error {
		return readListErr(s, "component_data", func(s *cryptobyte.String) error {
			var c ComponentData
			var id uint32
			if err := readU32(s, &id, "ComponentData.component_id"); err != nil {
				return err
			}
			c.ComponentID = ComponentID(id)
			if err := readOpaqueField(s, &c.Data, "ComponentData.data"); err != nil {
				return err
			}
			d.ComponentData = append(d.ComponentData, c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if err := d.check(); err != nil {
		return nil, &tlspl.DecodeError{What: "mls.AppDataDictionary", Err: err}
	}
	return &d, nil
}
