package mimicontent

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
)

// The encoder appends deterministic CBOR (RFC 8949, Section 4.2.1) to a
// byte slice: every argument in its shortest form, definite lengths, map
// entries sorted by their encoded keys.

// appendHead appends the initial byte and shortest argument of an item.
func appendHead(b []byte, major byte, arg uint64) []byte {
	mt := major << 5
	switch {
	case arg < 24:
		return append(b, mt|byte(arg))
	case arg <= math.MaxUint8:
		return append(b, mt|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mt|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mt|26), uint32(arg))
	default:
		return binary.BigEndian.AppendUint64(append(b, mt|27), arg)
	}
}

func appendUint(b []byte, v uint64) []byte { return appendHead(b, majorUint, v) }

// appendInt appends a signed integer as major type 0 or 1.
func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendHead(b, majorUint, uint64(v))
	}
	return appendHead(b, majorNeg, uint64(-(v + 1)))
}

func appendBytes(b, s []byte) []byte {
	return append(appendHead(b, majorBytes, uint64(len(s))), s...)
}

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

func appendArray(b []byte, n int) []byte { return appendHead(b, majorArray, uint64(n)) }

func appendNull(b []byte) []byte { return append(b, cborNull) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, cborTrue)
	}
	return append(b, cborFalse)
}

// mapEntry is one encoded key and value of a map being built.
type mapEntry struct {
	key, value []byte
}

// appendMap appends a map whose entries are sorted bytewise by encoded
// key. It reports false if two keys have the same encoding.
func appendMap(b []byte, entries []mapEntry) ([]byte, bool) {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(x, y mapEntry) int { return bytes.Compare(x.key, y.key) })
	for i := 1; i < len(sorted); i++ {
		if bytes.Equal(sorted[i-1].key, sorted[i].key) {
			return b, false
		}
	}
	b = appendHead(b, majorMap, uint64(len(sorted)))
	for _, e := range sorted {
		b = append(b, e.key...)
		b = append(b, e.value...)
	}
	return b, true
}
