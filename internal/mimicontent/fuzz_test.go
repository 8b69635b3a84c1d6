package mimicontent

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

func seedAll(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.cbor"))
	if len(files) != len(exampleNames)+1 {
		f.Fatalf("found %d seed files, want %d", len(files), len(exampleNames)+1)
	}
	for _, p := range files {
		f.Add(readFile(f, filepath.Base(p)))
	}
}

// checkDecodeErr requires a typed decode error.
func checkDecodeErr(t *testing.T, err error) {
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("untyped decode error %T: %v", err, err)
	}
}

// FuzzDecode checks that Decode never panics, fails only with a typed
// error, and that whatever it accepts re-encodes to exactly the input
// (no malleability: one encoding per value, so one message ID).
func FuzzDecode(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Decode(in)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode of decoded %x: %v", in, err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, in)
		}
		// Validate must not panic on anything Decode accepts.
		_ = c.Validate()
		_ = c.Kind()
		if _, err := ComputeMessageID("s", "r", in); err != nil {
			t.Fatalf("ComputeMessageID on decoded content: %v", err)
		}
	})
}

// FuzzDecodeDerivedValues does the same for MessageDerivedValues.
func FuzzDecodeDerivedValues(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := DecodeDerivedValues(in)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := v.Encode()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs (%v):\n got %x\nwant %x", err, out, in)
		}
	})
}
