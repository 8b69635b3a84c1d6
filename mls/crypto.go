package mls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/sign/ed448"
	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// mlsLabelPrefix is prepended to every label of the labelled operations
// (RFC 9420, Sections 5.1.2, 5.1.3, 8).
const mlsLabelPrefix = "MLS 1.0 "

// ErrBadSignature is returned (possibly wrapped) when a signature does not
// verify.
var ErrBadSignature = errors.New("mls: invalid signature")

// ErrHPKE is wrapped by every HPKE failure of [CipherSuite.EncryptWithLabel],
// [CipherSuite.DecryptWithLabel] and the external-init helpers: a malformed
// key or KEM output, or a ciphertext that fails authentication.
var ErrHPKE = errors.New("mls: HPKE operation failed")

// cryptoAppendOpaque appends opaque data<V> (varint length, then data).
func cryptoAppendOpaque(dst, data []byte) ([]byte, error) {
	n := len(data)
	switch {
	case n < 1<<6:
		dst = append(dst, byte(n))
	case n < 1<<14:
		dst = binary.BigEndian.AppendUint16(dst, uint16(n)|0x4000)
	case n <= tlspl.MaxVarint:
		dst = binary.BigEndian.AppendUint32(dst, uint32(n)|0x80000000)
	default:
		return nil, fmt.Errorf("mls: vector of %d bytes is too long to encode", n)
	}
	return append(dst, data...), nil
}

// cryptoLabelled encodes struct { opaque label<V> = "MLS 1.0 " + label;
// opaque content<V>; } after prefix, the shape shared by KDFLabel (with a
// uint16 length prefix), SignContent and EncryptContext.
func cryptoLabelled(prefix []byte, label string, content []byte) ([]byte, error) {
	full := make([]byte, 0, len(mlsLabelPrefix)+len(label))
	full = append(append(full, mlsLabelPrefix...), label...)
	buf := make([]byte, 0, len(prefix)+len(full)+len(content)+8)
	buf = append(buf, prefix...)
	buf, err := cryptoAppendOpaque(buf, full)
	if err != nil {
		return nil, err
	}
	return cryptoAppendOpaque(buf, content)
}

// RefHash computes RefHash(label, value) = Hash(RefHashInput) with
// RefHashInput = struct { opaque label<V>; opaque value<V>; } (RFC 9420,
// Section 5.2). The label is used as given, e.g.
// "MLS 1.0 KeyPackage Reference".
func (cs CipherSuite) RefHash(label string, value []byte) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	buf, err := cryptoAppendOpaque(make([]byte, 0, len(label)+len(value)+8), []byte(label))
	if err != nil {
		return nil, err
	}
	if buf, err = cryptoAppendOpaque(buf, value); err != nil {
		return nil, err
	}
	return p.hash.sum(make([]byte, 0, p.nh), buf), nil
}

// ExpandWithLabel is KDF.Expand(secret, KDFLabel, length) with
// KDFLabel = struct { uint16 length; opaque label<V> = "MLS 1.0 " + label;
// opaque context<V>; } (RFC 9420, Section 8). length must fit in a uint16
// and in 255*Nh.
func (cs CipherSuite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: ExpandWithLabel length %d out of range", length)
	}
	var lenPrefix [2]byte
	binary.BigEndian.PutUint16(lenPrefix[:], uint16(length))
	info, err := cryptoLabelled(lenPrefix[:], label, context)
	if err != nil {
		return nil, err
	}
	return hkdfExpand(p.hash, secret, info, length)
}

// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
func (cs CipherSuite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return cs.ExpandWithLabel(secret, label, nil, cs.Nh())
}

// DeriveTreeSecret is ExpandWithLabel(secret, label, generation, length)
// with generation encoded as a uint32 (RFC 9420, Section 9.1).
func (cs CipherSuite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	var g [4]byte
	binary.BigEndian.PutUint32(g[:], generation)
	return cs.ExpandWithLabel(secret, label, g[:], length)
}

// ---------------------------------------------------------------------------
// Signatures

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
	return nil
}

// ---------------------------------------------------------------------------
// HPKE

// kemInfo describes a DHKEM for RFC 9180 DeriveKeyPair (Section 7.1.3).
type kemInfo struct {
	id      hpke.KEM
	nsk     int
	hash    kdfHash
	nist    bool // rejection sampling over candidates (P-256/384/521)
	bitmask byte
}

func kemInfoFor(id hpke.KEM) (kemInfo, bool) {
	switch id {
	case hpke.KEM_X25519_HKDF_SHA256:
		return kemInfo{id: id, nsk: 32, hash: kdfSHA256}, true
	case hpke.KEM_X448_HKDF_SHA512:
		return kemInfo{id: id, nsk: 56, hash: kdfSHA512}, true
	case hpke.KEM_P256_HKDF_SHA256:
		return kemInfo{id: id, nsk: 32, hash: kdfSHA256, nist: true, bitmask: 0xff}, true
	case hpke.KEM_P384_HKDF_SHA384:
		return kemInfo{id: id, nsk: 48, hash: kdfSHA384, nist: true, bitmask: 0xff}, true
	case hpke.KEM_P521_HKDF_SHA512:
		return kemInfo{id: id, nsk: 66, hash: kdfSHA512, nist: true, bitmask: 0x01}, true
	}
	return kemInfo{}, false
}

// suiteID is "KEM" || I2OSP(kem_id, 2).
func (k kemInfo) suiteID() []byte {
	return []byte{'K', 'E', 'M', byte(k.id >> 8), byte(k.id)}
}

func (k kemInfo) labeledExtract(salt []byte, label string, ikm []byte) []byte {
	buf := make([]byte, 0, 7+5+len(label)+len(ikm))
	buf = append(append(append(append(buf, "HPKE-v1"...), k.suiteID()...), label...), ikm...)
	return k.hash.extract(salt, buf)
}

func (k kemInfo) labeledExpand(prk []byte, label string, info []byte, length int) ([]byte, error) {
	buf := make([]byte, 2, 2+7+5+len(label)+len(info))
	binary.BigEndian.PutUint16(buf, uint16(length))
	buf = append(append(append(append(buf, "HPKE-v1"...), k.suiteID()...), label...), info...)
	return hkdfExpand(k.hash, prk, buf, length)
}

// circlSafe runs f and turns any panic inside the libraries it calls into an
// error wrapping [ErrHPKE], so no peer-controlled input can crash the caller.
func circlSafe(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrHPKE, r)
		}
	}()
	return f()
}

// DeriveKeyPair is RFC 9180 DeriveKeyPair (Section 7.1.3) for the suite's
// KEM: it returns the private key in SerializePrivateKey form and the public
// key in SerializePublicKey form. MLS uses it with Nh-byte secrets (path
// secrets, external_secret). It is implemented here rather than by circl,
// whose DeriveKeyPair panics unless len(ikm) equals the KEM's Nsk.
func (cs CipherSuite) DeriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	p, err := cs.params()
	if err != nil {
		return nil, nil, err
	}
	info, ok := kemInfoFor(p.kem)
	if !ok {
		return nil, nil, &UnsupportedCipherSuiteError{Suite: cs}
	}
	scheme := p.kem.Scheme()
	dkpPRK := info.labeledExtract(nil, "dkp_prk", ikm)
	if !info.nist {
		sk, err := info.labeledExpand(dkpPRK, "sk", nil, info.nsk)
		if err != nil {
			return nil, nil, err
		}
		pub, err := kemPublicFromPrivate(scheme, sk)
		if err != nil {
			return nil, nil, err
		}
		return sk, pub, nil
	}
	for ctr := 0; ctr <= 255; ctr++ {
		sk, err := info.labeledExpand(dkpPRK, "candidate", []byte{byte(ctr)}, info.nsk)
		if err != nil {
			return nil, nil, err
		}
		sk[0] &= info.bitmask
		if pub, err := kemPublicFromPrivate(scheme, sk); err == nil {
			return sk, pub, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: DeriveKeyPair found no valid key", ErrHPKE)
}

// kemPublicFromPrivate parses sk and returns the serialized public key.
func kemPublicFromPrivate(scheme kem.Scheme, sk []byte) (pub []byte, err error) {
	err = circlSafe(func() error {
		k, err := scheme.UnmarshalBinaryPrivateKey(sk)
		if err != nil {
			return fmt.Errorf("%w: bad private key: %v", ErrHPKE, err)
		}
		pub, err = k.Public().MarshalBinary()
		return err
	})
	return pub, err
}

// HPKEPublicKeyFromPrivate returns the public key of an HPKE private key,
// both in their serialized forms; an error if priv is not a valid key.
func (cs CipherSuite) HPKEPublicKeyFromPrivate(priv []byte) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	return kemPublicFromPrivate(p.kem.Scheme(), priv)
}

// ValidateHPKEPublicKey checks that pub is a well-formed public key of the
// suite's KEM (right length, a point on the curve for P-256/384/521). A
// KeyPackage's init_key or a LeafNode's encryption_key that fails this
// could never be encrypted to. Errors wrap [ErrHPKE].
func (cs CipherSuite) ValidateHPKEPublicKey(pub []byte) error {
	p, err := cs.params()
	if err != nil {
		return err
	}
	return circlSafe(func() error {
		if _, err := p.kem.Scheme().UnmarshalBinaryPublicKey(pub); err != nil {
			return fmt.Errorf("%w: bad public key: %v", ErrHPKE, err)
		}
		return nil
	})
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

// GenerateKEMKeyPair makes an HPKE key pair from rand (which must not be
// nil): DeriveKeyPair over Nsk bytes read from rand.
func (cs CipherSuite) GenerateKEMKeyPair(rand io.Reader) (priv, pub []byte, err error) {
	p, err := cs.params()
	if err != nil {
		return nil, nil, err
	}
	if rand == nil {
		return nil, nil, errors.New("mls: nil random source")
	}
	info, _ := kemInfoFor(p.kem)
	ikm := make([]byte, info.nsk)
	if _, err := io.ReadFull(rand, ikm); err != nil {
		return nil, nil, fmt.Errorf("mls: reading randomness: %w", err)
	}
	return cs.DeriveKeyPair(ikm)
}

// encryptContext encodes EncryptContext (RFC 9420, Section 5.1.3).
func encryptContext(label string, context []byte) ([]byte, error) {
	return cryptoLabelled(nil, label, context)
}

// hpkeSuite returns the circl HPKE suite for cs.
func (cs CipherSuite) hpkeSuite() (hpke.Suite, *suiteParams, error) {
	p, err := cs.params()
	if err != nil {
		return hpke.Suite{}, nil, err
	}
	return hpke.NewSuite(p.kem, p.kdf, p.aead), p, nil
}

// EncryptWithLabel is SealBase(pub, EncryptContext{"MLS 1.0 " + label,
// context}, "", plaintext) (RFC 9420, Section 5.1.3). rand supplies the
// ephemeral KEM key and must not be nil.
func (cs CipherSuite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte, rand io.Reader) (kemOutput, ciphertext []byte, err error) {
	suite, p, err := cs.hpkeSuite()
	if err != nil {
		return nil, nil, err
	}
	if rand == nil {
		return nil, nil, errors.New("mls: nil random source")
	}
	info, err := encryptContext(label, context)
	if err != nil {
		return nil, nil, err
	}
	err = circlSafe(func() error {
		pk, err := p.kem.Scheme().UnmarshalBinaryPublicKey(pub)
		if err != nil {
			return fmt.Errorf("%w: bad public key: %v", ErrHPKE, err)
		}
		sender, err := suite.NewSender(pk, info)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrHPKE, err)
		}
		enc, sealer, err := sender.Setup(rand)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrHPKE, err)
		}
		ct, err := sealer.Seal(plaintext, nil)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrHPKE, err)
		}
		kemOutput, ciphertext = enc, ct
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return kemOutput, ciphertext, nil
}

// DecryptWithLabel is OpenBase(kemOutput, priv, EncryptContext{"MLS 1.0 " +
// label, context}, "", ciphertext) (RFC 9420, Section 5.1.3). Any failure
// wraps [ErrHPKE].
func (cs CipherSuite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	suite, p, err := cs.hpkeSuite()
	if err != nil {
		return nil, err
	}
	info, err := encryptContext(label, context)
	if err != nil {
		return nil, err
	}
	var pt []byte
	err = circlSafe(func() error {
		opener, err := cs.hpkeOpener(suite, p, priv, info, kemOutput)
		if err != nil {
			return err
		}
		pt, err = opener.Open(ciphertext, nil)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrHPKE, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
}

func (cs CipherSuite) hpkeOpener(suite hpke.Suite, p *suiteParams, priv, info, kemOutput []byte) (hpke.Opener, error) {
	scheme := p.kem.Scheme()
	sk, err := scheme.UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: bad private key: %v", ErrHPKE, err)
	}
	if len(kemOutput) != scheme.CiphertextSize() {
		return nil, fmt.Errorf("%w: KEM output is %d bytes, want %d", ErrHPKE, len(kemOutput), scheme.CiphertextSize())
	}
	receiver, err := suite.NewReceiver(sk, info)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHPKE, err)
	}
	opener, err := receiver.Setup(kemOutput)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHPKE, err)
	}
	return opener, nil
}

// externalInitLabel is the HPKE exporter label of RFC 9420, Section 8.3.
const externalInitLabel = "MLS 1.0 external init secret"

// ExternalInitSend performs the joiner's side of an external init (RFC 9420,
// Section 8.3): kem_output, context = SetupBaseS(external_pub, ""), and
// init_secret = context.export("MLS 1.0 external init secret", Nh).
func (cs CipherSuite) ExternalInitSend(externalPub []byte, rand io.Reader) (kemOutput, initSecret []byte, err error) {
	suite, p, err := cs.hpkeSuite()
	if err != nil {
		return nil, nil, err
	}
	if rand == nil {
		return nil, nil, errors.New("mls: nil random source")
	}
	err = circlSafe(func() error {
		pk, err := p.kem.Scheme().UnmarshalBinaryPublicKey(externalPub)
		if err != nil {
			return fmt.Errorf("%w: bad external_pub: %v", ErrHPKE, err)
		}
		sender, err := suite.NewSender(pk, nil)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrHPKE, err)
		}
		enc, sealer, err := sender.Setup(rand)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrHPKE, err)
		}
		kemOutput, initSecret = enc, sealer.Export([]byte(externalInitLabel), uint(p.nh))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return kemOutput, initSecret, nil
}

// ExternalInitReceive is the group's side of an external init: it recovers
// init_secret from the ExternalInit proposal's kem_output with the private
// key derived from external_secret.
func (cs CipherSuite) ExternalInitReceive(externalPriv, kemOutput []byte) ([]byte, error) {
	suite, p, err := cs.hpkeSuite()
	if err != nil {
		return nil, err
	}
	var secret []byte
	err = circlSafe(func() error {
		opener, err := cs.hpkeOpener(suite, p, externalPriv, nil, kemOutput)
		if err != nil {
			return err
		}
		secret = opener.Export([]byte(externalInitLabel), uint(p.nh))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return secret, nil
}
