package mimicontent

import (
	"bytes"
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// Tags with a deterministic-encoding rule of their own.
const (
	tagPosBignum = 2 // RFC 8949, Section 3.4.3
	tagNegBignum = 3
)

// MaxExtensionDepth is the deepest combination of maps, arrays and tags
// allowed in the extensions map, counting the map itself as level 1
// (draft-ietf-mimi-content-08, Section 6.3).
const MaxExtensionDepth = 4

// item validates one arbitrary data item (an extension value, say) and
// returns its encoding. level is the nesting level of the container
// holding the item; maps, arrays and tags inside it count from level+1 and
// may not exceed maxLevel.
func (d *decoder) item(level, maxLevel int) ([]byte, error) {
	begin := d.off
	if err := d.walk(level, maxLevel); err != nil {
		return nil, err
	}
	return d.data[begin:d.off], nil
}

func (d *decoder) walk(level, maxLevel int) error {
	m, arg, start, err := d.head()
	if err != nil {
		return err
	}
	switch m {
	case majorUint, majorNeg:
		return nil
	case majorBytes:
		_, err := d.payload(arg, start)
		return err
	case majorText:
		b, err := d.payload(arg, start)
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return d.fail(start, ErrInvalidUTF8, "")
		}
		return nil
	case majorSimple:
		return d.simple(arg, start)
	}
	if level+1 > maxLevel {
		return d.fail(start, ErrTooDeep, "maps, arrays and tags nested too deep")
	}
	switch m {
	case majorArray:
		if arg > uint64(len(d.data)-d.off) {
			return d.fail(start, ErrTruncated, "array longer than input")
		}
		for range arg {
			if err := d.walk(level+1, maxLevel); err != nil {
				return err
			}
		}
		return nil
	case majorMap:
		return d.mapItems(arg, start, level+1, maxLevel)
	default: // majorTag
		if arg == tagPosBignum || arg == tagNegBignum {
			n, bstart, err := d.expect(majorBytes, "bignum byte string")
			if err != nil {
				return err
			}
			b, err := d.payload(n, bstart)
			if err != nil {
				return err
			}
			// Preferred serialization: a bignum that fits 64 bits must be
			// an integer, and it has no leading zero bytes (RFC 8949,
			// Section 3.4.3 and 4.2.1).
			if len(b) <= 8 || b[0] == 0 {
				return d.fail(start, ErrNotDeterministic, "bignum in non-preferred form")
			}
			return nil
		}
		return d.walk(level+1, maxLevel)
	}
}

// mapItems validates n key/value pairs of a map at the given level.
func (d *decoder) mapItems(n uint64, start, level, maxLevel int) error {
	if n > uint64(len(d.data)-d.off)/2 {
		return d.fail(start, ErrTruncated, "map longer than input")
	}
	var prev []byte
	for range n {
		kstart := d.off
		if err := d.mapKey(); err != nil {
			return err
		}
		key := d.data[kstart:d.off]
		if err := d.checkKeyOrder(prev, key, kstart); err != nil {
			return err
		}
		prev = key
		if err := d.walk(level, maxLevel); err != nil {
			return err
		}
	}
	return nil
}

// checkKeyOrder enforces the bytewise lexicographic order of encoded map
// keys and their uniqueness (RFC 8949, Section 4.2.1; not the length-first
// order of RFC 7049, which draft Section 6.1 forbids).
func (d *decoder) checkKeyOrder(prev, key []byte, at int) error {
	if prev == nil {
		return nil
	}
	switch c := bytes.Compare(prev, key); {
	case c == 0:
		return d.fail(at, ErrDuplicateKey, "")
	case c > 0:
		return d.fail(at, ErrNotDeterministic, "map keys not in bytewise order")
	}
	return nil
}

// mapKey validates a key of a map nested inside an extension: an integer
// exactly representable as a double, a text string or a byte string
// (draft Section 6.2).
func (d *decoder) mapKey() error {
	m, arg, start, err := d.head()
	if err != nil {
		return err
	}
	switch m {
	case majorUint:
		if arg > maxSafeInt {
			return d.fail(start, ErrSchema, "integer map key beyond 2^53-1")
		}
		return nil
	case majorNeg:
		if arg > maxSafeInt-1 {
			return d.fail(start, ErrSchema, "integer map key beyond -(2^53-1)")
		}
		return nil
	case majorBytes:
		_, err := d.payload(arg, start)
		return err
	case majorText:
		b, err := d.payload(arg, start)
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return d.fail(start, ErrInvalidUTF8, "")
		}
		return nil
	}
	return d.fail(start, ErrSchema, "map key must be an integer, text or byte string")
}

// simple validates a major type 7 item whose additional information ai
// has been consumed.
func (d *decoder) simple(ai uint64, start int) error {
	switch ai {
	case simpleFalse, simpleTrue, simpleNull:
		return nil
	case aiFloat16, aiFloat32, aiFloat64:
	default:
		return d.fail(start, ErrUnsupported, "simple value other than false, true or null")
	}
	n := 1 << (ai - aiFloat16 + 1) // 2, 4 or 8 bytes
	if len(d.data)-d.off < n {
		return d.fail(start, ErrTruncated, "float")
	}
	b := d.data[d.off : d.off+n]
	d.off += n
	switch ai {
	case aiFloat16:
		h := binary.BigEndian.Uint16(b)
		if h&0x7c00 == 0x7c00 && h&0x03ff != 0 && h != 0x7e00 {
			return d.fail(start, ErrUnsupported, "NaN other than f9 7e00")
		}
		return nil
	case aiFloat32:
		f := float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		if math.IsNaN(f) {
			return d.fail(start, ErrUnsupported, "NaN other than f9 7e00")
		}
		if fitsFloat16(f) {
			return d.fail(start, ErrNotDeterministic, "float32 that fits float16")
		}
		return nil
	default:
		f := math.Float64frombits(binary.BigEndian.Uint64(b))
		if math.IsNaN(f) {
			return d.fail(start, ErrUnsupported, "NaN other than f9 7e00")
		}
		if float64(float32(f)) == f {
			return d.fail(start, ErrNotDeterministic, "float64 that fits float32")
		}
		return nil
	}
}

// fitsFloat16 reports whether the non-NaN value v is exactly representable
// as an IEEE 754 binary16 (11 significant bits, exponents -14..15,
// subnormals down to 2^-24).
func fitsFloat16(v float64) bool {
	if v == 0 || math.IsInf(v, 0) {
		return true
	}
	a := math.Abs(v)
	if a > 65504 || a < 0x1p-24 {
		return false
	}
	var x float64
	if a >= 0x1p-14 {
		frac, _ := math.Frexp(a) // a = frac * 2^exp, frac in [0.5, 1)
		x = frac * (1 << 11)
	} else {
		x = a * 0x1p24
	}
	return x == math.Trunc(x)
}

// CheckRawValue reports whether raw is exactly one data item in the
// deterministic encoding and data model this package accepts inside an
// extension value, with at most levels nested maps, arrays and tags. It
// returns a [*DecodeError] otherwise.
func CheckRawValue(raw []byte, levels int) error {
	d := &decoder{data: raw}
	if _, err := d.item(0, levels); err != nil {
		return err
	}
	return d.end()
}
