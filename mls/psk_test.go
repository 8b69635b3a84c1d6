package mls

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

func TestPreSharedKeyIDRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		id   PreSharedKeyID
		enc  []byte
	}{
		{"external", PreSharedKeyID{PSKType: PSKTypeExternal, PSKID: []byte("id"), PSKNonce: []byte{9, 9}},
			[]byte{1, 2, 'i', 'd', 2, 9, 9}},
		{"resumption", PreSharedKeyID{PSKType: PSKTypeResumption, Usage: ResumptionPSKUsageBranch,
			PSKGroupID: []byte("g"), PSKEpoch: 0x0102030405060708, PSKNonce: []byte{}},
			[]byte{2, 3, 1, 'g', 1, 2, 3, 4, 5, 6, 7, 8, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := tt.id.Marshal()
			if err != nil || !bytes.Equal(enc, tt.enc) {
				t.Fatalf("Marshal = %x, %v; want %x", enc, err, tt.enc)
			}
			back, err := UnmarshalPreSharedKeyID(enc)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := back.Marshal()
			if !bytes.Equal(again, enc) {
				t.Errorf("re-encoding = %x", again)
			}
			// Every strict prefix is malformed, and trailing data rejected.
			for i := range enc {
				if _, err := UnmarshalPreSharedKeyID(enc[:i]); !errors.Is(err, tlspl.ErrMalformed) {
					t.Errorf("prefix %d: err = %v", i, err)
				}
			}
			if _, err := UnmarshalPreSharedKeyID(append(enc, 0)); !errors.Is(err, tlspl.ErrTrailingData) {
				t.Errorf("trailing byte: err = %v", err)
			}
		})
	}
}

func TestPreSharedKeyIDRejects(t *testing.T) {
	t.Parallel()
	for name, enc := range map[string][]byte{
		"reserved psktype":   {0, 0, 0},
		"psktype 3":          {3, 0, 0},
		"reserved usage":     {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"usage 4":            {2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"non-minimal varint": {1, 0x40, 0x01, 'x', 0},
	} {
		if _, err := UnmarshalPreSharedKeyID(enc); !errors.Is(err, tlspl.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	for name, enc := range map[string][]byte{
		"psktype 3": {3, 0, 0},
		"usage 4":   {2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		var ue *UnknownValueError
		if _, err := UnmarshalPreSharedKeyID(enc); !errors.As(err, &ue) || !errors.Is(err, ErrUnknownValue) {
			t.Errorf("%s: err = %v, want *UnknownValueError", name, err)
		}
	}
	for _, id := range []PreSharedKeyID{{PSKType: 0}, {PSKType: PSKTypeResumption, Usage: 0}} {
		if _, err := id.Marshal(); err == nil {
			t.Errorf("Marshal(%+v) accepted", id)
		}
	}
	// An unencodable PSK id makes PSKSecret fail rather than hash garbage.
	if _, err := MLS128DHKEMX25519AES128GCMSHA256Ed25519.PSKSecret([]PSKWithSecret{{ID: PreSharedKeyID{PSKType: 7}}}); err == nil {
		t.Error("PSKSecret accepted an unknown PSK type")
	}
}

func FuzzPreSharedKeyID(f *testing.F) {
	f.Add([]byte{1, 2, 'i', 'd', 2, 9, 9})
	f.Add([]byte{2, 3, 1, 'g', 1, 2, 3, 4, 5, 6, 7, 8, 0})
	f.Add([]byte{2, 1, 0x40, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := UnmarshalPreSharedKeyID(data)
		if err != nil {
			var de *tlspl.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc, err := id.Marshal()
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding %x differs from input %x", enc, data)
		}
	})
}
