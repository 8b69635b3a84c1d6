package tlspl

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func TestVarint(t *testing.T) {
	tests := []struct {
		name string
		enc  []byte
		val  uint64
		ok   bool
	}{
		{"zero", []byte{0x00}, 0, true},
		{"max1", []byte{0x3f}, 63, true},
		{"min2", []byte{0x40, 0x40}, 64, true},
		{"rfc9000 example 2-byte", []byte{0x7b, 0xbd}, 15293, true},
		{"max2", []byte{0x7f, 0xff}, 16383, true},
		{"min4", []byte{0x80, 0x00, 0x40, 0x00}, 16384, true},
		{"max4", []byte{0xbf, 0xff, 0xff, 0xff}, MaxVarint, true},
		{"non-minimal 2-byte 0", []byte{0x40, 0x00}, 0, false},
		{"non-minimal 2-byte 63", []byte{0x40, 0x3f}, 0, false},
		{"non-minimal 4-byte", []byte{0x80, 0x00, 0x3f, 0xff}, 0, false},
		{"reserved prefix", []byte{0xc0, 0, 0, 0, 0, 0, 0, 1}, 0, false},
		{"truncated", []byte{0x40}, 0, false},
		{"empty", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cryptobyte.String(tt.enc)
			var v uint64
			ok := ReadVarint(&s, &v)
			if ok != tt.ok {
				t.Fatalf("ReadVarint ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if v != tt.val || !s.Empty() {
				t.Fatalf("ReadVarint = %d (rest %x), want %d", v, []byte(s), tt.val)
			}
			got, err := Marshal(func(b *cryptobyte.Builder) { AddVarint(b, v) })
			if err != nil || !bytes.Equal(got, tt.enc) {
				t.Fatalf("AddVarint(%d) = %x, %v; want %x", v, got, err, tt.enc)
			}
		})
	}
}

func TestVarintTooLarge(t *testing.T) {
	if _, err := Marshal(func(b *cryptobyte.Builder) { AddVarint(b, MaxVarint+1) }); err == nil {
		t.Fatal("AddVarint(2^30) succeeded, want error")
	}
}

func TestOpaqueRoundTripAndStrictness(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 16383, 16384, 70000} {
		data := bytes.Repeat([]byte{0xab}, n)
		enc, err := Marshal(func(b *cryptobyte.Builder) { AddOpaque(b, data) })
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if err := Unmarshal(enc, "opaque", func(s *cryptobyte.String) bool { return ReadOpaque(s, &got) }); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, data) || got == nil {
			t.Fatalf("n=%d: round trip mismatch", n)
		}
		// Every strict prefix must fail, and one extra byte must be trailing data.
		for i := 0; i < len(enc); i += 1 + len(enc)/50 {
			if err := Unmarshal(enc[:i], "opaque", func(s *cryptobyte.String) bool { return ReadOpaque(s, &got) }); !errors.Is(err, ErrMalformed) {
				t.Fatalf("n=%d prefix %d: err = %v, want ErrMalformed", n, i, err)
			}
		}
		err = Unmarshal(append(enc, 0), "opaque", func(s *cryptobyte.String) bool { return ReadOpaque(s, &got) })
		var de *DecodeError
		if !errors.Is(err, ErrTrailingData) || !errors.As(err, &de) || de.What != "opaque" {
			t.Fatalf("n=%d trailing: err = %v, want *DecodeError wrapping ErrTrailingData", n, err)
		}
	}
}

func TestOptional(t *testing.T) {
	for _, tt := range []struct {
		in      byte
		present bool
		ok      bool
	}{{0, false, true}, {1, true, true}, {2, false, false}, {0xff, false, false}} {
		s := cryptobyte.String([]byte{tt.in})
		var p bool
		if ok := ReadOptional(&s, &p); ok != tt.ok || p != tt.present {
			t.Errorf("ReadOptional(%#x) = %v, %v; want %v, %v", tt.in, p, ok, tt.present, tt.ok)
		}
	}
}

func TestReadList(t *testing.T) {
	enc, _ := Marshal(func(b *cryptobyte.Builder) {
		AddVector(b, func(b *cryptobyte.Builder) {
			for i := 0; i < 5; i++ {
				b.AddUint16(uint16(i))
			}
		})
	})
	var got []uint16
	err := Unmarshal(enc, "list", func(s *cryptobyte.String) bool {
		return ReadList(s, func(s *cryptobyte.String) bool {
			var v uint16
			if !s.ReadUint16(&v) {
				return false
			}
			got = append(got, v)
			return true
		})
	})
	if err != nil || len(got) != 5 || got[4] != 4 {
		t.Fatalf("ReadList = %v, %v", got, err)
	}
	// An element reader that consumes nothing must not loop forever.
	err = Unmarshal(enc, "list", func(s *cryptobyte.String) bool {
		return ReadList(s, func(*cryptobyte.String) bool { return true })
	})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-consuming element: err = %v, want ErrMalformed", err)
	}
}

// FuzzOpaque checks that decode-then-encode is the identity on accepted input.
func FuzzOpaque(f *testing.F) {
	f.Add([]byte{0x00})
	f.Add([]byte{0x03, 'a', 'b', 'c'})
	f.Add([]byte{0x40, 0x01, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var v []byte
		if err := Unmarshal(in, "opaque", func(s *cryptobyte.String) bool { return ReadOpaque(s, &v) }); err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTrailingData) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := Marshal(func(b *cryptobyte.Builder) { AddOpaque(b, v) })
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoding %x gave %x, %v", in, out, err)
		}
	})
}
