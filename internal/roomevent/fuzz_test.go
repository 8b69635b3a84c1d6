package roomevent

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzDecoder checks that a decoder never panics, fails only with
// ErrMalformed, and accepts only canonical input: re-encoding what it
// decoded gives the input back.
func fuzzDecoder(f *testing.F, name string) {
	for _, c := range samples(f) {
		if c.name != name && c.name != name+"+welcome" {
			continue
		}
		enc, err := c.value.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		decode := c.decode
		f.Fuzz(func(t *testing.T, in []byte) {
			v, err := decode(in)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("untyped error: %v", err)
				}
				return
			}
			if out := reencode(t, v); !bytes.Equal(out, in) {
				t.Fatalf("accepted non-canonical input:\n in  %x\n out %x", in, out)
			}
		})
		return
	}
	f.Fatalf("no sample named %s", name)
}

func FuzzDecodeCreate(f *testing.F)   { fuzzDecoder(f, "create") }
func FuzzDecodeState(f *testing.F)    { fuzzDecoder(f, "state") }
func FuzzDecodeCommit(f *testing.F)   { fuzzDecoder(f, "commit") }
func FuzzDecodeProposal(f *testing.F) { fuzzDecoder(f, "proposal") }
func FuzzDecodeMessage(f *testing.F)  { fuzzDecoder(f, "message") }
