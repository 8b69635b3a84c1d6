package mls

// Signatures (RFC 9420, Section 5.1.2): Ed25519 and ECDSA on the standard
// library, Ed448 on circl.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/cloudflare/circl/sign/ed448"
)

// SignaturePrivateKey is a parsed signature private key. Its byte form (see
// [CipherSuite.NewSignaturePrivateKey] and [SignaturePrivateKey.Bytes]) is
// the one the MLS test vectors use: the 32-byte seed for Ed25519, the 57-byte
// seed for Ed448, and the fixed-length big-endian scalar for ECDSA. The zero
// value is not a usable key.
type SignaturePrivateKey struct {
	scheme  signatureScheme
	raw     []byte
	pub     []byte
	ed25519 ed25519.PrivateKey
	ed448   ed448.PrivateKey
	ecdsa   *ecdsa.PrivateKey
}

// Bytes returns a copy of the key's byte form.
func (k SignaturePrivateKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// PublicKey returns a copy of the matching public key in its MLS byte form:
// 32 bytes for Ed25519, 57 for Ed448, the uncompressed SEC1 point for ECDSA.
func (k SignaturePrivateKey) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// Valid reports whether k holds a key (false for the zero value).
func (k SignaturePrivateKey) Valid() bool { return k.scheme != 0 }

func ecdsaCurve(s signatureScheme) (elliptic.Curve, func() hash.Hash, crypto.Hash) {
	switch s {
	case sigECDSAP256:
		return elliptic.P256(), sha256.New, crypto.SHA256
	case sigECDSAP384:
		return elliptic.P384(), sha512.New384, crypto.SHA384
	case sigECDSAP521:
		return elliptic.P521(), sha512.New, crypto.SHA512
	}
	return nil, nil, 0
}

// ecdsaScalarSize is the fixed byte length of a curve's private scalar.
func ecdsaScalarSize(c elliptic.Curve) int { return (c.Params().BitSize + 7) / 8 }

// NewSignaturePrivateKey parses a signature private key of the suite's
// signature scheme from its byte form (see [SignaturePrivateKey]). A shorter
// ECDSA scalar is left-padded with zeros.
func (cs CipherSuite) NewSignaturePrivateKey(raw []byte) (SignaturePrivateKey, error) {
	p, err := cs.params()
	if err != nil {
		return SignaturePrivateKey{}, err
	}
	k := SignaturePrivateKey{scheme: p.sig}
	switch p.sig {
	case sigEd25519:
		if len(raw) != ed25519.SeedSize {
			return SignaturePrivateKey{}, fmt.Errorf("mls: Ed25519 private key is %d bytes, want %d", len(raw), ed25519.SeedSize)
		}
		k.ed25519 = ed25519.NewKeyFromSeed(raw)
		k.pub = append([]byte(nil), k.ed25519.Public().(ed25519.PublicKey)...)
		k.raw = append([]byte(nil), raw...)
	case sigEd448:
		if len(raw) != ed448.SeedSize {
			return SignaturePrivateKey{}, fmt.Errorf("mls: Ed448 private key is %d bytes, want %d", len(raw), ed448.SeedSize)
		}
		k.ed448 = ed448.NewKeyFromSeed(raw)
		k.pub = append([]byte(nil), k.ed448.Public().(ed448.PublicKey)...)
		k.raw = append([]byte(nil), raw...)
	default:
		curve, _, _ := ecdsaCurve(p.sig)
		size := ecdsaScalarSize(curve)
		if len(raw) == 0 || len(raw) > size {
			return SignaturePrivateKey{}, fmt.Errorf("mls: ECDSA private key is %d bytes, want %d", len(raw), size)
		}
		padded := make([]byte, size)
		copy(padded[size-len(raw):], raw)
		priv, err := ecdsa.ParseRawPrivateKey(curve, padded)
		if err != nil {
			return SignaturePrivateKey{}, fmt.Errorf("mls: bad ECDSA private key: %w", err)
		}
		pub, err := priv.PublicKey.Bytes()
		if err != nil {
			return SignaturePrivateKey{}, fmt.Errorf("mls: bad ECDSA private key: %w", err)
		}
		k.ecdsa, k.pub, k.raw = priv, pub, padded
	}
	return k, nil
}

// GenerateSignatureKeyPair makes a signature key pair for the suite from
// rand (which must not be nil) and returns the private key and the public
// key's byte form. The key is a deterministic function of the bytes read.
func (cs CipherSuite) GenerateSignatureKeyPair(rand io.Reader) (SignaturePrivateKey, []byte, error) {
	p, err := cs.params()
	if err != nil {
		return SignaturePrivateKey{}, nil, err
	}
	if rand == nil {
		return SignaturePrivateKey{}, nil, errors.New("mls: nil random source")
	}
	var size int
	var mask byte = 0xff
	switch p.sig {
	case sigEd25519:
		size = ed25519.SeedSize
	case sigEd448:
		size = ed448.SeedSize
	default:
		curve, _, _ := ecdsaCurve(p.sig)
		size = ecdsaScalarSize(curve)
		if bits := curve.Params().BitSize % 8; bits != 0 {
			mask = byte(1<<bits - 1)
		}
	}
	seed := make([]byte, size)
	// Rejection sampling for ECDSA scalars (zero or >= the group order);
	// EdDSA seeds always succeed on the first try.
	for range 256 {
		if _, err := io.ReadFull(rand, seed); err != nil {
			return SignaturePrivateKey{}, nil, fmt.Errorf("mls: reading randomness: %w", err)
		}
		seed[0] &= mask
		k, err := cs.NewSignaturePrivateKey(seed)
		if err == nil {
			return k, k.PublicKey(), nil
		}
	}
	return SignaturePrivateKey{}, nil, errors.New("mls: random source produced no valid signature key")
}

// signContent encodes SignContent (RFC 9420, Section 5.1.2).
func signContent(label string, content []byte) ([]byte, error) {
	return cryptoLabelled(nil, label, content)
}

// SignWithLabel signs SignContent{ "MLS 1.0 " + label, content } with priv
// (RFC 9420, Section 5.1.2). Every scheme is deterministic, so signing uses
// no randomness: Ed25519 and Ed448 by design, ECDSA through RFC 6979 nonces.
// ECDSA signatures are DER-encoded ECDSA-Sig-Value, as in TLS 1.3 and the
// MLS test vectors.
func (cs CipherSuite) SignWithLabel(priv SignaturePrivateKey, label string, content []byte) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	if priv.scheme != p.sig {
		return nil, fmt.Errorf("mls: signature key does not match cipher suite %v", cs)
	}
	msg, err := signContent(label, content)
	if err != nil {
		return nil, err
	}
	switch p.sig {
	case sigEd25519:
		return ed25519.Sign(priv.ed25519, msg), nil
	case sigEd448:
		return ed448.Sign(priv.ed448, msg, ""), nil
	default:
		_, newHash, hashID := ecdsaCurve(p.sig)
		h := newHash()
		h.Write(msg)
		// A nil random source selects RFC 6979 deterministic nonces.
		return priv.ecdsa.Sign(nil, h.Sum(nil), hashID)
	}
}

// VerifyWithLabel checks sig over SignContent{ "MLS 1.0 " + label, content }
// against the public key pub in its MLS byte form. Any failure, including a
// malformed key, wraps [ErrBadSignature].
func (cs CipherSuite) VerifyWithLabel(pub []byte, label string, content, sig []byte) error {
	p, err := cs.params()
	if err != nil {
		return err
	}
	msg, err := signContent(label, content)
	if err != nil {
		return err
	}
	m := memo.Load()
	var mk memoKey
	if m != nil {
		mk = signatureKey(p.sig, pub, msg, sig)
		if m.verified(mk) {
			return nil
		}
	}
	ok := false
	switch p.sig {
	case sigEd25519:
		// ed25519.Verify panics on a wrong-sized key: check first.
		ok = len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
	case sigEd448:
		ok = len(pub) == ed448.PublicKeySize && ed448.Verify(pub, msg, sig, "")
	default:
		curve, newHash, _ := ecdsaCurve(p.sig)
		key, err := ecdsa.ParseUncompressedPublicKey(curve, pub)
		if err != nil {
			return fmt.Errorf("%w: bad ECDSA public key: %v", ErrBadSignature, err)
		}
		h := newHash()
		h.Write(msg)
		ok = ecdsa.VerifyASN1(key, h.Sum(nil), sig)
	}
	if !ok {
		return ErrBadSignature
	}
	if m != nil {
		m.addVerified(mk)
	}
	return nil
}

// ValidateSignaturePublicKey checks that pub is a well-formed public key of
// the suite's signature scheme: 32 bytes for Ed25519, 57 for Ed448, an
// uncompressed point on the curve for ECDSA. Errors wrap [ErrBadSignature],
// since no signature can verify under such a key.
func (cs CipherSuite) ValidateSignaturePublicKey(pub []byte) error {
	p, err := cs.params()
	if err != nil {
		return err
	}
	switch p.sig {
	case sigEd25519:
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key is %d bytes", ErrBadSignature, len(pub))
		}
	case sigEd448:
		if len(pub) != ed448.PublicKeySize {
			return fmt.Errorf("%w: Ed448 public key is %d bytes", ErrBadSignature, len(pub))
		}
	default:
		curve, _, _ := ecdsaCurve(p.sig)
		if _, err := ecdsa.ParseUncompressedPublicKey(curve, pub); err != nil {
			return fmt.Errorf("%w: bad ECDSA public key: %v", ErrBadSignature, err)
		}
	}
	return nil
}
