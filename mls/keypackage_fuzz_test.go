package mls

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// FuzzKeyPackageAdd feeds received KeyPackage bytes through the whole Add
// path: alice commits an Add of the KeyPackage (validating it as a
// committer must, RFC 9420, Sections 10.1 and 12.1.1) and bob processes
// that commit (validating it again as a receiver). The harness re-signs
// suite-1 KeyPackages with a key it knows, so that the fuzzer gets past the
// signatures to the checks behind them (version, suite, init_key, leaf
// capabilities, lifetime, credential, duplicate keys). Whatever alice
// accepts bob must accept with the same result; what she refuses must be
// refused with an error that has a reject reason and leave her state as it
// was.
func FuzzKeyPackageAdd(f *testing.F) {
	kpFuzzSetup(f)
	for _, s := range kpFuzz.seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { kpAddCheck(t, data) })
}

// kpAddCheck runs one input of FuzzKeyPackageAdd and reports whether the
// Add was committed and processed.
func kpAddCheck(t *testing.T, data []byte) bool {
	kp, err := UnmarshalKeyPackage(data)
	if err != nil {
		return false
	}
	if kp.CipherSuite == kpFuzz.cs {
		kp.LeafNode.SignatureKey = kpFuzz.sig.PublicKey()
		if kp.LeafNode.Sign(kpFuzz.cs, kpFuzz.sig, nil, 0) != nil || kp.Sign(kpFuzz.sig) != nil {
			return false
		}
	}
	alice, err := kpFuzz.alice.Restore()
	if err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, alice)
	pc, err := alice.Commit(&seedReader{seed: data}, &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kp}}})
	if err != nil {
		if RejectReason(err) == ReasonNone {
			t.Fatalf("refused KeyPackage without a reject reason: %v", err)
		}
		if fingerprint(t, alice) != before {
			t.Fatal("a refused Add changed alice's state")
		}
		return false
	}
	bob, err := kpFuzz.bob.Restore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ProcessMessage(roundTrip(t, pc.Message), nil); err != nil {
		t.Fatalf("alice committed an Add that bob rejects: %v", err)
	}
	if err := alice.MergeCommit(pc, nil, kpFuzz.now); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(alice.EpochAuthenticator(), bob.EpochAuthenticator()) {
		t.Fatal("alice and bob disagree after the Add")
	}
	return true
}

// TestKeyPackageAddFuzzSeed checks that the harness reaches the accepting
// path: the genuine KeyPackage is added, and one with init_key equal to its
// encryption_key (re-signed by the harness) is refused.
func TestKeyPackageAddFuzzSeed(t *testing.T) {
	kpFuzzSetup(t)
	if !kpAddCheck(t, kpFuzz.seeds[0]) {
		t.Fatal("genuine KeyPackage not added")
	}
	kp, err := UnmarshalKeyPackage(kpFuzz.seeds[0])
	if err != nil {
		t.Fatal(err)
	}
	kp.InitKey = kp.LeafNode.EncryptionKey
	if kpAddCheck(t, mustEncode(t, kp.Marshal)) {
		t.Fatal("KeyPackage with init_key = encryption_key added")
	}
}

var (
	kpFuzzOnce sync.Once
	kpFuzz     struct {
		cs         CipherSuite
		alice, bob *Snapshot
		sig        SignaturePrivateKey
		seeds      [][]byte
		now        time.Time
	}
)

func kpFuzzSetup(tb testing.TB) {
	kpFuzzOnce.Do(func() {
		tr := newTrio(tb, GroupConfig{})
		cs := tr.alice.cs
		sig, _, err := cs.GenerateSignatureKeyPair(tr.rand)
		if err != nil {
			tb.Fatal(err)
		}
		kb, err := NewKeyPackage(tr.rand, cs, sig, NewBasicCredential([]byte("erin")), nil)
		if err != nil {
			tb.Fatal(err)
		}
		kpFuzz.cs, kpFuzz.sig, kpFuzz.now = cs, sig, tr.now
		kpFuzz.alice, kpFuzz.bob = tr.alice.Snapshot(), tr.bob.Snapshot()
		kpFuzz.seeds = append(kpFuzz.seeds, mustEncode(tb, kb.KeyPackage.Marshal))
		for _, c := range wireMessagesVectors(tb)[:5] {
			kpFuzz.seeds = append(kpFuzz.seeds, body(c["mls_key_package"]))
		}
	})
}
