package conformance

import (
	"encoding/json"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

func init() { register(KindDeserialization, runDeserialization) }

// deserializationCase is one case of deserialization.json: a varint vector
// length header and the length it encodes.
type deserializationCase struct {
	VLBytesHeader hexBytes `json:"vlbytes_header"`
	Length        *uint64  `json:"length"`
}

func runDeserialization(data []byte, r *Result) error {
	var cases []deserializationCase
	if err := json.Unmarshal(data, &cases); err != nil {
		return err
	}
	for i, c := range cases {
		if c.Length == nil || c.VLBytesHeader == nil {
			r.Fail("case %d: missing field", i)
			continue
		}
		s := cryptobyte.String(c.VLBytesHeader)
		var got uint64
		if !tlspl.ReadVarint(&s, &got) || !s.Empty() {
			r.Fail("case %d: header %x does not decode as one varint", i, []byte(c.VLBytesHeader))
			continue
		}
		if got != *c.Length {
			r.Fail("case %d: header %x decodes to %d, want %d", i, []byte(c.VLBytesHeader), got, *c.Length)
			continue
		}
		// The header is minimal, so encoding the length gives it back.
		enc, err := tlspl.Marshal(func(b *cryptobyte.Builder) { tlspl.AddVarint(b, got) })
		if err != nil || string(enc) != string(c.VLBytesHeader) {
			r.Fail("case %d: encoding %d gives %x, want %x", i, got, enc, []byte(c.VLBytesHeader))
			continue
		}
		r.Pass()
	}
	return nil
}
