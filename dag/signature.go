package dag

import (
	"crypto/sha512"
	"encoding/binary"
	"sync"

	"filippo.io/edwards25519"
)

// Signature verification (docs/events.md, section 1.4).
//
// Ed25519 implementations disagree on a few crafted signatures (Henry de
// Valence, "It's 255:19AM", 2020): RFC 8032 allows both the cofactorless
// check [S]B = R + [k]A and the cofactored one [8][S]B = [8]R + [8][k]A,
// and they differ exactly when S·B − R − k·A is a nonzero point of small
// order. A batch check can only be cofactored, so that batch and single
// verification of an event always agree (every server must accept or reject
// the same events, or rooms diverge), Rhizome fixes one rule, used by both:
//
//  1. the origin key A is a canonical encoding of a point that is not of
//     small order;
//  2. R is a canonical encoding of a point;
//  3. S is canonical (S < L);
//  4. [8](S·B − R − k·A) is the identity, with k = SHA-512(R ‖ A ‖ M) mod L.
//
// A signature made by any RFC 8032 signer with an honestly generated key
// passes. The rule differs from Go's crypto/ed25519 only on crafted inputs,
// both ways: it accepts signatures with small-order components, which
// crypto/ed25519 rejects (TestCraftedTorsionSignature), and it rejects
// non-canonical or small-order keys A, which crypto/ed25519 accepts.

// batchChunk is the largest number of signatures checked in one multiscalar
// multiplication; beyond it the cost per signature hardly falls.
const batchChunk = 64

// batchLabel separates the derivation of batch coefficients.
const batchLabel = "rhizome/v1/event-signature-batch\x00"

// sigInput is one signature, decoded and ready for the verification
// equation of rule 4.
type sigInput struct {
	negA *edwards25519.Point // −A, from the key cache
	R    *edwards25519.Point
	S    *edwards25519.Scalar
	k    *edwards25519.Scalar
	key  ServerID
	sig  []byte // the encoded R and S
}

// keyCache holds decoded origin keys (as −A), so that a server's key is
// decompressed once, not once per event. A server sees few origin servers;
// the cache is cleared when it reaches keyCacheSize.
var keyCache = struct {
	sync.RWMutex
	m map[ServerID]*edwards25519.Point
}{m: map[ServerID]*edwards25519.Point{}}

const keyCacheSize = 4096

// originPoint returns −A for an origin key that satisfies rule 1.
func originPoint(id ServerID) (*edwards25519.Point, bool) {
	keyCache.RLock()
	p, ok := keyCache.m[id]
	keyCache.RUnlock()
	if ok {
		return p, true
	}
	A, ok := canonicalPoint(id[:])
	if !ok {
		return nil, false
	}
	if new(edwards25519.Point).MultByCofactor(A).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, false // small order: every message would verify
	}
	p = new(edwards25519.Point).Negate(A)
	keyCache.Lock()
	if len(keyCache.m) >= keyCacheSize {
		clear(keyCache.m)
	}
	keyCache.m[id] = p
	keyCache.Unlock()
	return p, true
}

// canonicalPoint decodes a 32-byte point encoding, rejecting the
// non-canonical ones that edwards25519.Point.SetBytes accepts: a y
// coordinate of p or more, and x = 0 with the sign bit set.
func canonicalPoint(b []byte) (*edwards25519.Point, bool) {
	if len(b) != 32 || !reducedY(b) {
		return nil, false
	}
	// The two points with x = 0 are (0, 1) and (0, −1); with the sign bit
	// set their encodings are non-canonical.
	if b[31]&0x80 != 0 && (isY(b, 1) || isYMinusOne(b)) {
		return nil, false
	}
	p, err := new(edwards25519.Point).SetBytes(b)
	return p, err == nil
}

// reducedY reports whether the 255-bit little-endian y of an encoding is
// below p = 2^255 − 19.
func reducedY(b []byte) bool {
	if b[31]&0x7f != 0x7f {
		return true
	}
	for i := 30; i >= 1; i-- {
		if b[i] != 0xff {
			return true
		}
	}
	return b[0] < 0xed
}

// isY reports whether the y coordinate of an encoding (sign bit ignored) is
// the small value v.
func isY(b []byte, v byte) bool {
	if b[0] != v || b[31]&0x7f != 0 {
		return false
	}
	for _, c := range b[1:31] {
		if c != 0 {
			return false
		}
	}
	return true
}

// isYMinusOne reports whether the y coordinate of an encoding (sign bit
// ignored) is p − 1 = 2^255 − 20.
func isYMinusOne(b []byte) bool {
	if b[0] != 0xec || b[31]&0x7f != 0x7f {
		return false
	}
	for _, c := range b[1:31] {
		if c != 0xff {
			return false
		}
	}
	return true
}

// decodeSignature applies rules 1 to 3 to an origin key, a message and a
// signature, and computes k.
func decodeSignature(key ServerID, msg, sig []byte) (sigInput, bool) {
	if len(sig) != SignatureSize {
		return sigInput{}, false
	}
	negA, ok := originPoint(key)
	if !ok {
		return sigInput{}, false
	}
	R, ok := canonicalPoint(sig[:32])
	if !ok {
		return sigInput{}, false
	}
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return sigInput{}, false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(key[:])
	h.Write(msg)
	var digest [sha512.Size]byte
	k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return sigInput{}, false
	}
	return sigInput{negA: negA, R: R, S: S, k: k, key: key, sig: sig}, true
}

// verifyOne checks rule 4 for one signature: [8](S·B − k·A − R) = 0.
func verifyOne(in sigInput) bool {
	p := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(in.k, in.negA, in.S)
	p.Subtract(p, in.R)
	p.MultByCofactor(p)
	return p.Equal(edwards25519.NewIdentityPoint()) == 1
}

// verifySignature applies the whole rule to one signature.
func verifySignature(key ServerID, msg, sig []byte) bool {
	in, ok := decodeSignature(key, msg, sig)
	return ok && verifyOne(in)
}

// verifyBatch checks rule 4 for all inputs at once: with coefficients z_i,
//
//	[8]( −(Σ z_i S_i)·B + Σ z_i R_i + Σ_A (Σ_{i: A_i = A} z_i k_i)·A ) = 0.
//
// If every signature satisfies rule 4 the sum is the identity. If one does
// not, its term S_i·B − R_i − k_i·A_i has a component of order L, and the
// sum vanishes only if the z_i satisfy a linear relation fixed before they
// were chosen, which 128-bit coefficients from a hash of the whole batch
// (signatures, keys and messages through k_i) do with probability about
// 2^-128 (a random oracle argument, as in deterministic batch verifiers).
// Grouping the terms by key makes a batch from few origins cost little more
// than one point per signature.
func verifyBatch(ins []sigInput) bool {
	seed := sha512.New()
	seed.Write([]byte(batchLabel))
	for _, in := range ins {
		seed.Write(in.sig)
		seed.Write(in.key[:])
		seed.Write(in.k.Bytes())
	}
	var seedSum [sha512.Size]byte
	seed.Sum(seedSum[:0])

	scalars := make([]*edwards25519.Scalar, 0, len(ins)+2)
	points := make([]*edwards25519.Point, 0, len(ins)+2)
	sumS := edwards25519.NewScalar()
	// One term per origin key, in order of first appearance.
	keyIndex := make(map[ServerID]int, 4)
	var keyScalars []*edwards25519.Scalar
	var keyPoints []*edwards25519.Point
	var zBytes [32]byte
	var block [sha512.Size + 4]byte
	copy(block[:], seedSum[:])
	for i, in := range ins {
		binary.BigEndian.PutUint32(block[sha512.Size:], uint32(i))
		zh := sha512.Sum512(block[:])
		copy(zBytes[:16], zh[:16]) // 128 bits, below L, so canonical
		z, err := edwards25519.NewScalar().SetCanonicalBytes(zBytes[:])
		if err != nil {
			return false
		}
		sumS.MultiplyAdd(z, in.S, sumS)
		scalars = append(scalars, z)
		points = append(points, in.R)
		j, ok := keyIndex[in.key]
		if !ok {
			j = len(keyScalars)
			keyIndex[in.key] = j
			keyScalars = append(keyScalars, edwards25519.NewScalar())
			keyPoints = append(keyPoints, in.negA)
		}
		keyScalars[j].MultiplyAdd(z, in.k, keyScalars[j])
	}
	// The cache holds −A, so each key's sum enters negated: (−Σ z_i k_i)(−A).
	for j := range keyScalars {
		scalars = append(scalars, keyScalars[j].Negate(keyScalars[j]))
		points = append(points, keyPoints[j])
	}
	scalars = append(scalars, sumS.Negate(sumS))
	points = append(points, edwards25519.NewGeneratorPoint())
	p := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	p.MultByCofactor(p)
	return p.Equal(edwards25519.NewIdentityPoint()) == 1
}

// VerifyBatch checks the signatures of evs, as [Event.Verify] does, and
// returns the index of the first event whose signature fails with that
// event's error, or -1 and nil. It checks up to 64 signatures with one
// multiscalar multiplication, several times faster per event than Verify,
// and verifies a failing chunk event by event to find the culprit; the
// outcome is Verify's for every input (see the rule at the top of this
// file). It runs on the calling goroutine.
func VerifyBatch(evs []*Event) (int, error) {
	ins := make([]sigInput, 0, min(len(evs), batchChunk))
	for start := 0; start < len(evs); start += batchChunk {
		chunk := evs[start:min(start+batchChunk, len(evs))]
		ins = ins[:0]
		ok := true
		for _, e := range chunk {
			in, good := e.signatureInput()
			if !good {
				ok = false
				break
			}
			ins = append(ins, in)
		}
		if ok && verifyBatch(ins) {
			continue
		}
		for i, e := range chunk {
			if err := e.Verify(); err != nil {
				return start + i, err
			}
		}
		// Unreachable unless the batch equation failed where every single
		// check passed, which the rule excludes; fail safe all the same.
		return start, reject(ReasonBadSignature, "event %v: batch verification failed", chunk[0].ID())
	}
	return -1, nil
}

// signatureInput decodes an event's signature for verification.
func (e *Event) signatureInput() (sigInput, bool) {
	if e.raw == nil {
		return sigInput{}, false
	}
	return decodeSignature(e.Origin, signedMessage(e.id), e.Signature)
}
