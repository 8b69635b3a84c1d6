package mimicontent

import (
	"bytes"
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// This file holds the strict decoder for the subset of CBOR (RFC 8949) that
// the MIMI content format uses. It accepts only the core deterministic
// encoding of RFC 8949, Section 4.2.1, and the data model restrictions of
// draft-ietf-mimi-content-08, Section 6.2:
//
//   - integers, lengths and tag numbers in their shortest form;
//   - definite lengths only;
//   - map keys sorted bytewise by their encoding, no duplicates;
//   - map keys are integers within ±(2^53-1), text or byte strings;
//   - floats in their shortest exact form; the only NaN is f9 7e00;
//   - bignums (tags 2 and 3) only when they do not fit an integer;
//   - text strings are valid UTF-8;
//   - no undefined, no unassigned simple values.

// CBOR major types (RFC 8949, Section 3.1).
const (
	majorUint   = 0
	majorNeg    = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// Simple values and float markers (RFC 8949, Section 3.3).
const (
	simpleFalse = 20
	simpleTrue  = 21
	simpleNull  = 22
	aiFloat16   = 25
	aiFloat32   = 26
	aiFloat64   = 27

	cborNull  = 0xf6
	cborFalse = 0xf4
	cborTrue  = 0xf5
)

// maxSafeInt is 2^53-1, the largest integer a double holds exactly
// (draft Section 6.2 bounds map keys by it).
const maxSafeInt = 1<<53 - 1

// decoder reads one deterministic CBOR data item after another from data.
// field names the CDDL field being read, for error messages.
type decoder struct {
	data  []byte
	off   int
	field string
}

func (d *decoder) fail(at int, err error, detail string) error {
	return &DecodeError{Offset: at, Field: d.field, Detail: detail, Err: err}
}

// head reads the initial byte and argument of a data item. For major type
// 7 it returns the additional information as arg and, for floats, leaves
// the float bytes unread (see simple). For the other major types it
// enforces the shortest argument form and rejects indefinite lengths.
func (d *decoder) head() (major byte, arg uint64, start int, err error) {
	start = d.off
	if d.off >= len(d.data) {
		return 0, 0, start, d.fail(start, ErrTruncated, "expected a data item")
	}
	ib := d.data[d.off]
	major, ai := ib>>5, ib&0x1f
	if major == majorSimple {
		if ai >= 28 {
			// 28-30 are reserved; 31 is a break code outside an
			// indefinite-length item, which we never accept.
			return 0, 0, start, d.fail(start, ErrUnsupported, "reserved simple value or stray break")
		}
		d.off++
		return major, uint64(ai), start, nil
	}
	var n int
	switch {
	case ai < 24:
		d.off++
		return major, uint64(ai), start, nil
	case ai == 24:
		n = 1
	case ai == 25:
		n = 2
	case ai == 26:
		n = 4
	case ai == 27:
		n = 8
	case ai == 31 && major >= majorBytes && major <= majorMap:
		return 0, 0, start, d.fail(start, ErrNotDeterministic, "indefinite length")
	default:
		return 0, 0, start, d.fail(start, ErrUnsupported, "reserved additional information")
	}
	if len(d.data)-d.off-1 < n {
		return 0, 0, start, d.fail(start, ErrTruncated, "argument")
	}
	b := d.data[d.off+1 : d.off+1+n]
	switch n {
	case 1:
		arg = uint64(b[0])
		if arg < 24 {
			return 0, 0, start, d.fail(start, ErrNotDeterministic, "non-shortest argument")
		}
	case 2:
		arg = uint64(binary.BigEndian.Uint16(b))
		if arg <= math.MaxUint8 {
			return 0, 0, start, d.fail(start, ErrNotDeterministic, "non-shortest argument")
		}
	case 4:
		arg = uint64(binary.BigEndian.Uint32(b))
		if arg <= math.MaxUint16 {
			return 0, 0, start, d.fail(start, ErrNotDeterministic, "non-shortest argument")
		}
	case 8:
		arg = binary.BigEndian.Uint64(b)
		if arg <= math.MaxUint32 {
			return 0, 0, start, d.fail(start, ErrNotDeterministic, "non-shortest argument")
		}
	}
	d.off += 1 + n
	return major, arg, start, nil
}

// expect reads a head and checks its major type.
func (d *decoder) expect(major byte, what string) (uint64, int, error) {
	m, arg, start, err := d.head()
	if err != nil {
		return 0, start, err
	}
	if m != major {
		return 0, start, d.fail(start, ErrSchema, "expected "+what)
	}
	return arg, start, nil
}

// uint reads an unsigned integer no larger than max.
func (d *decoder) uint(max uint64) (uint64, error) {
	v, start, err := d.expect(majorUint, "unsigned integer")
	if err != nil {
		return 0, err
	}
	if v > max {
		return 0, d.fail(start, ErrSchema, "integer out of range")
	}
	return v, nil
}

// payload returns the next n bytes of a string item starting at start.
func (d *decoder) payload(n uint64, start int) ([]byte, error) {
	if n > uint64(len(d.data)-d.off) {
		return nil, d.fail(start, ErrTruncated, "string longer than input")
	}
	b := d.data[d.off : d.off+int(n)]
	d.off += int(n)
	return b, nil
}

// bytes reads a byte string and returns a copy of it.
func (d *decoder) bytes() ([]byte, error) {
	n, start, err := d.expect(majorBytes, "byte string")
	if err != nil {
		return nil, err
	}
	b, err := d.payload(n, start)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
}

// text reads a UTF-8 text string.
func (d *decoder) text() (string, error) {
	n, start, err := d.expect(majorText, "text string")
	if err != nil {
		return "", err
	}
	b, err := d.payload(n, start)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", d.fail(start, ErrInvalidUTF8, "")
	}
	return string(b), nil
}

// array reads an array head with a length in [min, max].
func (d *decoder) array(min, max uint64) (uint64, error) {
	n, start, err := d.expect(majorArray, "array")
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.data)-d.off) {
		return 0, d.fail(start, ErrTruncated, "array longer than input")
	}
	if n < min || n > max {
		return 0, d.fail(start, ErrSchema, "wrong array length")
	}
	return n, nil
}

// bool reads true or false.
func (d *decoder) bool() (bool, error) {
	if d.off < len(d.data) {
		switch d.data[d.off] {
		case cborFalse:
			d.off++
			return false, nil
		case cborTrue:
			d.off++
			return true, nil
		}
	}
	_, _, start, err := d.head()
	if err != nil {
		return false, err
	}
	return false, d.fail(start, ErrSchema, "expected bool")
}

// null consumes a null and reports whether there was one.
func (d *decoder) null() bool {
	if d.off < len(d.data) && d.data[d.off] == cborNull {
		d.off++
		return true
	}
	return false
}

// end checks that the whole input was consumed.
func (d *decoder) end() error {
	if d.off != len(d.data) {
		return &DecodeError{Offset: d.off, Err: ErrTrailingBytes}
	}
	return nil
}
