package mls

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// cryptoTestRand returns a deterministic random source for tests.
func cryptoTestRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func TestUnsupportedCipherSuites(t *testing.T) {
	t.Parallel()
	for _, cs := range []CipherSuite{0x0000, 0x0008, 0x00ff, 0xff00, 0xffff} {
		t.Run(cs.String(), func(t *testing.T) {
			if cs.Supported() {
				t.Fatal("Supported() = true")
			}
			if cs.Nh() != 0 || cs.Nk() != 0 || cs.Nn() != 0 || cs.Hash([]byte("x")) != nil {
				t.Error("sizes or hash of an unsupported suite are not zero")
			}
			checks := map[string]error{}
			_, checks["Extract"] = cs.Extract(nil, nil)
			_, checks["Expand"] = cs.Expand(nil, nil, 1)
			_, checks["MAC"] = cs.MAC(nil, nil)
			_, checks["Seal"] = cs.Seal(make([]byte, 16), make([]byte, 12), nil, nil)
			_, checks["Open"] = cs.Open(make([]byte, 16), make([]byte, 12), nil, nil)
			_, checks["RefHash"] = cs.RefHash("l", nil)
			_, checks["ExpandWithLabel"] = cs.ExpandWithLabel(nil, "l", nil, 1)
			_, checks["DeriveSecret"] = cs.DeriveSecret(nil, "l")
			_, checks["DeriveTreeSecret"] = cs.DeriveTreeSecret(nil, "l", 0, 1)
			_, checks["SignWithLabel"] = cs.SignWithLabel(SignaturePrivateKey{}, "l", nil)
			checks["VerifyWithLabel"] = cs.VerifyWithLabel(nil, "l", nil, nil)
			_, _, checks["EncryptWithLabel"] = cs.EncryptWithLabel(nil, "l", nil, nil, cryptoTestRand(1))
			_, checks["DecryptWithLabel"] = cs.DecryptWithLabel(nil, "l", nil, nil, nil)
			_, _, checks["GenerateSignatureKeyPair"] = cs.GenerateSignatureKeyPair(cryptoTestRand(1))
			_, checks["NewSignaturePrivateKey"] = cs.NewSignaturePrivateKey(make([]byte, 32))
			_, _, checks["DeriveKeyPair"] = cs.DeriveKeyPair(make([]byte, 32))
			_, _, checks["GenerateKEMKeyPair"] = cs.GenerateKEMKeyPair(cryptoTestRand(1))
			_, _, checks["ExternalInitSend"] = cs.ExternalInitSend(nil, cryptoTestRand(1))
			_, checks["ExternalInitReceive"] = cs.ExternalInitReceive(nil, nil)
			checks["ValidateHPKEPublicKey"] = cs.ValidateHPKEPublicKey(nil)
			checks["ValidateSignaturePublicKey"] = cs.ValidateSignaturePublicKey(nil)
			_, checks["PSKSecret"] = cs.PSKSecret(nil)
			_, _, checks["SenderDataKeyNonce"] = cs.SenderDataKeyNonce(nil, nil)
			_, checks["NewSecretTree"] = NewSecretTree(cs, make([]byte, 32), 2)
			_, checks["AdvanceEpoch"] = cs.AdvanceEpoch(make([]byte, 32), nil, nil, nil)
			for name, err := range checks {
				var ue *UnsupportedCipherSuiteError
				if !errors.As(err, &ue) || ue.Suite != cs || !errors.Is(err, ErrUnsupportedCipherSuite) {
					t.Errorf("%s: err = %v, want *UnsupportedCipherSuiteError for %v", name, err, cs)
				}
			}
		})
	}
}

func TestCipherSuiteSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cs         CipherSuite
		nh, nk, nn int
	}{
		{MLS128DHKEMX25519AES128GCMSHA256Ed25519, 32, 16, 12},
		{MLS128DHKEMP256AES128GCMSHA256P256, 32, 16, 12},
		{MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519, 32, 32, 12},
		{MLS256DHKEMX448AES256GCMSHA512Ed448, 64, 32, 12},
		{MLS256DHKEMP521AES256GCMSHA512P521, 64, 32, 12},
		{MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448, 64, 32, 12},
		{MLS256DHKEMP384AES256GCMSHA384P384, 48, 32, 12},
	}
	if len(tests) != len(SupportedCipherSuites()) {
		t.Fatalf("SupportedCipherSuites has %d entries, table %d", len(SupportedCipherSuites()), len(tests))
	}
	for _, tt := range tests {
		if !tt.cs.Supported() || tt.cs.Nh() != tt.nh || tt.cs.Nk() != tt.nk || tt.cs.Nn() != tt.nn {
			t.Errorf("%v: Nh/Nk/Nn = %d/%d/%d, want %d/%d/%d", tt.cs, tt.cs.Nh(), tt.cs.Nk(), tt.cs.Nn(), tt.nh, tt.nk, tt.nn)
		}
		if len(tt.cs.Hash(nil)) != tt.nh {
			t.Errorf("%v: hash length %d", tt.cs, len(tt.cs.Hash(nil)))
		}
	}
}

func TestAEADRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			key, nonce := make([]byte, cs.Nk()), make([]byte, cs.Nn())
			ct, err := cs.Seal(key, nonce, []byte("aad"), []byte("hello"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := cs.Open(key, nonce, []byte("aad"), ct); err != nil || string(pt) != "hello" {
				t.Fatalf("Open = %q, %v", pt, err)
			}
			for name, f := range map[string]func() ([]byte, error){
				"short key":   func() ([]byte, error) { return cs.Open(key[1:], nonce, []byte("aad"), ct) },
				"long nonce":  func() ([]byte, error) { return cs.Open(key, append(nonce, 0), []byte("aad"), ct) },
				"empty nonce": func() ([]byte, error) { return cs.Seal(key, nil, nil, nil) },
				"nil key":     func() ([]byte, error) { return cs.Seal(nil, nonce, nil, nil) },
			} {
				if _, err := f(); err == nil {
					t.Errorf("%s accepted", name)
				}
			}
			bad := append([]byte(nil), ct...)
			bad[0] ^= 1
			if _, err := cs.Open(key, nonce, []byte("aad"), bad); !errors.Is(err, ErrAEADOpen) {
				t.Errorf("tampered ciphertext: err = %v, want ErrAEADOpen", err)
			}
			if _, err := cs.Open(key, nonce, []byte("other"), ct); !errors.Is(err, ErrAEADOpen) {
				t.Errorf("wrong aad: err = %v, want ErrAEADOpen", err)
			}
			if _, err := cs.Open(key, nonce, nil, nil); !errors.Is(err, ErrAEADOpen) {
				t.Errorf("empty ciphertext: err = %v, want ErrAEADOpen", err)
			}
		})
	}
}

func TestKDFBounds(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	prk := make([]byte, 32)
	for _, n := range []int{0, 1, 31, 32, 33, 64, 255 * 32} {
		out, err := cs.Expand(prk, []byte("info"), n)
		if err != nil || len(out) != n {
			t.Errorf("Expand(%d) = %d bytes, %v", n, len(out), err)
		}
	}
	// Expand output is a prefix-stable stream (RFC 5869).
	long, _ := cs.Expand(prk, []byte("info"), 100)
	short, _ := cs.Expand(prk, []byte("info"), 40)
	if !bytes.Equal(long[:40], short) {
		t.Error("Expand(40) is not a prefix of Expand(100)")
	}
	for _, n := range []int{-1, 255*32 + 1} {
		if _, err := cs.Expand(prk, nil, n); err == nil {
			t.Errorf("Expand(%d) accepted", n)
		}
	}
	for _, n := range []int{-1, 0x10000} {
		if _, err := cs.ExpandWithLabel(prk, "l", nil, n); err == nil {
			t.Errorf("ExpandWithLabel(%d) accepted", n)
		}
	}
	// An empty salt is Nh zero bytes (RFC 5869, Section 2.2).
	a, _ := cs.Extract(nil, []byte("ikm"))
	b, _ := cs.Extract(make([]byte, 32), []byte("ikm"))
	if !bytes.Equal(a, b) {
		t.Error("Extract(nil salt) differs from Extract(zero salt)")
	}
	mac, _ := cs.MAC([]byte("k"), []byte("d"))
	if !cs.VerifyMAC([]byte("k"), []byte("d"), mac) || cs.VerifyMAC([]byte("k"), []byte("e"), mac) {
		t.Error("VerifyMAC wrong")
	}
}

func TestLongLabelsAndContexts(t *testing.T) {
	t.Parallel()
	// Labels and contexts past the 1- and 2-byte varint boundaries.
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	secret := make([]byte, 32)
	seen := map[string]bool{}
	for _, n := range []int{0, 55, 56, 63, 64, 16383, 16384} {
		label := string(bytes.Repeat([]byte("a"), n))
		out, err := cs.ExpandWithLabel(secret, label, bytes.Repeat([]byte{1}, n), 32)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if seen[string(out)] {
			t.Errorf("n=%d: collision", n)
		}
		seen[string(out)] = true
		if _, err := cs.RefHash(label, bytes.Repeat([]byte{1}, n)); err != nil {
			t.Fatalf("RefHash n=%d: %v", n, err)
		}
	}
}

func TestSignatureRoundTrip(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			priv, pub, err := cs.GenerateSignatureKeyPair(cryptoTestRand(7))
			if err != nil {
				t.Fatal(err)
			}
			// Deterministic in the random source, and Bytes round-trips.
			priv2, pub2, _ := cs.GenerateSignatureKeyPair(cryptoTestRand(7))
			if !bytes.Equal(priv.Bytes(), priv2.Bytes()) || !bytes.Equal(pub, pub2) {
				t.Error("key generation is not a function of the random source")
			}
			again, err := cs.NewSignaturePrivateKey(priv.Bytes())
			if err != nil || !bytes.Equal(again.PublicKey(), pub) {
				t.Fatalf("NewSignaturePrivateKey(Bytes()) = %x, %v", again.PublicKey(), err)
			}
			sig, err := cs.SignWithLabel(priv, "Label", []byte("content"))
			if err != nil {
				t.Fatal(err)
			}
			// Signing is deterministic in every scheme (RFC 6979 for ECDSA).
			if again, _ := cs.SignWithLabel(priv, "Label", []byte("content")); !bytes.Equal(again, sig) {
				t.Error("two signatures of one message differ")
			}
			if err := cs.VerifyWithLabel(pub, "Label", []byte("content"), sig); err != nil {
				t.Fatalf("verify: %v", err)
			}
			bad := map[string][4][]byte{
				"other label":   {pub, []byte("Other"), []byte("content"), sig},
				"other content": {pub, []byte("Label"), []byte("content!"), sig},
				"short sig":     {pub, []byte("Label"), []byte("content"), sig[:len(sig)-1]},
				"empty sig":     {pub, []byte("Label"), []byte("content"), nil},
				"short key":     {pub[:len(pub)-1], []byte("Label"), []byte("content"), sig},
				"empty key":     {nil, []byte("Label"), []byte("content"), sig},
				"garbage key":   {bytes.Repeat([]byte{0xff}, len(pub)), []byte("Label"), []byte("content"), sig},
			}
			for name, in := range bad {
				if err := cs.VerifyWithLabel(in[0], string(in[1]), in[2], in[3]); !errors.Is(err, ErrBadSignature) {
					t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
				}
			}
			if err := cs.ValidateSignaturePublicKey(pub); err != nil {
				t.Errorf("ValidateSignaturePublicKey(own key): %v", err)
			}
			for name, p := range map[string][]byte{"empty": nil, "short": pub[:len(pub)-1], "long": append(pub, 0)} {
				if err := cs.ValidateSignaturePublicKey(p); !errors.Is(err, ErrBadSignature) {
					t.Errorf("ValidateSignaturePublicKey(%s) = %v", name, err)
				}
			}
			if _, err := cs.SignWithLabel(SignaturePrivateKey{}, "Label", nil); err == nil {
				t.Error("zero key signed")
			}
		})
	}
	// A key of one scheme cannot sign for a suite of another.
	ed, _, _ := MLS128DHKEMX25519AES128GCMSHA256Ed25519.GenerateSignatureKeyPair(cryptoTestRand(1))
	if _, err := MLS128DHKEMP256AES128GCMSHA256P256.SignWithLabel(ed, "l", nil); err == nil {
		t.Error("Ed25519 key signed for a P-256 suite")
	}
	if _, err := MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519.SignWithLabel(ed, "l", nil); err != nil {
		t.Errorf("Ed25519 key rejected by another Ed25519 suite: %v", err)
	}
}

func TestSignaturePrivateKeyParsing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cs   CipherSuite
		raw  []byte
		ok   bool
	}{
		{"ed25519 short", MLS128DHKEMX25519AES128GCMSHA256Ed25519, make([]byte, 31), false},
		{"ed25519 expanded form", MLS128DHKEMX25519AES128GCMSHA256Ed25519, make([]byte, 64), false},
		{"ed448 short", MLS256DHKEMX448AES256GCMSHA512Ed448, make([]byte, 56), false},
		{"p256 zero scalar", MLS128DHKEMP256AES128GCMSHA256P256, make([]byte, 32), false},
		{"p256 above order", MLS128DHKEMP256AES128GCMSHA256P256, bytes.Repeat([]byte{0xff}, 32), false},
		{"p256 too long", MLS128DHKEMP256AES128GCMSHA256P256, make([]byte, 33), false},
		{"p256 empty", MLS128DHKEMP256AES128GCMSHA256P256, nil, false},
		{"p256 short is padded", MLS128DHKEMP256AES128GCMSHA256P256, []byte{1}, true},
		{"p521 above order", MLS256DHKEMP521AES256GCMSHA512P521, append([]byte{2}, make([]byte, 65)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := tt.cs.NewSignaturePrivateKey(tt.raw)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && len(k.Bytes()) != 32 {
				t.Errorf("padded key is %d bytes", len(k.Bytes()))
			}
		})
	}
}

func TestHPKERoundTripAndRejects(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			priv, pub, err := cs.GenerateKEMKeyPair(cryptoTestRand(3))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := cs.HPKEPublicKeyFromPrivate(priv); err != nil || !bytes.Equal(got, pub) {
				t.Fatalf("HPKEPublicKeyFromPrivate = %x, %v", got, err)
			}
			kemOut, ct, err := cs.EncryptWithLabel(pub, "Label", []byte("ctx"), []byte("secret"), cryptoTestRand(4))
			if err != nil {
				t.Fatal(err)
			}
			pt, err := cs.DecryptWithLabel(priv, "Label", []byte("ctx"), kemOut, ct)
			if err != nil || string(pt) != "secret" {
				t.Fatalf("DecryptWithLabel = %q, %v", pt, err)
			}
			if err := cs.ValidateHPKEPublicKey(pub); err != nil {
				t.Errorf("ValidateHPKEPublicKey(own key): %v", err)
			}
			for name, p := range map[string][]byte{"empty": nil, "short": pub[:len(pub)-1], "long": append(pub, 0)} {
				if err := cs.ValidateHPKEPublicKey(p); !errors.Is(err, ErrHPKE) {
					t.Errorf("ValidateHPKEPublicKey(%s) = %v", name, err)
				}
			}
			if _, _, err := cs.EncryptWithLabel(pub, "Label", nil, nil, nil); err == nil {
				t.Error("nil random source accepted")
			}
			flip := func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)/2] ^= 0x40; return c }
			bad := []struct {
				name                  string
				priv, ctx, kemOut, ct []byte
				label                 string
			}{
				{"wrong label", priv, []byte("ctx"), kemOut, ct, "Other"},
				{"wrong context", priv, []byte("ctX"), kemOut, ct, "Label"},
				{"tampered ct", priv, []byte("ctx"), kemOut, flip(ct), "Label"},
				{"tampered kem output", priv, []byte("ctx"), flip(kemOut), ct, "Label"},
				{"short kem output", priv, []byte("ctx"), kemOut[1:], ct, "Label"},
				{"empty kem output", priv, []byte("ctx"), nil, ct, "Label"},
				{"long kem output", priv, []byte("ctx"), append(kemOut, 0), ct, "Label"},
				{"short priv", priv[1:], []byte("ctx"), kemOut, ct, "Label"},
				{"empty priv", nil, []byte("ctx"), kemOut, ct, "Label"},
				{"empty ct", priv, []byte("ctx"), kemOut, nil, "Label"},
			}
			for _, b := range bad {
				if _, err := cs.DecryptWithLabel(b.priv, b.label, b.ctx, b.kemOut, b.ct); !errors.Is(err, ErrHPKE) {
					t.Errorf("%s: err = %v, want ErrHPKE", b.name, err)
				}
			}
			for name, p := range map[string][]byte{"empty": nil, "short": pub[1:], "long": append(pub, 1)} {
				if _, _, err := cs.EncryptWithLabel(p, "Label", nil, nil, cryptoTestRand(1)); !errors.Is(err, ErrHPKE) {
					t.Errorf("%s public key: err = %v, want ErrHPKE", name, err)
				}
			}
		})
	}
}

func TestDeriveKeyPairAnyLength(t *testing.T) {
	t.Parallel()
	// circl panics unless len(ikm) == Nsk; ours accepts any length and is
	// deterministic.
	for _, cs := range SupportedCipherSuites() {
		for _, n := range []int{0, 1, 32, 48, 56, 64, 66, 200} {
			ikm := bytes.Repeat([]byte{byte(n)}, n)
			priv, pub, err := cs.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatalf("%v len %d: %v", cs, n, err)
			}
			priv2, pub2, _ := cs.DeriveKeyPair(ikm)
			if !bytes.Equal(priv, priv2) || !bytes.Equal(pub, pub2) {
				t.Errorf("%v len %d: not deterministic", cs, n)
			}
			if got, err := cs.HPKEPublicKeyFromPrivate(priv); err != nil || !bytes.Equal(got, pub) {
				t.Errorf("%v len %d: public key mismatch", cs, n)
			}
		}
	}
}

func TestExternalInit(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			priv, pub, err := cs.DeriveKeyPair(bytes.Repeat([]byte{9}, cs.Nh()))
			if err != nil {
				t.Fatal(err)
			}
			kemOut, sendSecret, err := cs.ExternalInitSend(pub, cryptoTestRand(5))
			if err != nil {
				t.Fatal(err)
			}
			recvSecret, err := cs.ExternalInitReceive(priv, kemOut)
			if err != nil {
				t.Fatal(err)
			}
			if len(sendSecret) != cs.Nh() || !bytes.Equal(sendSecret, recvSecret) {
				t.Fatalf("init secrets differ: %x vs %x", sendSecret, recvSecret)
			}
			if _, err := cs.ExternalInitReceive(priv, kemOut[1:]); !errors.Is(err, ErrHPKE) {
				t.Errorf("short kem output: err = %v", err)
			}
		})
	}
}

func BenchmarkExpandWithLabel(b *testing.B) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	secret := make([]byte, 32)
	ctx := make([]byte, 32)
	b.ReportAllocs()
	cpu0 := processCPUTime()
	defer func() { reportCPUMicros(b, cpu0) }()
	for b.Loop() {
		if _, err := cs.ExpandWithLabel(secret, "application", ctx, 32); err != nil {
			b.Fatal(err)
		}
	}
}
