package mls

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/cloudflare/circl/hpke"
)

// withMemo installs a fresh memo for the rest of the test. The tests that
// use it are not parallel: the memo is process-wide.
func withMemo(t *testing.T) *Memo {
	t.Helper()
	m := NewMemo(64, 64)
	prev := SetMemo(m)
	t.Cleanup(func() { SetMemo(prev) })
	return m
}

// TestMemoSignatures: a signature that verified is answered from the
// memo; one that fails is verified, and fails, every time, even once the
// good signature of the same message is remembered.
func TestMemoSignatures(t *testing.T) {
	cs := CipherSuite(1)
	priv, pub, err := cs.GenerateSignatureKeyPair(&seedReader{seed: []byte("memo")})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := cs.SignWithLabel(priv, "LeafNodeTBS", []byte("content"))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(sig)
	bad[0] ^= 1
	m := withMemo(t)
	for range 3 {
		if err := cs.VerifyWithLabel(pub, "LeafNodeTBS", []byte("content"), sig); err != nil {
			t.Fatal(err)
		}
		if err := cs.VerifyWithLabel(pub, "LeafNodeTBS", []byte("content"), bad); err == nil {
			t.Fatal("a flipped signature verified")
		}
		// Same signature, other label or content: another key.
		if err := cs.VerifyWithLabel(pub, "KeyPackageTBS", []byte("content"), sig); err == nil {
			t.Fatal("the signature verified under another label")
		}
		if err := cs.VerifyWithLabel(pub, "LeafNodeTBS", []byte("content!"), sig); err == nil {
			t.Fatal("the signature verified over other content")
		}
	}
	if st := m.Stats(); st.SignatureHits != 2 || st.SignatureMisses != 10 {
		t.Fatalf("stats %+v, want 2 hits (the good signature's repeats) and 10 misses", st)
	}
}

// TestMemoPublicKeys: DeriveKeyPair gives the same key pair with the memo
// as without, the second time from the memo.
func TestMemoPublicKeys(t *testing.T) {
	for _, cs := range SupportedCipherSuites() {
		ikm := bytes.Repeat([]byte{7}, cs.Nh())
		wantPriv, wantPub, err := cs.DeriveKeyPair(ikm)
		if err != nil {
			t.Fatal(err)
		}
		func() {
			m := withMemo(t)
			for range 2 {
				priv, pub, err := cs.DeriveKeyPair(ikm)
				if err != nil || !bytes.Equal(priv, wantPriv) || !bytes.Equal(pub, wantPub) {
					t.Fatalf("%v: DeriveKeyPair with the memo: %x %x %v", cs, priv, pub, err)
				}
				pub[0] ^= 1 // the caller's copy: the memo keeps its own
			}
			if st := m.Stats(); st.PublicKeyHits != 1 || st.PublicKeyMisses != 1 {
				t.Fatalf("%v: stats %+v", cs, st)
			}
		}()
	}
}

// TestX25519PublicKeyFixedBase: the fixed-base X25519 public key equals
// circl's Montgomery ladder for keys across the scalar range (clamping
// included).
func TestX25519PublicKeyFixedBase(t *testing.T) {
	rand := &seedReader{seed: []byte("x25519")}
	scheme := hpke.KEM_X25519_HKDF_SHA256.Scheme()
	for i := range 2000 {
		sk := make([]byte, 32)
		switch i {
		case 0: // all zero
		case 1:
			for j := range sk {
				sk[j] = 0xff
			}
		default:
			if _, err := rand.Read(sk); err != nil {
				t.Fatal(err)
			}
		}
		got, err := kemPublicFromPrivateUncached(hpke.KEM_X25519_HKDF_SHA256, sk)
		if err != nil {
			t.Fatal(err)
		}
		k, err := scheme.UnmarshalBinaryPrivateKey(sk)
		if err != nil {
			t.Fatal(err)
		}
		want, err := k.Public().MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("key %x: fixed base %x, ladder %x", sk, got, want)
		}
	}
	if _, err := kemPublicFromPrivateUncached(hpke.KEM_X25519_HKDF_SHA256, make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte X25519 private key was accepted")
	}
}

// TestMemoObserverCommits: two observers of the same epoch state (built
// independently, as two servers build theirs) processing the same commit
// get the second result from the memo, equal to the first and to the
// members' state; each gets its own summary. A tampered copy of the
// commit is still rejected, the same commit on another state (one more
// proposal held) is checked again, and an observer with a policy of its
// own never consults the memo.
func TestMemoObserverCommits(t *testing.T) {
	r := newObsRoom(t, CipherSuite(1), "memo", GroupConfig{})
	kb := r.keyPackage("bob")
	r.apply("alice", r.commit("alice", &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}}),
		map[string]*KeyPackageBundle{"bob": kb})
	other := observerOf(t, r.members["bob"]) // the same epoch, bootstrapped apart
	m := withMemo(t)
	pc := r.commit("bob", &CommitOptions{ForcePath: true})
	n1, oc1, err := r.obs.ProcessCommit(roundTrip(t, pc.Message), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	n2, oc2, err := other.ProcessCommit(roundTrip(t, pc.Message), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.CommitHits != 1 || st.CommitMisses != 1 {
		t.Fatalf("stats %+v, want the second observer answered from the memo", st)
	}
	if !bytes.Equal(pgContext(t, n1), pgContext(t, n2)) || !reflect.DeepEqual(oc1, oc2) {
		t.Fatal("the remembered result differs")
	}
	oc2.Proposals = append(oc2.Proposals[:0], CommitProposal{})
	if _, oc3, err := other.ProcessCommit(roundTrip(t, pc.Message), time.Time{}); err != nil || !reflect.DeepEqual(oc3, oc1) {
		t.Fatalf("a caller's change to its summary reached the memo: %v", err)
	}
	r.obs = n1
	for _, name := range []string{"alice", "bob"} {
		g := r.members[name]
		if name == "bob" {
			if err := g.MergeCommit(pc, nil, time.Time{}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := g.ProcessMessage(roundTrip(t, pc.Message), nil); err != nil {
			t.Fatal(err)
		}
	}
	r.checkSame("after the remembered commit")

	// A tampered confirmation tag: the signature still verifies (the tag
	// is outside it), but the interim transcript hash differs, so the key
	// does; the observer must not take the remembered result.
	before := m.Stats()
	tampered := roundTrip(t, pc.Message)
	tampered.PublicMessage.Auth.ConfirmationTag[0] ^= 1
	if n, _, err := other.ProcessCommit(tampered, time.Time{}); err != nil || bytes.Equal(n.InterimTranscriptHash(), n1.InterimTranscriptHash()) {
		t.Fatalf("tampered tag: %v (its interim hash must differ from the real commit's)", err)
	}
	badSig := roundTrip(t, pc.Message)
	badSig.PublicMessage.Auth.Signature[0] ^= 1
	for range 2 {
		if _, _, err := other.ProcessCommit(badSig, time.Time{}); err == nil {
			t.Fatal("a commit with a flipped signature was accepted")
		}
	}
	if st := m.Stats(); st.CommitHits != before.CommitHits {
		t.Fatalf("a tampered commit was answered from the memo: %+v", st)
	}

	// The same commit on a state that holds one more proposal.
	upd, err := r.members["alice"].ProposeUpdate(r.rand)
	if err != nil {
		t.Fatal(err)
	}
	withProp, _, err := n1.ProcessProposal(roundTrip(t, upd), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pc2 := r.commit("bob", &CommitOptions{ForcePath: true, NoPending: true})
	before = m.Stats()
	if _, _, err := n1.ProcessCommit(roundTrip(t, pc2.Message), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := withProp.ProcessCommit(roundTrip(t, pc2.Message), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.CommitHits != before.CommitHits || st.CommitMisses != before.CommitMisses+2 {
		t.Fatalf("the commit on a state with another proposal was answered from the memo: %+v", st)
	}

	// A policy of its own: no lookups.
	gi, err := r.members["alice"].GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := NewPublicGroup(gi, nil, &PublicGroupConfig{ValidateCredential: func(*Credential, []byte) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	before = m.Stats()
	if _, _, err := strict.ProcessCommit(roundTrip(t, pc2.Message), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.CommitHits != before.CommitHits || st.CommitMisses != before.CommitMisses {
		t.Fatalf("an observer with its own policy consulted the memo: %+v", st)
	}
}

// TestMemoGenerations: a table keeps its last capacity entries, and a hit
// in the old generation carries the entry into the new one.
func TestMemoGenerations(t *testing.T) {
	tb := memoTable[int]{capacity: 2}
	k := func(i byte) memoKey { return memoKey{i} }
	for i := range byte(3) {
		tb.put(k(i), int(i))
	}
	// cur {2}, old {0, 1}
	if v, ok := tb.get(k(0)); !ok || v != 0 {
		t.Fatal("entry 0 lost after 3 puts of capacity 2")
	}
	// cur {2, 0}: the next put starts a generation, dropping 1.
	tb.put(k(3), 3)
	if _, ok := tb.get(k(1)); ok {
		t.Fatal("entry 1 outlived two generations")
	}
	for _, i := range []byte{0, 2, 3} {
		if v, ok := tb.get(k(i)); !ok || v != int(i) {
			t.Fatalf("entry %d lost", i)
		}
	}
}

// TestPendingCommitGroupInfo: the GroupInfo a pending commit makes on
// request is the one the committer's group gives once the commit is
// merged.
func TestPendingCommitGroupInfo(t *testing.T) {
	r := newObsRoom(t, CipherSuite(1), "pending-gi", GroupConfig{})
	pc := r.commit("alice", &CommitOptions{ForcePath: true})
	got, err := pc.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.members["alice"].MergeCommit(pc, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	want, err := r.members["alice"].GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	wb, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gb, wb) {
		t.Fatal("the pending commit's GroupInfo differs from the merged group's")
	}
	if _, err := (&PendingCommit{}).GroupInfo(true); err == nil {
		t.Fatal("an empty PendingCommit made a GroupInfo")
	}
}
