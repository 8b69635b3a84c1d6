package mls

// HPKE (RFC 9180) as MLS uses it: EncryptWithLabel/DecryptWithLabel
// (RFC 9420, Section 5.1.3), DeriveKeyPair for path secrets and
// external_pub, and the exporter-based external init (Section 8.3). circl
// provides the KEMs, KDFs and AEADs; every call into it runs under
// circlSafe, so a panic on malformed input becomes an error.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/hpke"
)

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
	dkpPRK := info.labeledExtract(nil, "dkp_prk", ikm)
	if !info.nist {
		sk, err := info.labeledExpand(dkpPRK, "sk", nil, info.nsk)
		if err != nil {
			return nil, nil, err
		}
		pub, err := kemPublicFromPrivate(p.kem, sk)
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
		if pub, err := kemPublicFromPrivate(p.kem, sk); err == nil {
			return sk, pub, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: DeriveKeyPair found no valid key", ErrHPKE)
}

// kemPublicFromPrivate parses sk, a private key of KEM id, and returns
// the serialized public key, from the installed [Memo] if it holds it.
func kemPublicFromPrivate(id hpke.KEM, sk []byte) (pub []byte, err error) {
	if m := memo.Load(); m != nil {
		k := publicKeyKey(uint16(id), sk)
		if pub, ok := m.publicKey(k); ok {
			return pub, nil
		}
		if pub, err = kemPublicFromPrivateUncached(id, sk); err == nil {
			m.addPublicKey(k, pub)
		}
		return pub, err
	}
	return kemPublicFromPrivateUncached(id, sk)
}

// kemPublicFromPrivateUncached is kemPublicFromPrivate without the memo.
//
// An X25519 public key is u(clamp(sk)·B) (RFC 7748, Section 6.1). circl
// computes it with the Montgomery ladder, as for any point; the fixed-base
// multiplication of filippo.io/edwards25519 (precomputed multiples of the
// base point, constant time) gives the same u-coordinate through the
// birational map in under two thirds of the time, and public keys are
// derived for every node of every UpdatePath a member creates or
// processes.
func kemPublicFromPrivateUncached(id hpke.KEM, sk []byte) (pub []byte, err error) {
	if id == hpke.KEM_X25519_HKDF_SHA256 {
		s, err := edwards25519.NewScalar().SetBytesWithClamping(sk)
		if err != nil {
			return nil, fmt.Errorf("%w: bad private key: %v", ErrHPKE, err)
		}
		return new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery(), nil
	}
	scheme := id.Scheme()
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
	return kemPublicFromPrivate(p.kem, priv)
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
