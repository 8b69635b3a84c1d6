package mls

import (
	"bytes"
	"sync"
	"testing"
)

// Fuzzing of the two ways a client joins from received bytes: a Welcome
// (GroupSecrets and GroupInfo, decrypted and then validated in full) and an
// external commit from a published GroupInfo. The harnesses re-encrypt the
// fuzzed GroupSecrets and GroupInfo correctly, so that the fuzzer gets past
// HPKE and AEAD to the checks behind them: PSKs, the ratchet tree, the
// GroupInfo signature, path secret implantation, the key schedule and the
// confirmation tag. Any input must join or be rejected with an error that
// has a reject reason; nothing may panic.

var (
	joinFuzzOnce sync.Once
	joinFuzz     struct {
		tr        *trio
		kb        *KeyPackageBundle // dave's, added by alice's commit
		secrets   []byte            // dave's GroupSecrets
		groupInfo []byte            // the GroupInfo of dave's Welcome
		published []byte            // alice's GroupInfo with the tree, for external joins
		sig       SignaturePrivateKey
		// authenticator is the epoch_authenticator of the genuine join.
		authenticator []byte
	}
)

func joinFuzzSetup(tb testing.TB) {
	joinFuzzOnce.Do(func() {
		tr := newTrio(tb, GroupConfig{})
		cs := tr.alice.cs
		sig, _, err := cs.GenerateSignatureKeyPair(tr.rand)
		if err != nil {
			tb.Fatal(err)
		}
		kb, err := NewKeyPackage(tr.rand, cs, sig, NewBasicCredential([]byte("dave")), nil)
		if err != nil {
			tb.Fatal(err)
		}
		pc, err := tr.alice.Commit(tr.rand, &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}})
		if err != nil {
			tb.Fatal(err)
		}
		ref, err := kb.KeyPackage.Ref()
		if err != nil {
			tb.Fatal(err)
		}
		gs, err := pc.Welcome.DecryptGroupSecrets(ref, kb.InitPriv)
		if err != nil {
			tb.Fatal(err)
		}
		ws, err := cs.WelcomeSecret(gs.JoinerSecret, make([]byte, cs.Nh()))
		if err != nil {
			tb.Fatal(err)
		}
		gi, err := pc.Welcome.DecryptGroupInfo(ws)
		if err != nil {
			tb.Fatal(err)
		}
		pub, err := tr.alice.GroupInfo(true)
		if err != nil {
			tb.Fatal(err)
		}
		joinFuzz.tr, joinFuzz.kb, joinFuzz.sig = tr, kb, sig
		joinFuzz.secrets = mustEncode(tb, gs.Marshal)
		joinFuzz.groupInfo = mustEncode(tb, gi.Marshal)
		joinFuzz.published = mustEncode(tb, pub.Marshal)
		g, err := JoinGroup(pc.Welcome, kb, nil)
		if err != nil {
			tb.Fatal(err)
		}
		joinFuzz.authenticator = g.EpochAuthenticator()
	})
}

func mustEncode(tb testing.TB, marshal func() ([]byte, error)) []byte {
	tb.Helper()
	b, err := marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// joinFromBytes decodes GroupSecrets and GroupInfo, encrypts them into a
// Welcome for dave's KeyPackage and joins with it. ok is false when the
// inputs do not decode (their decoders have their own fuzz targets).
func joinFromBytes(t *testing.T, secrets, groupInfo []byte) (g *Group, err error, ok bool) {
	gs, err := UnmarshalGroupSecrets(secrets)
	if err != nil {
		return nil, nil, false
	}
	gi, err := UnmarshalGroupInfo(groupInfo)
	if err != nil {
		return nil, nil, false
	}
	kb := joinFuzz.kb
	cs := kb.KeyPackage.CipherSuite
	// The welcome secret the joiner will derive, if the PSKs resolve.
	psk, perr := (&Group{publicState: publicState{cs: cs}}).pskSecret(gs.PSKs)
	if perr != nil {
		psk = make([]byte, cs.Nh())
	}
	ws, err := cs.WelcomeSecret(gs.JoinerSecret, psk)
	if err != nil {
		ws = make([]byte, cs.Nh()) // a joiner_secret of the wrong size
	}
	w, err := NewWelcome(cs, ws, gi)
	if err != nil {
		return nil, nil, false
	}
	if err := w.AddMember(kb.KeyPackage, gs, &seedReader{seed: []byte("join fuzz")}); err != nil {
		return nil, nil, false
	}
	w = roundTripWelcome(t, w)
	g, err = JoinGroup(w, kb, &JoinOptions{})
	return g, err, true
}

func roundTripWelcome(t *testing.T, w *Welcome) *Welcome {
	raw, err := w.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := UnmarshalWelcome(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// FuzzJoinWelcome joins with fuzzed GroupSecrets and GroupInfo, correctly
// encrypted for the joiner.
func FuzzJoinWelcome(f *testing.F) {
	joinFuzzSetup(f)
	f.Add(joinFuzz.secrets, joinFuzz.groupInfo)
	f.Fuzz(func(t *testing.T, secrets, groupInfo []byte) {
		g, err, ok := joinFromBytes(t, secrets, groupInfo)
		if !ok {
			return
		}
		if err != nil {
			if RejectReason(err) == ReasonNone {
				t.Fatalf("join error without a reject reason: %v", err)
			}
			return
		}
		// Only alice can sign a GroupInfo and the confirmation tag binds
		// the secrets, so an accepted join is the genuine one.
		if !bytes.Equal(g.EpochAuthenticator(), joinFuzz.authenticator) {
			t.Fatalf("accepted a join into another state (epoch %d)", g.Epoch())
		}
	})
}

// FuzzJoinExternal joins by external commit from a fuzzed GroupInfo.
func FuzzJoinExternal(f *testing.F) {
	joinFuzzSetup(f)
	f.Add(joinFuzz.published)
	f.Fuzz(func(t *testing.T, data []byte) {
		gi, err := UnmarshalGroupInfo(data)
		if err != nil {
			return
		}
		_, _, err = JoinExternal(&seedReader{seed: []byte("external fuzz")}, gi, joinFuzz.sig,
			NewBasicCredential([]byte("dave")), &ExternalJoinOptions{})
		if err != nil && RejectReason(err) == ReasonNone {
			t.Fatalf("external join error without a reject reason: %v", err)
		}
	})
}

// TestJoinFuzzSeedsJoin checks that the fuzz harnesses are meaningful: the
// genuine seeds join (so the fuzzer starts from the accepting path), and the
// joiner agrees with the group.
func TestJoinFuzzSeedsJoin(t *testing.T) {
	joinFuzzSetup(t)
	g, err, ok := joinFromBytes(t, joinFuzz.secrets, joinFuzz.groupInfo)
	if !ok || err != nil {
		t.Fatalf("genuine welcome rebuilt by the harness: ok=%v err=%v", ok, err)
	}
	if g.Epoch() != joinFuzz.tr.alice.Epoch()+1 || !bytes.Equal(g.EpochAuthenticator(), joinFuzz.authenticator) {
		t.Fatalf("joined epoch %d, alice is in %d before her commit; or another state", g.Epoch(), joinFuzz.tr.alice.Epoch())
	}
	gi, err := UnmarshalGroupInfo(joinFuzz.published)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := JoinExternal(&seedReader{seed: []byte("external fuzz")}, gi, joinFuzz.sig,
		NewBasicCredential([]byte("dave")), &ExternalJoinOptions{}); err != nil {
		t.Fatalf("external join from alice's GroupInfo: %v", err)
	}
}
