package mls

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// wireCodec ties a wire struct's generator to its decoder, for the round
// trip, prefix and fuzz tests.
type wireCodec struct {
	name string
	// gen builds a random well-formed value and encodes it.
	gen func(r *rand.Rand) ([]byte, error)
	// reencode decodes data and encodes the result again.
	reencode func(data []byte) ([]byte, error)
}

func wireCodecs() []wireCodec {
	return []wireCodec{
		{"Credential",
			func(r *rand.Rand) ([]byte, error) { c := wireCredential(r); return c.Marshal() },
			func(d []byte) ([]byte, error) {
				c, err := UnmarshalCredential(d)
				if err != nil {
					return nil, err
				}
				return c.Marshal()
			}},
		{"LeafNode",
			func(r *rand.Rand) ([]byte, error) { n := wireLeafNode(r); return n.Marshal() },
			func(d []byte) ([]byte, error) {
				n, err := UnmarshalLeafNode(d)
				if err != nil {
					return nil, err
				}
				return n.Marshal()
			}},
		{"KeyPackage",
			func(r *rand.Rand) ([]byte, error) { k := wireKeyPackage(r); return k.Marshal() },
			func(d []byte) ([]byte, error) {
				k, err := UnmarshalKeyPackage(d)
				if err != nil {
					return nil, err
				}
				return k.Marshal()
			}},
		{"GroupContext",
			func(r *rand.Rand) ([]byte, error) { g := wireGroupContext(r); return g.Marshal() },
			func(d []byte) ([]byte, error) {
				g, err := UnmarshalGroupContext(d)
				if err != nil {
					return nil, err
				}
				return g.Marshal()
			}},
		{"Proposal",
			func(r *rand.Rand) ([]byte, error) { return MarshalProposal(wireProposal(r)) },
			func(d []byte) ([]byte, error) {
				p, err := UnmarshalProposal(d)
				if err != nil {
					return nil, err
				}
				return MarshalProposal(p)
			}},
		{"Commit",
			func(r *rand.Rand) ([]byte, error) { return wireCommit(r).Marshal() },
			func(d []byte) ([]byte, error) {
				c, err := UnmarshalCommit(d)
				if err != nil {
					return nil, err
				}
				return c.Marshal()
			}},
		{"UpdatePath",
			func(r *rand.Rand) ([]byte, error) { return wireUpdatePath(r).Marshal() },
			func(d []byte) ([]byte, error) {
				u, err := UnmarshalUpdatePath(d)
				if err != nil {
					return nil, err
				}
				return u.Marshal()
			}},
		{"RatchetTree",
			func(r *rand.Rand) ([]byte, error) { return wireRatchetTree(r).Marshal() },
			func(d []byte) ([]byte, error) {
				t, err := UnmarshalRatchetTree(d)
				if err != nil {
					return nil, err
				}
				return t.Marshal()
			}},
		{"AuthenticatedContent",
			func(r *rand.Rand) ([]byte, error) {
				a := AuthenticatedContent{WireFormat: WireFormat(1 + r.IntN(2)), Content: wireFramedContent(r)}
				a.Auth = wireAuth(r, a.Content.ContentType)
				return a.Marshal()
			},
			func(d []byte) ([]byte, error) {
				a, err := UnmarshalAuthenticatedContent(d)
				if err != nil {
					return nil, err
				}
				return a.Marshal()
			}},
		{"PublicMessage",
			func(r *rand.Rand) ([]byte, error) { return wirePublicMessage(r).Marshal() },
			func(d []byte) ([]byte, error) {
				m, err := UnmarshalPublicMessage(d)
				if err != nil {
					return nil, err
				}
				return m.Marshal()
			}},
		{"PrivateMessage",
			func(r *rand.Rand) ([]byte, error) { return wirePrivateMessage(r).Marshal() },
			func(d []byte) ([]byte, error) {
				m, err := UnmarshalPrivateMessage(d)
				if err != nil {
					return nil, err
				}
				return m.Marshal()
			}},
		{"GroupInfo",
			func(r *rand.Rand) ([]byte, error) { return wireGroupInfo(r).Marshal() },
			func(d []byte) ([]byte, error) {
				g, err := UnmarshalGroupInfo(d)
				if err != nil {
					return nil, err
				}
				return g.Marshal()
			}},
		{"GroupSecrets",
			func(r *rand.Rand) ([]byte, error) { return wireGroupSecrets(r).Marshal() },
			func(d []byte) ([]byte, error) {
				g, err := UnmarshalGroupSecrets(d)
				if err != nil {
					return nil, err
				}
				return g.Marshal()
			}},
		{"Welcome",
			func(r *rand.Rand) ([]byte, error) { return wireWelcome(r).Marshal() },
			func(d []byte) ([]byte, error) {
				w, err := UnmarshalWelcome(d)
				if err != nil {
					return nil, err
				}
				return w.Marshal()
			}},
		{"MLSMessage",
			func(r *rand.Rand) ([]byte, error) { return wireMLSMessage(r).Marshal() },
			func(d []byte) ([]byte, error) {
				m, err := UnmarshalMLSMessage(d)
				if err != nil {
					return nil, err
				}
				return m.Marshal()
			}},
	}
}

// isDecodeError reports whether err is one of the typed decoding errors.
func isDecodeError(err error) bool {
	var de *tlspl.DecodeError
	return errors.As(err, &de) && (errors.Is(err, tlspl.ErrMalformed) || errors.Is(err, tlspl.ErrTrailingData) ||
		errors.Is(err, ErrDuplicateExtension))
}

// TestWireRoundTripAndPrefixes encodes random values of every wire struct,
// decodes and re-encodes them (same bytes), and checks that every strict
// prefix and every one-byte extension is rejected with a typed error.
func TestWireRoundTripAndPrefixes(t *testing.T) {
	t.Parallel()
	for _, c := range wireCodecs() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, uint64(len(c.name))))
			for i := range 60 {
				enc, err := c.gen(r)
				if err != nil {
					t.Fatalf("value %d: encode: %v", i, err)
				}
				out, err := c.reencode(enc)
				if err != nil {
					t.Fatalf("value %d: decode %x: %v", i, enc, err)
				}
				if !bytes.Equal(out, enc) {
					t.Fatalf("value %d: re-encoding differs:\n got %x\nwant %x", i, out, enc)
				}
				for n := range len(enc) {
					if _, err := c.reencode(enc[:n]); !isDecodeError(err) {
						t.Fatalf("value %d: prefix of %d/%d bytes: err = %v, want a decode error", i, n, len(enc), err)
					}
				}
				_, err = c.reencode(append(enc[:len(enc):len(enc)], 0))
				if !errors.Is(err, tlspl.ErrTrailingData) {
					t.Fatalf("value %d: trailing byte: err = %v, want ErrTrailingData", i, err)
				}
			}
		})
	}
}
