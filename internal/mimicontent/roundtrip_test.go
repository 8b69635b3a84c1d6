package mimicontent

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// randomContent builds an arbitrary valid-to-encode Content from r.
func randomContent(r *rand.Rand) *Content {
	c := &Content{TopicID: randomBytes(r, 8)}
	for i := range c.Salt {
		c.Salt[i] = byte(r.Uint32())
	}
	if r.IntN(2) == 0 {
		id := randomID(r)
		c.Replaces = &id
	}
	if r.IntN(2) == 0 {
		id := randomID(r)
		c.InReplyTo = &id
	}
	if r.IntN(2) == 0 {
		c.Expires = &Expiration{Relative: r.IntN(2) == 0, Time: r.Uint32()}
	}
	if r.IntN(3) > 0 {
		c.Extensions.SenderURI = "mimi://example.com/u/" + string(randomText(r, 12))
	}
	if r.IntN(3) > 0 {
		c.Extensions.RoomURI = "mimi://example.com/r/" + string(randomText(r, 12))
	}
	// Other extensions with distinct keys and small values.
	seen := map[ExtensionKey]bool{}
	for range r.IntN(4) {
		k := ExtensionKey{Int: r.Int64N(1<<20) - 1<<19}
		if r.IntN(2) == 0 {
			k = ExtensionKey{Text: "x" + string(randomText(r, 6))}
		}
		if k.Text == "" && (k.Int == 1 || k.Int == 2) || seen[k] {
			continue
		}
		seen[k] = true
		values := [][]byte{{0x00}, {0xf5}, {0x61, 'a'}, {0x82, 0x01, 0x42, 0xff, 0x00}, {0xa1, 0x01, 0xf6}, {0xd8, 0x20, 0x60}}
		c.Extensions.Other = append(c.Extensions.Other, Extension{Key: k, Value: values[r.IntN(len(values))]})
	}
	c.Body = randomPart(r, 1)
	return c
}

func randomPart(r *rand.Rand, depth int) NestedPart {
	p := NestedPart{Disposition: Disposition(r.IntN(256)), Language: string(randomText(r, 5))}
	n := 3
	if depth == MaxNestedPartDepth {
		n = 2
	}
	switch r.IntN(n + 1) {
	case 0:
		p.Part = NullPart{}
	case 1:
		p.Part = SinglePart{ContentType: string(randomText(r, 10)), Content: randomBytes(r, 40)}
	case 2:
		p.Part = ExternalPart{
			ContentType: string(randomText(r, 10)), URL: string(randomText(r, 20)),
			Expires: r.Uint32(), Size: r.Uint64() >> r.IntN(64), EncAlg: uint16(r.Uint32()),
			Key: randomBytes(r, 16), Nonce: randomBytes(r, 12), AAD: randomBytes(r, 4),
			HashAlg: uint8(r.Uint32()), ContentHash: randomBytes(r, 32),
			Description: string(randomText(r, 10)), Filename: string(randomText(r, 10)),
		}
	default:
		m := MultiPart{PartSemantics: PartSemantics(r.IntN(3))}
		for range 2 + r.IntN(2) {
			m.Parts = append(m.Parts, randomPart(r, depth+1))
		}
		p.Part = m
	}
	return p
}

func randomID(r *rand.Rand) MessageID {
	var id MessageID
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	return id
}

func randomBytes(r *rand.Rand, max int) []byte {
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randomText returns UTF-8 text mixing ASCII and multi-byte runes.
func randomText(r *rand.Rand, max int) []rune {
	runes := []rune{'a', 'z', '0', '-', 'é', '❤', '🥳'}
	s := make([]rune, r.IntN(max+1))
	for i := range s {
		s[i] = runes[r.IntN(len(runes))]
	}
	return s
}

// TestRandomRoundTrip encodes random values, decodes them, and checks
// that the decoded value encodes to the same bytes and the same ID.
func TestRandomRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		c := randomContent(r)
		enc, err := c.Encode()
		if err != nil {
			t.Fatalf("case %d: Encode: %v", i, err)
		}
		d, err := Decode(enc)
		if err != nil {
			t.Fatalf("case %d: Decode(%x): %v", i, enc, err)
		}
		again, err := d.Encode()
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("case %d: re-encoding differs (%v):\n got %x\nwant %x", i, err, again, enc)
		}
		if d.Salt != c.Salt || d.Extensions.SenderURI != c.Extensions.SenderURI ||
			len(d.Extensions.Other) != len(c.Extensions.Other) || d.Body.Disposition != c.Body.Disposition {
			t.Fatalf("case %d: decoded value differs: %+v vs %+v", i, d, c)
		}
	}
}

// TestPrefixesRejected checks that no strict prefix of an example decodes:
// a truncated message is always an error, never a shorter message.
func TestPrefixesRejected(t *testing.T) {
	t.Parallel()
	for _, ex := range loadExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			for n := range len(ex.cbor) {
				if _, err := Decode(ex.cbor[:n]); !errors.Is(err, ErrTruncated) {
					t.Fatalf("prefix of %d bytes: err = %v, want ErrTruncated", n, err)
				}
			}
		})
	}
}
