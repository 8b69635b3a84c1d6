package mls

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// mlsLabelPrefix is prepended to every label of the labelled operations
// (RFC 9420, Sections 5.1.2, 5.1.3, 8).
const mlsLabelPrefix = "MLS 1.0 "

// ErrBadSignature is returned (possibly wrapped) when a signature does not
// verify.
var ErrBadSignature = errors.New("mls: invalid signature")

// ErrHPKE is wrapped by every HPKE failure of [CipherSuite.EncryptWithLabel],
// [CipherSuite.DecryptWithLabel] and the external-init helpers: a malformed
// key or KEM output, or a ciphertext that fails authentication.
var ErrHPKE = errors.New("mls: HPKE operation failed")

// cryptoAppendOpaque appends opaque data<V> (varint length, then data).
func cryptoAppendOpaque(dst, data []byte) ([]byte, error) {
	n := len(data)
	switch {
	case n < 1<<6:
		dst = append(dst, byte(n))
	case n < 1<<14:
		dst = binary.BigEndian.AppendUint16(dst, uint16(n)|0x4000)
	case n <= tlspl.MaxVarint:
		dst = binary.BigEndian.AppendUint32(dst, uint32(n)|0x80000000)
	default:
		return nil, fmt.Errorf("mls: vector of %d bytes is too long to encode", n)
	}
	return append(dst, data...), nil
}

// cryptoLabelled encodes struct { opaque label<V> = "MLS 1.0 " + label;
// opaque content<V>; } after prefix, the shape shared by KDFLabel (with a
// uint16 length prefix), SignContent and EncryptContext.
func cryptoLabelled(prefix []byte, label string, content []byte) ([]byte, error) {
	full := make([]byte, 0, len(mlsLabelPrefix)+len(label))
	full = append(append(full, mlsLabelPrefix...), label...)
	buf := make([]byte, 0, len(prefix)+len(full)+len(content)+8)
	buf = append(buf, prefix...)
	buf, err := cryptoAppendOpaque(buf, full)
	if err != nil {
		return nil, err
	}
	return cryptoAppendOpaque(buf, content)
}

// RefHash computes RefHash(label, value) = Hash(RefHashInput) with
// RefHashInput = struct { opaque label<V>; opaque value<V>; } (RFC 9420,
// Section 5.2). The label is used as given, e.g.
// "MLS 1.0 KeyPackage Reference".
func (cs CipherSuite) RefHash(label string, value []byte) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	buf, err := cryptoAppendOpaque(make([]byte, 0, len(label)+len(value)+8), []byte(label))
	if err != nil {
		return nil, err
	}
	if buf, err = cryptoAppendOpaque(buf, value); err != nil {
		return nil, err
	}
	return p.hash.sum(make([]byte, 0, p.nh), buf), nil
}

// ExpandWithLabel is KDF.Expand(secret, KDFLabel, length) with
// KDFLabel = struct { uint16 length; opaque label<V> = "MLS 1.0 " + label;
// opaque context<V>; } (RFC 9420, Section 8). length must fit in a uint16
// and in 255*Nh.
func (cs CipherSuite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: ExpandWithLabel length %d out of range", length)
	}
	var lenPrefix [2]byte
	binary.BigEndian.PutUint16(lenPrefix[:], uint16(length))
	info, err := cryptoLabelled(lenPrefix[:], label, context)
	if err != nil {
		return nil, err
	}
	return hkdfExpand(p.hash, secret, info, length)
}

// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
func (cs CipherSuite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return cs.ExpandWithLabel(secret, label, nil, cs.Nh())
}

// DeriveTreeSecret is ExpandWithLabel(secret, label, generation, length)
// with generation encoded as a uint32 (RFC 9420, Section 9.1).
func (cs CipherSuite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	var g [4]byte
	binary.BigEndian.PutUint32(g[:], generation)
	return cs.ExpandWithLabel(secret, label, g[:], length)
}
