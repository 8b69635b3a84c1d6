package mimicontent

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// impliedWithTimestamp returns implied-original.cbor with its timestamp
// item (9 bytes at offset 35: 1b 0000017edd1dcdbb) replaced by ts.
func impliedWithTimestamp(t *testing.T, ts string) []byte {
	t.Helper()
	raw := readFile(t, "implied-original.cbor")
	if !bytes.Equal(raw[35:44], decodeHex(t, "1b0000017edd1dcdbb")) {
		t.Fatalf("unexpected layout of implied-original.cbor: %x", raw[35:44])
	}
	return slices.Concat(raw[:35], decodeHex(t, ts), raw[44:])
}

// TestDerivedValuesExtendedTime accepts an RFC 9581 extended time and
// re-encodes it unchanged.
func TestDerivedValuesExtendedTime(t *testing.T) {
	t.Parallel()
	const ext = "d903e9" + "a1" + "01" + "1a62036674" // 1001({1: 1644390004})
	in := impliedWithTimestamp(t, ext)
	v, err := DecodeDerivedValues(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Timestamp.Extended, decodeHex(t, ext)) || v.Timestamp.Millis != 0 {
		t.Errorf("timestamp = %+v", v.Timestamp)
	}
	in[40] ^= 0xff // the decoded value must not alias the input
	if !bytes.Equal(v.Timestamp.Extended, decodeHex(t, ext)) {
		t.Error("Extended aliases the input buffer")
	}
	in[40] ^= 0xff
	out, err := v.Encode()
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("re-encoding differs (%v):\n got %x\nwant %x", err, out, in)
	}
}

// TestDerivedValuesRejects covers the schema of Appendix A.2.
func TestDerivedValuesRejects(t *testing.T) {
	t.Parallel()
	raw := readFile(t, "implied-original.cbor")
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"other tag", impliedWithTimestamp(t, "d903e8"+"a0"), ErrSchema},
		{"tag 1001 on a number", impliedWithTimestamp(t, "d903e9"+"00"), ErrSchema},
		{"timestamp as text", impliedWithTimestamp(t, "6131"), ErrSchema},
		{"timestamp not shortest", impliedWithTimestamp(t, "1b00000000ffffffff"), ErrNotDeterministic},
		{"extended time unsorted", impliedWithTimestamp(t, "d903e9"+"a2"+"0200"+"0100"), ErrNotDeterministic},
		{"null messageId", slices.Concat([]byte{0x87, 0xf6}, raw[35:]), ErrSchema},
		{"trailing byte", append(slices.Clone(raw), 0), ErrTrailingBytes},
		{"truncated", raw[:len(raw)-1], ErrTruncated},
		{"six items", append([]byte{0x86}, raw[1:]...), ErrSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeDerivedValues(tt.in)
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	v, err := DecodeDerivedValues(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{{0x00}, decodeHex(t, "d903e9a0ff"), decodeHex(t, "d903e900")} {
		v.Timestamp.Extended = bad
		if _, err := v.Encode(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Encode with Extended %x: err = %v", bad, err)
		}
	}
}

// TestDecodeDoesNotAlias checks that decoded byte fields are copies.
func TestDecodeDoesNotAlias(t *testing.T) {
	t.Parallel()
	in := decodeHex(t, withExt("03"+"4101"))
	c, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := c.Encode()
	for i := range in {
		in[i] = 0
	}
	got, err := c.Encode()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("decoded value changed with its input buffer: %x", got)
	}
}
