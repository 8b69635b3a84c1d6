package mls

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/hpke"
	"golang.org/x/crypto/chacha20poly1305"
)

// CipherSuite is an MLS cipher suite identifier (RFC 9420, Section 17.1).
//
// Every suite registered by RFC 9420 is implemented: 0x0001 (mandatory),
// 0x0002, 0x0003 and 0x0007 on the standard library and circl, and the
// 256-bit suites 0x0004-0x0006 too (HPKE DeriveKeyPair is our own, see
// [CipherSuite.DeriveKeyPair]). Any other value is unsupported: every method
// then returns an [*UnsupportedCipherSuiteError] (or, for the methods without
// an error result, a zero value) and never panics.
type CipherSuite uint16

// The cipher suites of RFC 9420, Section 17.1.
const (
	MLS128DHKEMX25519AES128GCMSHA256Ed25519        CipherSuite = 0x0001
	MLS128DHKEMP256AES128GCMSHA256P256             CipherSuite = 0x0002
	MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 CipherSuite = 0x0003
	MLS256DHKEMX448AES256GCMSHA512Ed448            CipherSuite = 0x0004
	MLS256DHKEMP521AES256GCMSHA512P521             CipherSuite = 0x0005
	MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448     CipherSuite = 0x0006
	MLS256DHKEMP384AES256GCMSHA384P384             CipherSuite = 0x0007
)

// ErrUnsupportedCipherSuite is wrapped by every [*UnsupportedCipherSuiteError].
var ErrUnsupportedCipherSuite = errors.New("mls: unsupported cipher suite")

// UnsupportedCipherSuiteError reports a cipher suite this build does not
// implement. It wraps [ErrUnsupportedCipherSuite].
type UnsupportedCipherSuiteError struct {
	Suite CipherSuite
}

// Error names the suite.
func (e *UnsupportedCipherSuiteError) Error() string {
	return fmt.Sprintf("mls: unsupported cipher suite 0x%04x", uint16(e.Suite))
}

// Unwrap returns [ErrUnsupportedCipherSuite].
func (e *UnsupportedCipherSuiteError) Unwrap() error { return ErrUnsupportedCipherSuite }

// signatureScheme identifies a suite's signature algorithm.
type signatureScheme uint8

const (
	sigEd25519 signatureScheme = iota + 1
	sigEd448
	sigECDSAP256
	sigECDSAP384
	sigECDSAP521
)

// suiteParams holds the primitives of one cipher suite.
type suiteParams struct {
	name   string
	hash   kdfHash
	nh     int // KDF.Nh = hash output size
	kem    hpke.KEM
	kdf    hpke.KDF
	aead   hpke.AEAD
	nk, nn int // AEAD key and nonce sizes
	sig    signatureScheme
}

var suiteTable = map[CipherSuite]*suiteParams{
	MLS128DHKEMX25519AES128GCMSHA256Ed25519: {
		name: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519", hash: kdfSHA256, nh: 32,
		kem: hpke.KEM_X25519_HKDF_SHA256, kdf: hpke.KDF_HKDF_SHA256, aead: hpke.AEAD_AES128GCM,
		nk: 16, nn: 12, sig: sigEd25519,
	},
	MLS128DHKEMP256AES128GCMSHA256P256: {
		name: "MLS_128_DHKEMP256_AES128GCM_SHA256_P256", hash: kdfSHA256, nh: 32,
		kem: hpke.KEM_P256_HKDF_SHA256, kdf: hpke.KDF_HKDF_SHA256, aead: hpke.AEAD_AES128GCM,
		nk: 16, nn: 12, sig: sigECDSAP256,
	},
	MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519: {
		name: "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519", hash: kdfSHA256, nh: 32,
		kem: hpke.KEM_X25519_HKDF_SHA256, kdf: hpke.KDF_HKDF_SHA256, aead: hpke.AEAD_ChaCha20Poly1305,
		nk: 32, nn: 12, sig: sigEd25519,
	},
	MLS256DHKEMX448AES256GCMSHA512Ed448: {
		name: "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448", hash: kdfSHA512, nh: 64,
		kem: hpke.KEM_X448_HKDF_SHA512, kdf: hpke.KDF_HKDF_SHA512, aead: hpke.AEAD_AES256GCM,
		nk: 32, nn: 12, sig: sigEd448,
	},
	MLS256DHKEMP521AES256GCMSHA512P521: {
		name: "MLS_256_DHKEMP521_AES256GCM_SHA512_P521", hash: kdfSHA512, nh: 64,
		kem: hpke.KEM_P521_HKDF_SHA512, kdf: hpke.KDF_HKDF_SHA512, aead: hpke.AEAD_AES256GCM,
		nk: 32, nn: 12, sig: sigECDSAP521,
	},
	MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448: {
		name: "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448", hash: kdfSHA512, nh: 64,
		kem: hpke.KEM_X448_HKDF_SHA512, kdf: hpke.KDF_HKDF_SHA512, aead: hpke.AEAD_ChaCha20Poly1305,
		nk: 32, nn: 12, sig: sigEd448,
	},
	MLS256DHKEMP384AES256GCMSHA384P384: {
		name: "MLS_256_DHKEMP384_AES256GCM_SHA384_P384", hash: kdfSHA384, nh: 48,
		kem: hpke.KEM_P384_HKDF_SHA384, kdf: hpke.KDF_HKDF_SHA384, aead: hpke.AEAD_AES256GCM,
		nk: 32, nn: 12, sig: sigECDSAP384,
	},
}

// SupportedCipherSuites lists the suites this build implements, in
// ascending order.
func SupportedCipherSuites() []CipherSuite {
	return []CipherSuite{
		MLS128DHKEMX25519AES128GCMSHA256Ed25519,
		MLS128DHKEMP256AES128GCMSHA256P256,
		MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519,
		MLS256DHKEMX448AES256GCMSHA512Ed448,
		MLS256DHKEMP521AES256GCMSHA512P521,
		MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448,
		MLS256DHKEMP384AES256GCMSHA384P384,
	}
}

// params returns the suite's primitives or an [*UnsupportedCipherSuiteError].
func (cs CipherSuite) params() (*suiteParams, error) {
	p, ok := suiteTable[cs]
	if !ok {
		return nil, &UnsupportedCipherSuiteError{Suite: cs}
	}
	return p, nil
}

// Supported reports whether this build implements cs.
func (cs CipherSuite) Supported() bool {
	_, ok := suiteTable[cs]
	return ok
}

// String returns the RFC 9420 name, or "0x%04x" for an unknown suite.
func (cs CipherSuite) String() string {
	if p, ok := suiteTable[cs]; ok {
		return p.name
	}
	return fmt.Sprintf("0x%04x", uint16(cs))
}

// Nh is the KDF's output size (the hash length) in bytes; 0 if unsupported.
func (cs CipherSuite) Nh() int {
	if p, ok := suiteTable[cs]; ok {
		return p.nh
	}
	return 0
}

// Nk is the AEAD key size in bytes; 0 if unsupported.
func (cs CipherSuite) Nk() int {
	if p, ok := suiteTable[cs]; ok {
		return p.nk
	}
	return 0
}

// Nn is the AEAD nonce size in bytes; 0 if unsupported.
func (cs CipherSuite) Nn() int {
	if p, ok := suiteTable[cs]; ok {
		return p.nn
	}
	return 0
}

// Hash returns the suite's hash of data, or nil if cs is unsupported.
func (cs CipherSuite) Hash(data []byte) []byte {
	p, ok := suiteTable[cs]
	if !ok {
		return nil
	}
	return p.hash.sum(make([]byte, 0, p.nh), data)
}

// Extract is KDF.Extract (HKDF-Extract, RFC 5869) with the suite's hash.
// An empty salt is equivalent to Nh zero bytes.
func (cs CipherSuite) Extract(salt, ikm []byte) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	return p.hash.extract(salt, ikm), nil
}

// Expand is KDF.Expand (HKDF-Expand, RFC 5869) with the suite's hash. length
// must be in [0, 255*Nh].
func (cs CipherSuite) Expand(prk, info []byte, length int) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	return hkdfExpand(p.hash, prk, info, length)
}

// hkdfExpand is HKDF-Expand with a range check on length.
func hkdfExpand(h kdfHash, prk, info []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*h.size() {
		return nil, fmt.Errorf("mls: HKDF-Expand length %d out of range [0, %d]", length, 255*h.size())
	}
	return h.expand(prk, info, length), nil
}

// MAC is the suite's HMAC of data under key (RFC 9420, Section 5.1: the MAC
// of every suite is HMAC with the suite's hash).
func (cs CipherSuite) MAC(key, data []byte) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	return p.hash.hmac(make([]byte, 0, p.nh), key, data, nil, nil), nil
}

// newAEAD builds the suite's AEAD for key, checking its size first so that
// no library call can panic on a peer-chosen length.
func (cs CipherSuite) newAEAD(key []byte) (cipher.AEAD, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	if len(key) != p.nk {
		return nil, fmt.Errorf("mls: AEAD key is %d bytes, want %d", len(key), p.nk)
	}
	switch p.aead {
	case hpke.AEAD_AES128GCM, hpke.AEAD_AES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	case hpke.AEAD_ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, &UnsupportedCipherSuiteError{Suite: cs}
}

// Seal encrypts and authenticates plaintext with the suite's AEAD. key must
// be Nk bytes and nonce Nn bytes.
func (cs CipherSuite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := cs.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("mls: AEAD nonce is %d bytes, want %d", len(nonce), a.NonceSize())
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

// Open decrypts and authenticates ciphertext with the suite's AEAD. It
// returns [ErrAEADOpen] if authentication fails.
func (cs CipherSuite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := cs.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("mls: AEAD nonce is %d bytes, want %d", len(nonce), a.NonceSize())
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrAEADOpen
	}
	return pt, nil
}

// ErrAEADOpen is returned when an AEAD ciphertext fails authentication.
var ErrAEADOpen = errors.New("mls: AEAD decryption failed")

// VerifyMAC reports, in constant time, whether mac is MAC(key, data).
func (cs CipherSuite) VerifyMAC(key, data, mac []byte) bool {
	want, err := cs.MAC(key, data)
	return err == nil && hmac.Equal(want, mac)
}
