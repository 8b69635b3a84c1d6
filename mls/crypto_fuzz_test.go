package mls

import (
	"errors"
	"testing"
)

// FuzzCryptoPeerInputs feeds arbitrary keys, KEM outputs, ciphertexts and
// signatures to every operation that takes them from peers. None may panic
// (circl and the standard library panic on some malformed sizes), and
// failures must carry the package's typed errors.
func FuzzCryptoPeerInputs(f *testing.F) {
	suites := SupportedCipherSuites()
	for i, cs := range suites {
		priv, pub, _ := cs.DeriveKeyPair([]byte{byte(i)})
		kemOut, ct, _ := cs.EncryptWithLabel(pub, "L", nil, []byte("pt"), cryptoTestRand(1))
		sk, spub, _ := cs.GenerateSignatureKeyPair(cryptoTestRand(2))
		sig, _ := cs.SignWithLabel(sk, "L", []byte("c"))
		f.Add(uint8(i), priv, kemOut, ct, spub, sig)
		f.Add(uint8(i), pub, ct, kemOut, sig, spub)
	}
	f.Add(uint8(0), []byte{}, []byte{}, []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, suite uint8, a, b, c, d, e []byte) {
		cs := suites[int(suite)%len(suites)]
		if _, err := cs.DecryptWithLabel(a, "L", nil, b, c); err != nil && !errors.Is(err, ErrHPKE) {
			t.Fatalf("DecryptWithLabel: untyped error %v", err)
		}
		if _, _, err := cs.EncryptWithLabel(a, "L", nil, c, cryptoTestRand(3)); err != nil && !errors.Is(err, ErrHPKE) {
			t.Fatalf("EncryptWithLabel: untyped error %v", err)
		}
		if _, err := cs.ExternalInitReceive(a, b); err != nil && !errors.Is(err, ErrHPKE) {
			t.Fatalf("ExternalInitReceive: untyped error %v", err)
		}
		if _, _, err := cs.ExternalInitSend(d, cryptoTestRand(4)); err != nil && !errors.Is(err, ErrHPKE) {
			t.Fatalf("ExternalInitSend: untyped error %v", err)
		}
		if err := cs.VerifyWithLabel(d, "L", c, e); err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("VerifyWithLabel: untyped error %v", err)
		}
		if k, err := cs.NewSignaturePrivateKey(a); err == nil {
			if _, err := cs.SignWithLabel(k, "L", c); err != nil {
				t.Fatalf("SignWithLabel with a parsed key: %v", err)
			}
		}
		if _, err := cs.HPKEPublicKeyFromPrivate(a); err != nil && !errors.Is(err, ErrHPKE) {
			t.Fatalf("HPKEPublicKeyFromPrivate: untyped error %v", err)
		}
		priv, pub, err := cs.DeriveKeyPair(a)
		if err != nil {
			t.Fatalf("DeriveKeyPair: %v", err)
		}
		if got, err := cs.HPKEPublicKeyFromPrivate(priv); err != nil || string(got) != string(pub) {
			t.Fatalf("derived key pair inconsistent: %v", err)
		}
		if _, err := cs.Open(a, b, c, d); err != nil && !errors.Is(err, ErrAEADOpen) && len(a) == cs.Nk() && len(b) == cs.Nn() {
			t.Fatalf("Open: untyped error %v", err)
		}
		if _, _, err := cs.SenderDataKeyNonce(a, b); err != nil {
			t.Fatalf("SenderDataKeyNonce: %v", err)
		}
	})
}
