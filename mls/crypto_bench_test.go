package mls

import (
	"fmt"
	"testing"
)

// BenchmarkCryptoOps measures the public-key operations per suite: one
// SignWithLabel, VerifyWithLabel, EncryptWithLabel, DecryptWithLabel and
// DeriveKeyPair each.
func BenchmarkCryptoOps(b *testing.B) {
	for _, cs := range []CipherSuite{
		MLS128DHKEMX25519AES128GCMSHA256Ed25519,
		MLS128DHKEMP256AES128GCMSHA256P256,
		MLS256DHKEMP384AES256GCMSHA384P384,
	} {
		sk, spub, err := cs.GenerateSignatureKeyPair(cryptoTestRand(1))
		if err != nil {
			b.Fatal(err)
		}
		priv, pub, err := cs.GenerateKEMKeyPair(cryptoTestRand(2))
		if err != nil {
			b.Fatal(err)
		}
		content := make([]byte, 256)
		sig, _ := cs.SignWithLabel(sk, "bench", content)
		kemOut, ct, _ := cs.EncryptWithLabel(pub, "bench", nil, content[:32], cryptoTestRand(3))
		rnd := cryptoTestRand(4)
		name := fmt.Sprintf("suite=0x%04x", uint16(cs))
		b.Run(name+"/sign", func(b *testing.B) {
			for b.Loop() {
				if _, err := cs.SignWithLabel(sk, "bench", content); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/verify", func(b *testing.B) {
			for b.Loop() {
				if err := cs.VerifyWithLabel(spub, "bench", content, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encrypt", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := cs.EncryptWithLabel(pub, "bench", nil, content[:32], rnd); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decrypt", func(b *testing.B) {
			for b.Loop() {
				if _, err := cs.DecryptWithLabel(priv, "bench", nil, kemOut, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/derive-key-pair", func(b *testing.B) {
			ikm := make([]byte, cs.Nh())
			for b.Loop() {
				if _, _, err := cs.DeriveKeyPair(ikm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
