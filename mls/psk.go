package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// PSKType says where a pre-shared key comes from (RFC 9420, Section 8.4).
type PSKType uint8

// The PSK types of RFC 9420. 0 is reserved.
const (
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

// ResumptionPSKUsage says why a resumption PSK is used (RFC 9420,
// Section 8.4). 0 is reserved.
type ResumptionPSKUsage uint8

// The resumption PSK usages of RFC 9420.
const (
	ResumptionPSKUsageApplication ResumptionPSKUsage = 1
	ResumptionPSKUsageReinit      ResumptionPSKUsage = 2
	ResumptionPSKUsageBranch      ResumptionPSKUsage = 3
)

// PreSharedKeyID names a PSK (RFC 9420, Section 8.4):
//
//	struct {
//	  PSKType psktype;
//	  select (PreSharedKeyID.psktype) {
//	    case external:   opaque psk_id<V>;
//	    case resumption: ResumptionPSKUsage usage;
//	                     opaque psk_group_id<V>;
//	                     uint64 psk_epoch;
//	  };
//	  opaque psk_nonce<V>;
//	} PreSharedKeyID;
//
// PSKID is set for external PSKs; Usage, PSKGroupID and PSKEpoch for
// resumption PSKs.
type PreSharedKeyID struct {
	PSKType    PSKType
	PSKID      []byte // external
	Usage      ResumptionPSKUsage
	PSKGroupID []byte // resumption
	PSKEpoch   uint64 // resumption
	PSKNonce   []byte
}

// marshal appends the encoding of id. An unknown psktype or usage sets an
// error on b.
func (id *PreSharedKeyID) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(id.PSKType))
	switch id.PSKType {
	case PSKTypeExternal:
		tlspl.AddOpaque(b, id.PSKID)
	case PSKTypeResumption:
		if id.Usage < ResumptionPSKUsageApplication || id.Usage > ResumptionPSKUsageBranch {
			b.SetError(fmt.Errorf("mls: encode PreSharedKeyID: unknown ResumptionPSKUsage %d", id.Usage))
			return
		}
		b.AddUint8(uint8(id.Usage))
		tlspl.AddOpaque(b, id.PSKGroupID)
		b.AddUint64(id.PSKEpoch)
	default:
		b.SetError(fmt.Errorf("mls: encode PreSharedKeyID: unknown PSKType %d", id.PSKType))
		return
	}
	tlspl.AddOpaque(b, id.PSKNonce)
}

// unmarshal reads a PreSharedKeyID. Unknown psktype and usage values are
// rejected with an [*UnknownValueError] (which also matches
// [tlspl.ErrMalformed]).
func (id *PreSharedKeyID) unmarshal(s *cryptobyte.String) error {
	var t uint8
	if !s.ReadUint8(&t) {
		return fmt.Errorf("%w: PreSharedKeyID.psktype", tlspl.ErrMalformed)
	}
	*id = PreSharedKeyID{PSKType: PSKType(t)}
	switch id.PSKType {
	case PSKTypeExternal:
		if !tlspl.ReadOpaque(s, &id.PSKID) {
			return fmt.Errorf("%w: PreSharedKeyID.psk_id", tlspl.ErrMalformed)
		}
	case PSKTypeResumption:
		var u uint8
		if !s.ReadUint8(&u) {
			return fmt.Errorf("%w: PreSharedKeyID.usage", tlspl.ErrMalformed)
		}
		id.Usage = ResumptionPSKUsage(u)
		if id.Usage < ResumptionPSKUsageApplication || id.Usage > ResumptionPSKUsageBranch {
			return &UnknownValueError{Type: "ResumptionPSKUsage", Value: uint64(u)}
		}
		if !tlspl.ReadOpaque(s, &id.PSKGroupID) {
			return fmt.Errorf("%w: PreSharedKeyID.psk_group_id", tlspl.ErrMalformed)
		}
		if !s.ReadUint64(&id.PSKEpoch) {
			return fmt.Errorf("%w: PreSharedKeyID.psk_epoch", tlspl.ErrMalformed)
		}
	default:
		return &UnknownValueError{Type: "PSKType", Value: uint64(t)}
	}
	if !tlspl.ReadOpaque(s, &id.PSKNonce) {
		return fmt.Errorf("%w: PreSharedKeyID.psk_nonce", tlspl.ErrMalformed)
	}
	return nil
}

// Marshal returns the TLS encoding of id.
func (id *PreSharedKeyID) Marshal() ([]byte, error) {
	out, err := tlspl.Marshal(id.marshal)
	if err != nil {
		return nil, fmt.Errorf("mls: encode PreSharedKeyID: %w", err)
	}
	return out, nil
}

// UnmarshalPreSharedKeyID decodes exactly one PreSharedKeyID from data.
func UnmarshalPreSharedKeyID(data []byte) (*PreSharedKeyID, error) {
	id := new(PreSharedKeyID)
	s := cryptobyte.String(data)
	if err := id.unmarshal(&s); err != nil {
		return nil, &tlspl.DecodeError{What: "mls.PreSharedKeyID", Err: err}
	}
	if !s.Empty() {
		return nil, &tlspl.DecodeError{What: "mls.PreSharedKeyID", Err: tlspl.ErrTrailingData}
	}
	return id, nil
}

// PSKWithSecret is one PSK of a commit or Welcome: its identifier and its
// value.
type PSKWithSecret struct {
	ID  PreSharedKeyID
	PSK []byte
}

// PSKSecret computes psk_secret from the PSKs in the order they appear in
// the proposals or GroupSecrets (RFC 9420, Section 8.4):
//
//	psk_extracted_[i] = KDF.Extract(0, psk_[i])
//	psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk",
//	                                    PSKLabel{id_[i], i, n}, KDF.Nh)
//	psk_secret_[0]    = 0
//	psk_secret_[i+1]  = KDF.Extract(psk_input_[i], psk_secret_[i])
//
// where 0 is Nh zero bytes. With no PSKs the result is Nh zero bytes, the
// value the key schedule uses when a commit carries no PSK. At most 65535
// PSKs fit the uint16 index and count of PSKLabel.
func (cs CipherSuite) PSKSecret(psks []PSKWithSecret) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	if len(psks) > 0xffff {
		return nil, fmt.Errorf("mls: %d PSKs exceed the PSKLabel count", len(psks))
	}
	zero := make([]byte, p.nh)
	secret := zero
	for i := range psks {
		extracted, err := cs.Extract(zero, psks[i].PSK)
		if err != nil {
			return nil, err
		}
		label, err := tlspl.Marshal(func(b *cryptobyte.Builder) {
			psks[i].ID.marshal(b)
			b.AddUint16(uint16(i))
			b.AddUint16(uint16(len(psks)))
		})
		if err != nil {
			return nil, fmt.Errorf("mls: encode PSKLabel %d: %w", i, err)
		}
		input, err := cs.ExpandWithLabel(extracted, "derived psk", label, p.nh)
		if err != nil {
			return nil, err
		}
		if secret, err = cs.Extract(input, secret); err != nil {
			return nil, err
		}
	}
	return secret, nil
}
