package mls

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"testing"
)

// TestKDFHashMatchesStandardLibrary checks the stack-buffer HMAC and HKDF
// against crypto/hmac and crypto/hkdf for keys and messages on both sides
// of the block size and of the stack buffer.
func TestKDFHashMatchesStandardLibrary(t *testing.T) {
	t.Parallel()
	for _, h := range []struct {
		kh  kdfHash
		std func() hash.Hash
	}{{kdfSHA256, sha256.New}, {kdfSHA384, sha512.New384}, {kdfSHA512, sha512.New}} {
		rnd := cryptoTestRand(byte(h.kh))
		for _, klen := range []int{0, 1, 32, 64, 65, 128, 129, 300} {
			for _, mlen := range []int{0, 1, 55, 64, 200, hmacStackSize - 129, hmacStackSize, 2000} {
				t.Run(fmt.Sprintf("h%d/key%d/msg%d", h.kh, klen, mlen), func(t *testing.T) {
					key := make([]byte, klen)
					msg := make([]byte, mlen)
					rnd.Read(key)
					rnd.Read(msg)
					m := hmac.New(h.std, key)
					m.Write(msg)
					want := m.Sum(nil)
					// Split the message over the three parts.
					a, b, c := msg[:mlen/3], msg[mlen/3:mlen/2], msg[mlen/2:]
					if got := h.kh.hmac(nil, key, a, b, c); !bytes.Equal(got, want) {
						t.Fatalf("hmac = %x, want %x", got, want)
					}
					prk, _ := hkdf.Extract(h.std, msg, key)
					if got := h.kh.extract(key, msg); !bytes.Equal(got, prk) {
						t.Fatalf("extract = %x, want %x", got, prk)
					}
					for _, n := range []int{0, 1, h.kh.size(), 3*h.kh.size() + 5} {
						want, _ := hkdf.Expand(h.std, prk, string(msg), n)
						if got := h.kh.expand(prk, msg, n); !bytes.Equal(got, want) {
							t.Fatalf("expand(%d) = %x, want %x", n, got, want)
						}
					}
				})
			}
		}
	}
}
