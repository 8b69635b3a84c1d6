package mimicontent

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Hand-written CBOR for the strictness tests. Each input is the original
// example (Section 5.1) with one field replaced, so that exactly one rule
// is broken. Heads are spelled out in hex; nothing here is produced by the
// encoder under test.

// textHex returns the definite-length text string s in hex.
func textHex(s string) string { return strHead(0x60, len(s)) + hex.EncodeToString([]byte(s)) }

// bytesHex returns the definite-length byte string b in hex.
func bytesHex(b []byte) string { return strHead(0x40, len(b)) + hex.EncodeToString(b) }

func strHead(mt byte, n int) string {
	switch {
	case n < 24:
		return fmt.Sprintf("%02x", int(mt)+n)
	case n < 1<<8:
		return fmt.Sprintf("%02x%02x", mt+24, n)
	case n < 1<<16:
		return fmt.Sprintf("%02x%04x", mt+25, n)
	default:
		return fmt.Sprintf("%02x%08x", mt+26, n)
	}
}

// msgFields are the seven items of a mimiContent, in hex.
type msgFields struct {
	head, salt, replaces, topic, expires, inReplyTo, ext, body string
}

func (f msgFields) hex() string {
	return f.head + f.salt + f.replaces + f.topic + f.expires + f.inReplyTo + f.ext + f.body
}

// singleBody is a minimal SinglePart: render, no language, empty content
// type and content.
const singleBody = "8501600160" + "40"

func originalFields() msgFields {
	return msgFields{
		head:      "87",
		salt:      "50" + "5eed9406c2545547ab6f09f20a18b003",
		replaces:  "f6",
		topic:     "40",
		expires:   "f6",
		inReplyTo: "f6",
		ext:       extHex(),
		body: "85" + "01" + "60" + "01" + textHex(MediaTypeMarkdown) +
			bytesHex([]byte("Hi everyone, we just shipped release 2.0. __Good  work__!")),
	}
}

// extHex is the extensions map with senderUri, roomUri and the extra
// encoded key/value pairs in entries.
func extHex(entries ...string) string {
	return fmt.Sprintf("%02x", 0xa2+len(entries)) + "01" + textHex(alice) + "02" + textHex(room) + strings.Join(entries, "")
}

// withExt returns the original with extra extension entries.
func withExt(entries ...string) string {
	f := originalFields()
	f.ext = extHex(entries...)
	return f.hex()
}

func with(mut func(f *msgFields)) string {
	f := originalFields()
	mut(&f)
	return f.hex()
}

// externalBody is an ExternalPart body with the given size, encAlg and
// hashAlg items (hex).
func externalBody(size, encAlg, hashAlg string) string {
	return "8f" + "07" + "60" + "02" + "60" + textHex("https://example.com/x") + "00" + size + encAlg +
		"40" + "40" + "40" + hashAlg + "40" + "60" + "60"
}

// nestHex returns a NestedPart nested depth levels deep (depth 1 is a
// SinglePart; each level above is a MultiPart of the level below and a
// SinglePart).
func nestHex(depth int) string {
	if depth == 1 {
		return singleBody
	}
	return "85016003" + "00" + "82" + nestHex(depth-1) + singleBody
}

// manyParts is a processAll MultiPart of n NullParts.
func manyParts(n int) string {
	return "85016003" + "02" + "99" + fmt.Sprintf("%04x", n) + strings.Repeat("83006000", n)
}

func decodeHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad test hex: %v", err)
	}
	return b
}

// TestFieldsBuildOriginal checks the test builder against the vector, so
// the mutations below start from a known-good message.
func TestFieldsBuildOriginal(t *testing.T) {
	t.Parallel()
	if got, want := decodeHex(t, originalFields().hex()), loadExample(t, "original").cbor; !bytes.Equal(got, want) {
		t.Fatalf("builder gives %x, want %x", got, want)
	}
}

// TestDecodeRejects feeds one broken rule at a time and checks the typed
// error: every failure matches ErrMalformed and its specific sentinel.
func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	orig := originalFields().hex()
	u64 := func(v uint64) string { return fmt.Sprintf("1b%016x", v) }
	tests := []struct {
		name string
		in   string
		want error
	}{
		// Framing.
		{"empty input", "", ErrTruncated},
		{"truncated", orig[:len(orig)-2], ErrTruncated},
		{"truncated head argument", "8750" + "5eed9406c2545547ab6f09f20a18b003" + "f640f6f6" + "b9", ErrTruncated},
		{"string longer than input", with(func(f *msgFields) { f.body = "8501600160" + "5a7fffffff" }), ErrTruncated},
		{"array longer than input", with(func(f *msgFields) { f.body = "8501600302" + "9a7fffffff" }), ErrTruncated},
		{"trailing byte", orig + "00", ErrTrailingBytes},
		{"two messages", orig + orig, ErrTrailingBytes},

		// Shortest form (RFC 8949, Section 4.2.1).
		{"array head in 1 byte", with(func(f *msgFields) { f.head = "9807" }), ErrNotDeterministic},
		{"salt length in 1 byte", with(func(f *msgFields) { f.salt = "5810" + f.salt[2:] }), ErrNotDeterministic},
		{"uint in 1 byte", with(func(f *msgFields) { f.body = "85" + "1801" + f.body[4:] }), ErrNotDeterministic},
		{"uint in 2 bytes", with(func(f *msgFields) { f.expires = "82f4" + "1900ff" }), ErrNotDeterministic},
		{"uint in 4 bytes", with(func(f *msgFields) { f.expires = "82f4" + "1a0000ffff" }), ErrNotDeterministic},
		{"uint in 8 bytes", with(func(f *msgFields) { f.body = externalBody(u64(0xffffffff), "00", "00") }), ErrNotDeterministic},
		{"map length in 1 byte", with(func(f *msgFields) { f.ext = "b802" + f.ext[2:] }), ErrNotDeterministic},
		{"extension key in 1 byte", withExt("1803" + "00"), ErrNotDeterministic},
		{"tag number in 1 byte", withExt("03" + "d801" + "00"), ErrNotDeterministic},

		// Definite lengths only.
		{"indefinite array", with(func(f *msgFields) { f.head = "9f"; f.body += "ff" }), ErrNotDeterministic},
		{"indefinite byte string", with(func(f *msgFields) { f.salt = "5f" + f.salt + "ff" }), ErrNotDeterministic},
		{"indefinite text string", with(func(f *msgFields) { f.body = "85" + "01" + "7fff" + f.body[6:] }), ErrNotDeterministic},
		{"indefinite map", with(func(f *msgFields) { f.ext = "bf" + f.ext[2:] + "ff" }), ErrNotDeterministic},
		{"indefinite array in extension", withExt("03" + "9f00ff"), ErrNotDeterministic},

		// Map keys: bytewise order, no duplicates.
		{"unsorted keys", with(func(f *msgFields) { f.ext = "a2" + "02" + textHex(room) + "01" + textHex(alice) }), ErrNotDeterministic},
		{"duplicate key", with(func(f *msgFields) { f.ext = "a2" + "01" + textHex(alice) + "01" + textHex(alice) }), ErrDuplicateKey},
		{"duplicate other key", withExt("03"+"00", "03"+"01"), ErrDuplicateKey},
		{"RFC 7049 length-first order", withExt("20"+"00", "1818"+"00"), ErrNotDeterministic},
		{"nested map unsorted", withExt("03" + "a2" + "0200" + "0100"), ErrNotDeterministic},
		{"nested map duplicate", withExt("03" + "a2" + "0100" + "0100"), ErrDuplicateKey},

		// Data model (draft Section 6.2).
		{"invalid UTF-8 language", with(func(f *msgFields) { f.body = "85" + "01" + "62c328" + f.body[6:] }), ErrInvalidUTF8},
		{"invalid UTF-8 extension value", withExt("03" + "62fffe"), ErrInvalidUTF8},
		{"invalid UTF-8 extension key", withExt("62fffe" + "00"), ErrInvalidUTF8},
		{"invalid UTF-8 nested key", withExt("03" + "a1" + "61ff" + "00"), ErrInvalidUTF8},
		{"undefined", withExt("03" + "f7"), ErrUnsupported},
		{"unassigned simple value", withExt("03" + "f0"), ErrUnsupported},
		{"one-byte simple value", withExt("03" + "f820"), ErrUnsupported},
		{"reserved additional info", with(func(f *msgFields) { f.body = "85" + "1c" + f.body[4:] }), ErrUnsupported},
		{"stray break", with(func(f *msgFields) { f.body = "85" + "ff" + f.body[4:] }), ErrUnsupported},
		{"float32 that fits float16", withExt("03" + "fa3f800000"), ErrNotDeterministic},
		{"float64 that fits float32", withExt("03" + "fb3ff0000000000000"), ErrNotDeterministic},
		{"float64 zero", withExt("03" + "fb0000000000000000"), ErrNotDeterministic},
		{"float16 NaN with payload", withExt("03" + "f97e01"), ErrUnsupported},
		{"float16 negative NaN", withExt("03" + "f9fe00"), ErrUnsupported},
		{"float32 NaN", withExt("03" + "fa7fc00000"), ErrUnsupported},
		{"float64 NaN", withExt("03" + "fb7ff8000000000000"), ErrUnsupported},
		{"bignum that fits 64 bits", withExt("03" + "c2" + "4101"), ErrNotDeterministic},
		{"bignum with leading zero", withExt("03" + "c3" + "49000100000000000000"), ErrNotDeterministic},
		{"bignum not a byte string", withExt("03" + "c2" + "00"), ErrSchema},

		// Depth (draft Section 6.3).
		{"extension 5 levels deep", withExt("03" + "81818181" + "00"), ErrTooDeep},
		{"tags count as levels", withExt("03" + "8181" + "d820" + "a0"), ErrTooDeep},
		{"NestedPart 5 levels deep", with(func(f *msgFields) { f.body = nestHex(5) }), ErrTooDeep},

		// Bounds (draft Section 9.1 and MaxSize).
		{"1025 parts", with(func(f *msgFields) { f.body = manyParts(1024) }), ErrTooLarge},
		{"topicId 4097 octets", with(func(f *msgFields) { f.topic = bytesHex(make([]byte, 4097)) }), ErrTooLarge},
		{"larger than MaxSize", with(func(f *msgFields) { f.body = "8501600160" + bytesHex(make([]byte, MaxSize)) }), ErrTooLarge},

		// Schema (Appendix A.1).
		{"six items", with(func(f *msgFields) { f.head = "86"; f.body = "" }), ErrSchema},
		{"not an array", "a0", ErrSchema},
		{"salt of 15 octets", with(func(f *msgFields) { f.salt = "4f" + f.salt[2:32] }), ErrSchema},
		{"salt as text", with(func(f *msgFields) { f.salt = "70" + f.salt[2:] }), ErrSchema},
		{"tagged salt", with(func(f *msgFields) { f.salt = "d840" + f.salt }), ErrSchema},
		{"replaces of 31 octets", with(func(f *msgFields) { f.replaces = bytesHex(make([]byte, 31)) }), ErrSchema},
		{"inReplyTo as text", with(func(f *msgFields) { f.inReplyTo = textHex("x") }), ErrSchema},
		{"topicId as text", with(func(f *msgFields) { f.topic = "60" }), ErrSchema},
		{"expires not bool", with(func(f *msgFields) { f.expires = "820000" }), ErrSchema},
		{"expires beyond uint32", with(func(f *msgFields) { f.expires = "82f4" + u64(1<<32) }), ErrSchema},
		{"expires of three items", with(func(f *msgFields) { f.expires = "83f40000" }), ErrSchema},
		{"unknown cardinality", with(func(f *msgFields) { f.body = "8501600460" + "40" }), ErrSchema},
		{"NullPart with content", with(func(f *msgFields) { f.body = "8501600060" + "40" }), ErrSchema},
		{"SinglePart too short", with(func(f *msgFields) { f.body = "83016001" }), ErrSchema},
		{"disposition 256", with(func(f *msgFields) { f.body = "85" + "190100" + f.body[4:] }), ErrSchema},
		{"negative disposition", with(func(f *msgFields) { f.body = "85" + "20" + f.body[4:] }), ErrSchema},
		{"unknown partSemantics", with(func(f *msgFields) { f.body = "85016003" + "03" + "82" + singleBody + singleBody }), ErrSchema},
		{"MultiPart of one part", with(func(f *msgFields) { f.body = "85016003" + "00" + "81" + singleBody }), ErrSchema},
		{"encAlg beyond uint16", with(func(f *msgFields) { f.body = externalBody("00", "1a00010000", "00") }), ErrSchema},
		{"hashAlg beyond uint8", with(func(f *msgFields) { f.body = externalBody("00", "00", "190100") }), ErrSchema},
		{"senderUri not text", with(func(f *msgFields) { f.ext = "a2" + "0100" + "02" + textHex(room) }), ErrSchema},
		{"empty senderUri", with(func(f *msgFields) { f.ext = "a2" + "0160" + "02" + textHex(room) }), ErrSchema},
		{"extension key 2^53", withExt("1b0020000000000000" + "00"), ErrSchema},
		{"extension key -2^53", withExt("3b001fffffffffffff" + "00"), ErrSchema},
		{"extension key empty text", withExt("60" + "00"), ErrSchema},
		{"extension key 256 octets", withExt(textHex(strings.Repeat("k", 256)) + "00"), ErrSchema},
		{"extension key byte string", withExt("4100" + "00"), ErrSchema},
		{"nested map key float", withExt("03" + "a1" + "f93c00" + "00"), ErrSchema},
		{"nested map key array", withExt("03" + "a1" + "80" + "00"), ErrSchema},
		{"nested map key 2^53", withExt("03" + "a1" + "1b0020000000000000" + "00"), ErrSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := decodeHex(t, tt.in)
			c, err := Decode(in)
			if err == nil {
				t.Fatalf("Decode accepted %x as %+v", in, c)
			}
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrMalformed) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want *DecodeError matching ErrMalformed and %v", err, tt.want)
			}
			if de.Offset < 0 || de.Offset > len(in) {
				t.Errorf("offset %d outside input of %d bytes", de.Offset, len(in))
			}
		})
	}
}

// TestDecodeAccepts checks inputs at the edge of each rule that must be
// accepted, and that each re-encodes to itself.
func TestDecodeAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, c *Content)
	}{
		{"bytewise key order", withExt("1818"+"00", "20"+"00", textHex("a")+"f5"), func(t *testing.T, c *Content) {
			keys := []ExtensionKey{{Int: 24}, {Int: -1}, {Text: "a"}}
			for i, e := range c.Extensions.Other {
				if e.Key != keys[i] {
					t.Errorf("key %d = %+v, want %+v", i, e.Key, keys[i])
				}
			}
		}},
		{"draft Section 6.3 example", withExt("190100" + "82" + "82" + "421234" + "d820" + textHex("http://example.com") + "82" + "423456" + "19168b"), nil},
		{"extension 4 levels deep", withExt("03" + "818181" + "00"), nil},
		{"float16", withExt("03" + "f93c00"), nil},
		{"float16 quiet NaN", withExt("03" + "f97e00"), nil},
		{"float16 infinity", withExt("03" + "f97c00"), nil},
		{"float32 beyond float16", withExt("03" + "fa47c35000"), nil},
		{"float32 subnormal", withExt("03" + "fa00000001"), nil},
		{"float64 0.1", withExt("03" + "fb3fb999999999999a"), nil},
		{"bignum 2^64", withExt("03" + "c2" + "49010000000000000000"), nil},
		{"nested map keys", withExt("03" + "a3" + "00f6" + "4100f6" + "6161f6"), nil},
		{"nested map key -(2^53-1)", withExt("03" + "a1" + "3b001ffffffffffffe" + "00"), nil},
		{"extension key 2^53-1", withExt("1b001fffffffffffff" + "00"), nil},
		{"extension key 255 octets", withExt(textHex(strings.Repeat("k", 255)) + "00"), nil},
		{"NestedPart 4 levels deep", with(func(f *msgFields) { f.body = nestHex(4) }), nil},
		{"1024 parts", with(func(f *msgFields) { f.body = manyParts(1023) }), func(t *testing.T, c *Content) {
			if n := len(c.Body.Part.(MultiPart).Parts); n != 1023 {
				t.Errorf("%d parts", n)
			}
		}},
		{"topicId 4096 octets", with(func(f *msgFields) { f.topic = bytesHex(make([]byte, 4096)) }), nil},
		{"unknown disposition", with(func(f *msgFields) { f.body = "85" + "18ff" + f.body[4:] }), func(t *testing.T, c *Content) {
			if c.Body.Disposition != 255 || c.Body.Disposition.Effective() != DispositionRender {
				t.Errorf("disposition %d", c.Body.Disposition)
			}
		}},
		{"no extensions", with(func(f *msgFields) { f.ext = "a0" }), nil},
		{"relative expiry", with(func(f *msgFields) { f.expires = "82f5" + "1a62036674" }), func(t *testing.T, c *Content) {
			if *c.Expires != (Expiration{Relative: true, Time: 1644390004}) {
				t.Errorf("expires %+v", c.Expires)
			}
		}},
		{"size 2^64-1", with(func(f *msgFields) { f.body = externalBody(u64max, "19ffff", "18ff") }), func(t *testing.T, c *Content) {
			e := c.Body.Part.(ExternalPart)
			if e.Size != 1<<64-1 || e.EncAlg != 0xffff || e.HashAlg != 0xff {
				t.Errorf("external %+v", e)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := decodeHex(t, tt.in)
			c, err := Decode(in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			out, err := c.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, in)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

const u64max = "1bffffffffffffffff"
