package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindCryptoBasics, runCryptoBasics) }

type cryptoBasicsCase struct {
	CipherSuite uint16 `json:"cipher_suite"`
	RefHash     struct {
		Label string   `json:"label"`
		Value hexBytes `json:"value"`
		Out   hexBytes `json:"out"`
	} `json:"ref_hash"`
	ExpandWithLabel struct {
		Secret  hexBytes `json:"secret"`
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  int      `json:"length"`
		Out     hexBytes `json:"out"`
	} `json:"expand_with_label"`
	DeriveSecret struct {
		Secret hexBytes `json:"secret"`
		Label  string   `json:"label"`
		Out    hexBytes `json:"out"`
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Secret     hexBytes `json:"secret"`
		Label      string   `json:"label"`
		Generation uint32   `json:"generation"`
		Length     int      `json:"length"`
		Out        hexBytes `json:"out"`
	} `json:"derive_tree_secret"`
	SignWithLabel struct {
		Priv      hexBytes `json:"priv"`
		Pub       hexBytes `json:"pub"`
		Content   hexBytes `json:"content"`
		Label     string   `json:"label"`
		Signature hexBytes `json:"signature"`
	} `json:"sign_with_label"`
	EncryptWithLabel struct {
		Priv       hexBytes `json:"priv"`
		Pub        hexBytes `json:"pub"`
		Label      string   `json:"label"`
		Context    hexBytes `json:"context"`
		Plaintext  hexBytes `json:"plaintext"`
		KEMOutput  hexBytes `json:"kem_output"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

// suiteSkipReason returns the skip reason for an unsupported suite, or "".
func suiteSkipReason(cs mls.CipherSuite) string {
	if cs.Supported() {
		return ""
	}
	return fmt.Sprintf("cipher suite 0x%04x not supported", uint16(cs))
}

// runSuiteCases is the loop every per-suite vector file shares: decode the
// JSON array of cases, skip (with the reason) those whose cipher suite this
// build lacks, check the others one by one, and count the outcome. suite
// returns a case's cipher_suite field.
func runSuiteCases[T any](data []byte, r *Result, suite func(*T) uint16, check func(i int, cs mls.CipherSuite, c *T) error) error {
	var cases []T
	if err := json.Unmarshal(data, &cases); err != nil {
		return err
	}
	for i := range cases {
		c := &cases[i]
		cs := mls.CipherSuite(suite(c))
		if reason := suiteSkipReason(cs); reason != "" {
			r.Skip(reason)
			continue
		}
		if err := check(i, cs, c); err != nil {
			r.Fail("case %d (suite 0x%04x): %v", i, suite(c), err)
			continue
		}
		r.Pass()
	}
	return nil
}

// anyIndex adapts a check that does not need the case's index.
func anyIndex[T any](check func(mls.CipherSuite, *T) error) func(int, mls.CipherSuite, *T) error {
	return func(_ int, cs mls.CipherSuite, c *T) error { return check(cs, c) }
}

// vectorRand is a deterministic byte source for the encrypt side of
// round-trip checks.
type vectorRand struct{ n byte }

func (r *vectorRand) Read(p []byte) (int, error) {
	for i := range p {
		r.n = r.n*31 + 7
		p[i] = r.n
	}
	return len(p), nil
}

func runCryptoBasics(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *cryptoBasicsCase) uint16 { return c.CipherSuite }, anyIndex(checkCryptoBasics))
}

func checkCryptoBasics(cs mls.CipherSuite, c *cryptoBasicsCase) error {
	eq := func(what string, got []byte, err error, want []byte) error {
		if err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s = %x, want %x", what, got, want)
		}
		return nil
	}
	got, err := cs.RefHash(c.RefHash.Label, c.RefHash.Value)
	if err := eq("RefHash", got, err, c.RefHash.Out); err != nil {
		return err
	}
	e := c.ExpandWithLabel
	got, err = cs.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length)
	if err := eq("ExpandWithLabel", got, err, e.Out); err != nil {
		return err
	}
	got, err = cs.DeriveSecret(c.DeriveSecret.Secret, c.DeriveSecret.Label)
	if err := eq("DeriveSecret", got, err, c.DeriveSecret.Out); err != nil {
		return err
	}
	t := c.DeriveTreeSecret
	got, err = cs.DeriveTreeSecret(t.Secret, t.Label, t.Generation, t.Length)
	if err := eq("DeriveTreeSecret", got, err, t.Out); err != nil {
		return err
	}

	s := c.SignWithLabel
	if err := cs.VerifyWithLabel(s.Pub, s.Label, s.Content, s.Signature); err != nil {
		return fmt.Errorf("VerifyWithLabel(vector signature): %v", err)
	}
	priv, err := cs.NewSignaturePrivateKey(s.Priv)
	if err != nil {
		return fmt.Errorf("signature private key: %v", err)
	}
	if !bytes.Equal(priv.PublicKey(), s.Pub) {
		return fmt.Errorf("signature public key = %x, want %x", priv.PublicKey(), s.Pub)
	}
	sig, err := cs.SignWithLabel(priv, s.Label, s.Content)
	if err != nil {
		return fmt.Errorf("SignWithLabel: %v", err)
	}
	if err := cs.VerifyWithLabel(s.Pub, s.Label, s.Content, sig); err != nil {
		return fmt.Errorf("VerifyWithLabel(own signature): %v", err)
	}
	switch cs {
	case 1, 3, 4, 6:
		// EdDSA signatures are deterministic: ours must be the vector's.
		if !bytes.Equal(sig, s.Signature) {
			return fmt.Errorf("SignWithLabel = %x, want %x", sig, s.Signature)
		}
	}

	h := c.EncryptWithLabel
	pt, err := cs.DecryptWithLabel(h.Priv, h.Label, h.Context, h.KEMOutput, h.Ciphertext)
	if err := eq("DecryptWithLabel", pt, err, h.Plaintext); err != nil {
		return err
	}
	pub, err := cs.HPKEPublicKeyFromPrivate(h.Priv)
	if err := eq("HPKE public key", pub, err, h.Pub); err != nil {
		return err
	}
	kemOut, ct, err := cs.EncryptWithLabel(h.Pub, h.Label, h.Context, h.Plaintext, &vectorRand{})
	if err != nil {
		return fmt.Errorf("EncryptWithLabel: %v", err)
	}
	pt, err = cs.DecryptWithLabel(h.Priv, h.Label, h.Context, kemOut, ct)
	return eq("DecryptWithLabel(own ciphertext)", pt, err, h.Plaintext)
}
