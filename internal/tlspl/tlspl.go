// Package tlspl encodes and decodes the TLS presentation language as MLS uses
// it (RFC 9420, Section 2.1), on top of golang.org/x/crypto/cryptobyte.
//
// It is shared by package mls (every RFC 9420 wire struct) and package dag
// (Rhizome's own event encoding), so that both follow one set of strict rules:
//
//   - variable-length vectors carry a QUIC-style varint length prefix
//     (RFC 9420, Section 2.1.2) that must use the minimum number of bytes;
//     the prefix 0b11 is invalid;
//   - optional<T> is a presence octet of exactly 0 or 1;
//   - a top-level decode must consume every byte (no trailing data);
//   - vector lengths are bounded by [MaxVectorLen] so that a hostile length
//     cannot ask for more memory than the input holds.
//
// Readers follow cryptobyte's convention of returning false on malformed
// input; [Unmarshal] turns that into the typed [*DecodeError] that callers
// hand back to peers. The package is pure: no I/O, clock or randomness.
package tlspl

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// MaxVarint is the largest value a varint can hold (2^30 - 1).
const MaxVarint = 1<<30 - 1

// MaxVectorLen bounds any single vector we accept. It is far above anything
// Rhizome sends (events are capped at 64 KiB, MLS messages at a few MiB for
// 50,000-member trees) but keeps a forged length from being taken seriously.
const MaxVectorLen = 64 << 20

// ErrMalformed is wrapped by every decoding failure.
var ErrMalformed = errors.New("tlspl: malformed encoding")

// ErrTrailingData is returned when bytes remain after a complete value.
var ErrTrailingData = errors.New("tlspl: trailing data")

// DecodeError reports which value could not be decoded. It wraps
// [ErrMalformed] or [ErrTrailingData].
type DecodeError struct {
	What string // the type or field being decoded, e.g. "mls.KeyPackage"
	Err  error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s: %v", e.What, e.Err) }

// Unwrap returns the underlying sentinel.
func (e *DecodeError) Unwrap() error { return e.Err }

// Marshal runs f on a fresh builder and returns the bytes, or the first error
// any Add call recorded (for example a vector longer than [MaxVarint]).
func Marshal(f func(b *cryptobyte.Builder)) ([]byte, error) {
	var b cryptobyte.Builder
	f(&b)
	return b.Bytes()
}

// Unmarshal decodes data with f and requires that f consumed all of it.
// what names the value for the error message.
func Unmarshal(data []byte, what string, f func(s *cryptobyte.String) bool) error {
	s := cryptobyte.String(data)
	if !f(&s) {
		return &DecodeError{What: what, Err: ErrMalformed}
	}
	if !s.Empty() {
		return &DecodeError{What: what, Err: ErrTrailingData}
	}
	return nil
}

// AddVarint appends v as an RFC 9420 varint in its minimal form. Values above
// [MaxVarint] set an error on the builder.
func AddVarint(b *cryptobyte.Builder, v uint64) {
	switch {
	case v < 1<<6:
		b.AddUint8(uint8(v))
	case v < 1<<14:
		b.AddUint16(uint16(v) | 0x4000)
	case v <= MaxVarint:
		b.AddUint32(uint32(v) | 0x80000000)
	default:
		b.SetError(fmt.Errorf("tlspl: varint %d exceeds 2^30-1", v))
	}
}

// ReadVarint reads a minimal RFC 9420 varint. It rejects the reserved 0b11
// prefix and any value that a shorter encoding could have carried.
func ReadVarint(s *cryptobyte.String, out *uint64) bool {
	if len(*s) == 0 {
		return false
	}
	switch (*s)[0] >> 6 {
	case 0:
		var v uint8
		if !s.ReadUint8(&v) {
			return false
		}
		*out = uint64(v)
	case 1:
		var v uint16
		if !s.ReadUint16(&v) {
			return false
		}
		v &= 0x3fff
		if v < 1<<6 {
			return false
		}
		*out = uint64(v)
	case 2:
		var v uint32
		if !s.ReadUint32(&v) {
			return false
		}
		v &= 0x3fffffff
		if v < 1<<14 {
			return false
		}
		*out = uint64(v)
	default:
		return false
	}
	return true
}

// AddVector appends a varint-length-prefixed vector whose contents f writes.
func AddVector(b *cryptobyte.Builder, f func(b *cryptobyte.Builder)) {
	var inner cryptobyte.Builder
	f(&inner)
	body, err := inner.Bytes()
	if err != nil {
		b.SetError(err)
		return
	}
	AddVarint(b, uint64(len(body)))
	b.AddBytes(body)
}

// ReadVector reads a varint-length-prefixed vector into out, which then holds
// exactly the vector's contents.
func ReadVector(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint64
	if !ReadVarint(s, &n) || n > MaxVectorLen {
		return false
	}
	var v []byte
	if !s.ReadBytes(&v, int(n)) {
		return false
	}
	*out = v
	return true
}

// AddOpaque appends opaque data<V>.
func AddOpaque(b *cryptobyte.Builder, data []byte) {
	AddVarint(b, uint64(len(data)))
	b.AddBytes(data)
}

// ReadOpaque reads opaque data<V> into out. The result is a copy, so it stays
// valid when the input buffer is reused. An empty vector reads as a non-nil
// empty slice.
func ReadOpaque(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !ReadVector(s, &v) {
		return false
	}
	*out = append(make([]byte, 0, len(v)), v...)
	return true
}

// AddOptional appends the presence octet of optional<T>; when present is true
// the caller then appends the value.
func AddOptional(b *cryptobyte.Builder, present bool) {
	if present {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// ReadOptional reads the presence octet of optional<T>. Any value other than
// 0 or 1 is malformed.
func ReadOptional(s *cryptobyte.String, present *bool) bool {
	var v uint8
	if !s.ReadUint8(&v) || v > 1 {
		return false
	}
	*present = v == 1
	return true
}

// ReadBool reads a TLS-PL bool (a uint8 that must be 0 or 1).
func ReadBool(s *cryptobyte.String, out *bool) bool { return ReadOptional(s, out) }

// AddBool appends a TLS-PL bool.
func AddBool(b *cryptobyte.Builder, v bool) { AddOptional(b, v) }

// ReadList reads a vector of elements, calling elem until the vector's
// contents are exhausted. elem must consume at least one byte per call or
// fail, which keeps the loop finite.
func ReadList(s *cryptobyte.String, elem func(s *cryptobyte.String) bool) bool {
	var v cryptobyte.String
	if !ReadVector(s, &v) {
		return false
	}
	for !v.Empty() {
		before := len(v)
		if !elem(&v) || len(v) == before {
			return false
		}
	}
	return true
}
