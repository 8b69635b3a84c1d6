package mls

import (
	"bytes"
	"errors"
	"testing"
)

// testKeyPackage builds and signs a KeyPackage, returning it with its init
// private key and signature key.
func testKeyPackage(t *testing.T, cs CipherSuite, seed byte, identity string) (*KeyPackage, []byte, SignaturePrivateKey) {
	t.Helper()
	rnd := cryptoTestRand(seed)
	sigPriv, sigPub, err := cs.GenerateSignatureKeyPair(rnd)
	if err != nil {
		t.Fatal(err)
	}
	initPriv, initPub, err := cs.GenerateKEMKeyPair(rnd)
	if err != nil {
		t.Fatal(err)
	}
	_, encPub, err := cs.GenerateKEMKeyPair(rnd)
	if err != nil {
		t.Fatal(err)
	}
	kp := &KeyPackage{
		Version: ProtocolVersionMLS10, CipherSuite: cs, InitKey: initPub,
		LeafNode: LeafNode{
			EncryptionKey: encPub, SignatureKey: sigPub, Credential: NewBasicCredential([]byte(identity)),
			Capabilities: Capabilities{
				Versions: []ProtocolVersion{ProtocolVersionMLS10}, CipherSuites: []CipherSuite{cs},
				Proposals:   []ProposalType{ProposalTypeAppDataUpdate, ProposalTypeSelfRemove},
				Extensions:  []ExtensionType{ExtensionTypeAppDataDictionary},
				Credentials: []CredentialType{CredentialTypeBasic},
			},
			Source:   LeafNodeSourceKeyPackage,
			Lifetime: Lifetime{NotBefore: 0, NotAfter: 1 << 40},
		},
	}
	if err := kp.LeafNode.Sign(cs, sigPriv, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := kp.Sign(sigPriv); err != nil {
		t.Fatal(err)
	}
	return kp, initPriv, sigPriv
}

func TestKeyPackageSignVerifyAndRef(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			t.Parallel()
			kp, _, _ := testKeyPackage(t, cs, 1, "alice@example.org/phone")
			if err := kp.Verify(); err != nil {
				t.Fatal(err)
			}
			enc, err := (&MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatKeyPackage, KeyPackage: kp}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			m, err := UnmarshalMLSMessage(enc)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.KeyPackage.Verify(); err != nil {
				t.Fatalf("decoded key package: %v", err)
			}
			r1, _ := kp.Ref()
			r2, _ := m.KeyPackage.Ref()
			if len(r1) != cs.Nh() || !bytes.Equal(r1, r2) {
				t.Fatalf("refs %x and %x", r1, r2)
			}
			// A leaf signed for another source is refused in a KeyPackage.
			bad := *kp
			bad.LeafNode.Source = LeafNodeSourceUpdate
			if err := bad.Verify(); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("update-source leaf in key package: err = %v", err)
			}
		})
	}
}

// TestLeafNodeSignatureBindsGroupAndIndex checks that an update or commit
// leaf's signature covers the group ID and leaf index (RFC 9420, 7.2).
func TestLeafNodeSignatureBindsGroupAndIndex(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	kp, _, priv := testKeyPackage(t, cs, 2, "bob")
	leaf := kp.LeafNode
	leaf.raw = nil
	leaf.Source = LeafNodeSourceCommit
	leaf.ParentHash = bytes.Repeat([]byte{1}, 32)
	if err := leaf.Sign(cs, priv, []byte("group"), 3); err != nil {
		t.Fatal(err)
	}
	enc, err := leaf.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := UnmarshalLeafNode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Verify(cs, []byte("group"), 3); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		group string
		index LeafIndex
	}{{"other", 3}, {"group", 4}} {
		if err := dec.Verify(cs, []byte(tt.group), tt.index); !errors.Is(err, ErrBadSignature) {
			t.Errorf("verify with group %q index %d: err = %v, want ErrBadSignature", tt.group, tt.index, err)
		}
	}
}

func TestWelcomeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			t.Parallel()
			rnd := cryptoTestRand(9)
			joiner, joinerInit, _ := testKeyPackage(t, cs, 3, "joiner")
			other, _, _ := testKeyPackage(t, cs, 4, "other")
			_, _, committer := testKeyPackage(t, cs, 5, "committer")
			committerPub := committer.PublicKey()

			joinerSecret := bytes.Repeat([]byte{0x11}, cs.Nh())
			gc := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: []byte("g"), Epoch: 1,
				TreeHash: bytes.Repeat([]byte{2}, cs.Nh()), ConfirmedTranscriptHash: bytes.Repeat([]byte{3}, cs.Nh())}
			gcBytes, err := gc.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			secrets, err := cs.EpochSecretsFromJoiner(joinerSecret, nil, gcBytes)
			if err != nil {
				t.Fatal(err)
			}
			tag, err := ConfirmationTag(cs, secrets.ConfirmationKey, gc.ConfirmedTranscriptHash)
			if err != nil {
				t.Fatal(err)
			}
			gi := &GroupInfo{GroupContext: gc, ConfirmationTag: tag, Signer: 0,
				Extensions: Extensions{{ExtensionType: ExtensionTypeExternalPub, ExtensionData: []byte{1, 0xaa}}}}
			if err := gi.Sign(committer); err != nil {
				t.Fatal(err)
			}
			w, err := NewWelcome(cs, secrets.WelcomeSecret, gi)
			if err != nil {
				t.Fatal(err)
			}
			gs := &GroupSecrets{JoinerSecret: joinerSecret, PathSecret: &PathSecret{PathSecret: []byte("path")}}
			for _, kp := range []*KeyPackage{other, joiner} {
				if err := w.AddMember(kp, gs, rnd); err != nil {
					t.Fatal(err)
				}
			}
			enc, err := w.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			w2, err := UnmarshalWelcome(enc)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := joiner.Ref()
			got, err := w2.DecryptGroupSecrets(ref, joinerInit)
			if err != nil {
				t.Fatal(err)
			}
			wantGS, _ := gs.Marshal()
			gotGS, _ := got.Marshal()
			if !bytes.Equal(wantGS, gotGS) {
				t.Fatalf("group secrets %x, want %x", gotGS, wantGS)
			}
			welcomeSecret, err := cs.WelcomeSecret(got.JoinerSecret, nil)
			if err != nil {
				t.Fatal(err)
			}
			gi2, err := w2.DecryptGroupInfo(welcomeSecret)
			if err != nil {
				t.Fatal(err)
			}
			if err := gi2.Verify(committerPub); err != nil {
				t.Fatal(err)
			}
			if err := VerifyConfirmationTag(cs, secrets.ConfirmationKey, gi2.GroupContext.ConfirmedTranscriptHash, gi2.ConfirmationTag); err != nil {
				t.Fatal(err)
			}
			// Failures: not for us, wrong init key, wrong welcome secret,
			// wrong signer.
			if _, err := w2.DecryptGroupSecrets([]byte("nobody"), joinerInit); !errors.Is(err, ErrNotForUs) {
				t.Errorf("unknown ref: err = %v", err)
			}
			otherRef, _ := other.Ref()
			if _, err := w2.DecryptGroupSecrets(otherRef, joinerInit); !errors.Is(err, ErrDecrypt) {
				t.Errorf("wrong init key: err = %v", err)
			}
			if _, err := w2.DecryptGroupInfo(bytes.Repeat([]byte{9}, cs.Nh())); !errors.Is(err, ErrDecrypt) {
				t.Errorf("wrong welcome secret: err = %v", err)
			}
			if err := gi2.Verify(joiner.LeafNode.SignatureKey); !errors.Is(err, ErrBadSignature) {
				t.Errorf("wrong signer: err = %v", err)
			}
		})
	}
}

// TestTranscriptHashChain checks the transcript hash chain over a signed
// commit: the confirmation tag verifies, and a changed signature changes
// the confirmed hash.
func TestTranscriptHashChain(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	e := newProtectTestEpoch(t, cs, 2, 0, 0)
	c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(0),
		ContentType: ContentTypeCommit, Commit: &Commit{}}
	ac, err := e.send.Sign(WireFormatPublicMessage, &c, e.priv[0])
	if err != nil {
		t.Fatal(err)
	}
	interim := bytes.Repeat([]byte{5}, cs.Nh())
	confirmed, err := ConfirmedTranscriptHash(cs, interim, ac)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{6}, cs.Nh())
	tag, err := ConfirmationTag(cs, key, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConfirmationTag(cs, key, confirmed, tag); err != nil {
		t.Fatal(err)
	}
	tag[0] ^= 1
	if err := VerifyConfirmationTag(cs, key, confirmed, tag); !errors.Is(err, ErrBadConfirmationTag) {
		t.Fatalf("tampered tag: err = %v", err)
	}
	ac.Auth.Signature[0] ^= 1
	other, err := ConfirmedTranscriptHash(cs, interim, ac)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, confirmed) {
		t.Fatal("confirmed transcript hash ignores the signature")
	}
	if _, err := ConfirmedTranscriptHash(cs, interim, &AuthenticatedContent{Content: FramedContent{ContentType: ContentTypeProposal}}); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("non-commit: err = %v", err)
	}
}
