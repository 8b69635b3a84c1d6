package dag

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC8032Vectors checks the rule against the test vectors of RFC 8032
// section 7.1 (Ed25519) and against Go's crypto/ed25519 on the same inputs.
func TestRFC8032Vectors(t *testing.T) {
	for _, v := range []struct{ name, pub, msg, sig string }{
		{"TEST 1", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
			"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
		{"TEST 2", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
			"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
		{"TEST 3", "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
			"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
	} {
		t.Run(v.name, func(t *testing.T) {
			var key ServerID
			copy(key[:], unhex(t, v.pub))
			msg, sig := unhex(t, v.msg), unhex(t, v.sig)
			if !ed25519.Verify(key[:], msg, sig) {
				t.Fatal("crypto/ed25519 rejects the vector: the vector is mistyped")
			}
			if !verifySignature(key, msg, sig) {
				t.Fatal("rejected")
			}
			in, ok := decodeSignature(key, msg, sig)
			if !ok || !verifyBatch([]sigInput{in}) {
				t.Fatal("rejected as a batch of one")
			}
			bad := bytes.Clone(sig)
			bad[63] ^= 0x01
			if verifySignature(key, msg, bad) {
				t.Fatal("accepted a changed signature")
			}
		})
	}
}

// TestVerifyAgreesWithStdlib: on signatures by RFC 8032 signers, and on
// random corruptions of them, the rule decides as crypto/ed25519 does.
func TestVerifyAgreesWithStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		priv := testKey(byte(i))
		var key ServerID
		copy(key[:], priv.Public().(ed25519.PublicKey))
		msg := make([]byte, rng.IntN(80))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		switch i % 4 {
		case 1:
			sig[rng.IntN(len(sig))] ^= byte(1 << rng.IntN(8))
		case 2:
			if len(msg) > 0 {
				msg[rng.IntN(len(msg))] ^= 1
			}
		case 3:
			key[rng.IntN(len(key))] ^= byte(1 << rng.IntN(8))
		}
		want := ed25519.Verify(key[:], msg, sig)
		if got := verifySignature(key, msg, sig); got != want {
			t.Fatalf("case %d: verifySignature = %v, crypto/ed25519 = %v", i, got, want)
		}
	}
}

// TestNonCanonicalEncodingsRejected covers rules 1 to 3: encodings that
// edwards25519.Point.SetBytes accepts but RFC 8032 calls non-canonical, and
// S + L.
func TestNonCanonicalEncodingsRejected(t *testing.T) {
	// y = p + 1 encodes the identity (0, 1) non-canonically; y = 1 with the
	// sign bit set is "−0"; y = p − 1 with the sign bit set likewise.
	pPlus1 := unhex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	negZero := unhex(t, "0100000000000000000000000000000000000000000000000000000000000080")
	negZeroMinus := unhex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")
	for name, enc := range map[string][]byte{"y=p+1": pPlus1, "-0 at y=1": negZero, "-0 at y=-1": negZeroMinus} {
		if _, err := new(edwards25519.Point).SetBytes(enc); err != nil {
			t.Fatalf("%s: SetBytes rejects it, so the case tests nothing: %v", name, err)
		}
		if _, ok := canonicalPoint(enc); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, ok := canonicalPoint(edwards25519.NewGeneratorPoint().Bytes()); !ok {
		t.Error("the base point is rejected")
	}

	priv := testKey(1)
	var key ServerID
	copy(key[:], priv.Public().(ed25519.PublicKey))
	msg := []byte("message")
	sig := ed25519.Sign(priv, msg)
	// S + L: the same point equation, a non-canonical scalar.
	l := unhex(t, "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	var sum [32]byte
	carry := 0
	for i := range 32 {
		v := int(sig[32+i]) + int(l[i]) + carry
		sum[i], carry = byte(v), v>>8
	}
	if carry != 0 { // S < L < 2^253, so S + L < 2^254
		t.Fatal("S + L overflowed 256 bits")
	}
	high := append(bytes.Clone(sig[:32]), sum[:]...)
	if verifySignature(key, msg, high) {
		t.Error("accepted S + L")
	}
}

// torsionPoint returns a point of order 8.
func torsionPoint(t testing.TB) *edwards25519.Point {
	t.Helper()
	p, err := new(edwards25519.Point).SetBytes(unhex(t, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
	if err != nil {
		t.Fatal(err)
	}
	id := edwards25519.NewIdentityPoint()
	q := new(edwards25519.Point).Set(p)
	for range 2 {
		q.Add(q, q)
	}
	if q.Equal(id) == 1 || new(edwards25519.Point).MultByCofactor(p).Equal(id) != 1 {
		t.Fatal("the constant is not a point of order 8")
	}
	return p
}

func TestSmallOrderKeyRejected(t *testing.T) {
	msg := []byte("anything")
	for name, key := range map[string][]byte{
		"identity": edwards25519.NewIdentityPoint().Bytes(),
		"order 8":  torsionPoint(t).Bytes(),
	} {
		var id ServerID
		copy(id[:], key)
		// With A of small order, S = 0 and R = identity satisfy the
		// cofactored equation for every message.
		sig := append(edwards25519.NewIdentityPoint().Bytes(), make([]byte, 32)...)
		if verifySignature(id, msg, sig) {
			t.Errorf("%s key: forged signature accepted", name)
		}
	}
}

// craftTorsionSignature signs msg with priv but adds a point T of order 8
// to R: S·B − R − k·A = −T, so the cofactorless check fails and the
// cofactored one passes.
func craftTorsionSignature(t testing.TB, priv ed25519.PrivateKey, msg []byte, T *edwards25519.Point) []byte {
	t.Helper()
	h := sha512.Sum512(priv.Seed())
	a, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	if !bytes.Equal(new(edwards25519.Point).ScalarBaseMult(a).Bytes(), pub) {
		t.Fatal("derived scalar does not match the public key")
	}
	rh := sha512.Sum512(append([]byte("nonce"), msg...))
	r, _ := edwards25519.NewScalar().SetUniformBytes(rh[:])
	R := new(edwards25519.Point).ScalarBaseMult(r)
	R.Add(R, T)
	Rb := R.Bytes()
	kh := sha512.New()
	kh.Write(Rb)
	kh.Write(pub)
	kh.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(kh.Sum(nil))
	S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return append(Rb, S.Bytes()...)
}

// TestCraftedTorsionSignature pins the one documented difference from
// crypto/ed25519 and shows that single and batch verification agree on it.
func TestCraftedTorsionSignature(t *testing.T) {
	priv := testKey(9)
	var key ServerID
	copy(key[:], priv.Public().(ed25519.PublicKey))
	msg := []byte("crafted")
	sig := craftTorsionSignature(t, priv, msg, torsionPoint(t))
	if ed25519.Verify(key[:], msg, sig) {
		t.Fatal("crypto/ed25519 accepts it: the crafted signature is not the edge case")
	}
	if !verifySignature(key, msg, sig) {
		t.Fatal("the cofactored rule rejects it")
	}
	in, ok := decodeSignature(key, msg, sig)
	if !ok || !verifyBatch([]sigInput{in}) {
		t.Fatal("batch verification disagrees with single verification")
	}
}

// withSignature returns a decoded copy of e carrying sig.
func withSignature(t testing.TB, e *Event, sig []byte) *Event {
	t.Helper()
	raw := bytes.Clone(e.Bytes())
	copy(raw[len(raw)-SignatureSize:], sig)
	d, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// batchCase builds n events from a few origins, some spoiled: kind 0 keeps
// the event, 1 flips a bit of the signature, 2 gives it a crafted torsion
// signature (valid by the rule), 3 sets S to S + 1.
func batchCase(t testing.TB, kinds []byte) []*Event {
	t.Helper()
	T := torsionPoint(t)
	create := mustSign(t, testKey(40), RoomID{}, KindCreate, nil, "batch")
	evs := make([]*Event, len(kinds))
	for i, kind := range kinds {
		priv := testKey(40 + byte(i%3))
		e := mustSign(t, priv, create.RoomID(), KindMessage, []EventID{create.ID()}, fmt.Sprint("event ", i))
		switch kind % 4 {
		case 1:
			sig := bytes.Clone(e.Signature)
			sig[i%SignatureSize] ^= 0x10
			e = withSignature(t, e, sig)
		case 2:
			e = withSignature(t, e, craftTorsionSignature(t, priv, signedMessage(e.ID()), T))
		case 3:
			s, err := edwards25519.NewScalar().SetCanonicalBytes(e.Signature[32:])
			if err != nil {
				t.Fatal(err)
			}
			one, _ := edwards25519.NewScalar().SetCanonicalBytes(append([]byte{1}, make([]byte, 31)...))
			e = withSignature(t, e, append(bytes.Clone(e.Signature[:32]), s.Add(s, one).Bytes()...))
		}
		evs[i] = e
	}
	return evs
}

// firstBad is VerifyBatch's specification: the first event Verify rejects.
func firstBad(evs []*Event) int {
	for i, e := range evs {
		if e.Verify() != nil {
			return i
		}
	}
	return -1
}

func TestVerifyBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name  string
		n     int
		spoil func(i int) byte
	}{
		{"empty", 0, func(int) byte { return 0 }},
		{"one good", 1, func(int) byte { return 0 }},
		{"all good, two chunks", 150, func(int) byte { return 0 }},
		{"torsion signatures", 70, func(i int) byte { return byte(2 * (i % 2)) }},
		{"flipped bit at 100", 130, func(i int) byte { return map[bool]byte{true: 1}[i == 100] }},
		{"S+1 at 3", 10, func(i int) byte { return map[bool]byte{true: 3}[i == 3] }},
		{"random mix", 200, func(int) byte {
			if rng.IntN(40) == 0 {
				return byte(1 + rng.IntN(3))
			}
			return 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kinds := make([]byte, tc.n)
			for i := range kinds {
				kinds[i] = tc.spoil(i)
			}
			evs := batchCase(t, kinds)
			want := firstBad(evs)
			got, err := VerifyBatch(evs)
			if got != want {
				t.Fatalf("VerifyBatch = %d, first failing Verify = %d", got, want)
			}
			if (err == nil) != (want < 0) || (err != nil && !errors.Is(err, ErrBadSignature)) {
				t.Fatalf("error %v for index %d", err, got)
			}
		})
	}
}

func TestVerifyBatchUnsignedEvent(t *testing.T) {
	create := mustSign(t, testKey(2), RoomID{}, KindCreate, nil, "x")
	unsigned := &Event{Version: Version1, Kind: KindMessage, Room: create.RoomID(), Prev: []EventID{create.ID()}}
	if i, err := VerifyBatch([]*Event{create, unsigned}); i != 1 || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyBatch = %d, %v; want 1 and a bad signature", i, err)
	}
}

// FuzzVerifyBatch checks that VerifyBatch always finds the first event that
// Verify rejects, whatever is done to the signatures.
func FuzzVerifyBatch(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 3})
	f.Add([]byte{2, 2, 2, 2})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, kinds []byte) {
		if len(kinds) > 80 {
			kinds = kinds[:80]
		}
		evs := batchCase(t, kinds)
		want := firstBad(evs)
		if got, _ := VerifyBatch(evs); got != want {
			t.Fatalf("VerifyBatch = %d, first failing Verify = %d", got, want)
		}
	})
}
