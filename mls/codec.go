package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// This file holds the small helpers every wire struct shares. Each struct has
// an unexported marshal(*cryptobyte.Builder) and unmarshal(*cryptobyte.String)
// error; exported Marshal/UnmarshalX functions sit at the edge.

// decodeStrict decodes data with f and requires that f consumed all of it.
// Errors are *tlspl.DecodeError values naming what, wrapping the cause.
func decodeStrict(data []byte, what string, f func(s *cryptobyte.String) error) error {
	s := cryptobyte.String(data)
	if err := f(&s); err != nil {
		return &tlspl.DecodeError{What: what, Err: err}
	}
	if !s.Empty() {
		return &tlspl.DecodeError{What: what, Err: tlspl.ErrTrailingData}
	}
	return nil
}

// encodeValue marshals with f.
func encodeValue(f func(b *cryptobyte.Builder)) ([]byte, error) {
	out, err := tlspl.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("mls: encode: %w", err)
	}
	return out, nil
}

// errField reports a malformed field.
func errField(field string) error {
	return fmt.Errorf("%w: %s", tlspl.ErrMalformed, field)
}

// consumed returns the bytes read from start up to the current position of s
// as a fresh copy, so a decoded value keeps exactly what it was given.
func consumed(start, s cryptobyte.String) []byte {
	n := len(start) - len(s)
	return append(make([]byte, 0, n), start[:n]...)
}

func readOpaqueField(s *cryptobyte.String, out *[]byte, field string) error {
	if !tlspl.ReadOpaque(s, out) {
		return errField(field)
	}
	return nil
}

func readU8(s *cryptobyte.String, out *uint8, field string) error {
	if !s.ReadUint8(out) {
		return errField(field)
	}
	return nil
}

func readU16(s *cryptobyte.String, out *uint16, field string) error {
	if !s.ReadUint16(out) {
		return errField(field)
	}
	return nil
}

func readU32(s *cryptobyte.String, out *uint32, field string) error {
	if !s.ReadUint32(out) {
		return errField(field)
	}
	return nil
}

func readU64(s *cryptobyte.String, out *uint64, field string) error {
	if !s.ReadUint64(out) {
		return errField(field)
	}
	return nil
}

// readListErr reads a vector whose elements elem decodes, keeping elem's
// typed errors. Each element must consume at least one byte.
func readListErr(s *cryptobyte.String, field string, elem func(s *cryptobyte.String) error) error {
	var v cryptobyte.String
	if !tlspl.ReadVector(s, &v) {
		return errField(field)
	}
	for !v.Empty() {
		before := len(v)
		if err := elem(&v); err != nil {
			return err
		}
		if len(v) == before {
			return errField(field)
		}
	}
	return nil
}

// readOptionalErr reads optional<T>: present reports the presence octet.
func readOptionalErr(s *cryptobyte.String, field string, present *bool) error {
	if !tlspl.ReadOptional(s, present) {
		return errField(field)
	}
	return nil
}

// addU16s appends a vector of uint16-based enum values.
func addU16s[T ~uint16](b *cryptobyte.Builder, vals []T) {
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, v := range vals {
			b.AddUint16(uint16(v))
		}
	})
}

// readU16s reads a vector of uint16-based values; a vector whose length is
// odd is malformed.
func readU16s[T ~uint16](s *cryptobyte.String, out *[]T, field string) error {
	var v cryptobyte.String
	if !tlspl.ReadVector(s, &v) || len(v)%2 != 0 {
		return errField(field)
	}
	vals := make([]T, 0, len(v)/2)
	for !v.Empty() {
		var x uint16
		v.ReadUint16(&x)
		vals = append(vals, T(x))
	}
	*out = vals
	return nil
}

// appendOpaque appends opaque data<V> to dst without a builder, for the
// per-message hot path. Data longer than a varint can count is an error.
func appendOpaque(dst, data []byte) ([]byte, error) {
	n := len(data)
	switch {
	case n < 1<<6:
		dst = append(dst, byte(n))
	case n < 1<<14:
		dst = append(dst, byte(n>>8)|0x40, byte(n))
	case n <= tlspl.MaxVarint:
		dst = append(dst, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
	default:
		return nil, fmt.Errorf("mls: encode: vector of %d bytes exceeds 2^30-1", n)
	}
	return append(dst, data...), nil
}
