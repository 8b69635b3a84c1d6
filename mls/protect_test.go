package mls

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// protectTestEpoch is one epoch seen by a sender and a receiver, each with
// its own secret tree, and the signature keys of the members.
type protectTestEpoch struct {
	cs         CipherSuite
	gc         *GroupContext
	send, recv *MessageProtector
	priv       map[LeafIndex]SignaturePrivateKey
	pub        map[LeafIndex][]byte
	rand       *rand.ChaCha8
	// newProtector returns another protector of the epoch, with a fresh
	// secret tree.
	newProtector func() *MessageProtector
}

func newProtectTestEpoch(tb testing.TB, cs CipherSuite, nLeaves uint32, padding int, signers ...LeafIndex) *protectTestEpoch {
	tb.Helper()
	rnd := cryptoTestRand(byte(cs) + 40)
	secret := func() []byte {
		b := make([]byte, cs.Nh())
		rnd.Read(b)
		return b
	}
	gc := &GroupContext{
		Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: []byte("protect-test-group"),
		Epoch: 7, TreeHash: secret(), ConfirmedTranscriptHash: secret(),
	}
	encryption, senderData, membership := secret(), secret(), secret()
	newP := func() *MessageProtector {
		tree, err := NewSecretTree(cs, encryption, nLeaves)
		if err != nil {
			tb.Fatal(err)
		}
		p, err := NewMessageProtector(ProtectorConfig{
			GroupContext: gc, SenderDataSecret: senderData, MembershipKey: membership,
			Tree: tree, PaddingBlock: padding,
		})
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
	e := &protectTestEpoch{cs: cs, gc: gc, send: newP(), recv: newP(),
		priv: map[LeafIndex]SignaturePrivateKey{}, pub: map[LeafIndex][]byte{}, rand: rnd, newProtector: newP}
	for _, l := range signers {
		priv, pub, err := cs.GenerateSignatureKeyPair(rnd)
		if err != nil {
			tb.Fatal(err)
		}
		e.priv[l], e.pub[l] = priv, pub
	}
	return e
}

func (e *protectTestEpoch) signerKey(s Sender) ([]byte, error) {
	if s.SenderType == SenderTypeMember {
		if pub, ok := e.pub[s.LeafIndex]; ok {
			return pub, nil
		}
	}
	return nil, fmt.Errorf("no member at %+v", s)
}

func (e *protectTestEpoch) sendApp(tb testing.TB, leaf LeafIndex, data []byte) *PrivateMessage {
	tb.Helper()
	m, err := e.send.ProtectApplication(e.rand, leaf, e.priv[leaf], []byte("aad"), data)
	if err != nil {
		tb.Fatal(err)
	}
	// Go through the wire like a real receiver.
	enc, err := (&MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: m}).Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := UnmarshalMLSMessage(enc)
	if err != nil {
		tb.Fatal(err)
	}
	return dec.PrivateMessage
}

func TestProtectApplicationRoundTrip(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			t.Parallel()
			e := newProtectTestEpoch(t, cs, 5, 0, 0, 4)
			for i, leaf := range []LeafIndex{0, 4, 0, 4, 4} {
				data := []byte(fmt.Sprintf("message %d from %d", i, leaf))
				m := e.sendApp(t, leaf, data)
				ac, err := e.recv.UnprotectPrivate(m, e.signerKey)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				c := ac.Content
				if !bytes.Equal(c.ApplicationData, data) || string(c.AuthenticatedData) != "aad" ||
					c.Sender != MemberSender(leaf) || c.Epoch != 7 || c.ContentType != ContentTypeApplication {
					t.Fatalf("message %d: got %+v", i, c)
				}
			}
		})
	}
}

func TestUnprotectRejectsReplay(t *testing.T) {
	t.Parallel()
	e := newProtectTestEpoch(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 2, 0, 1)
	m := e.sendApp(t, 1, []byte("once"))
	if _, err := e.recv.UnprotectPrivate(m, e.signerKey); err != nil {
		t.Fatal(err)
	}
	_, err := e.recv.UnprotectPrivate(m, e.signerKey)
	if !errors.Is(err, ErrReplay) || RejectReason(err) != ReasonReplay {
		t.Fatalf("replay: err = %v, want ErrReplay", err)
	}
}

func TestUnprotectOutOfOrder(t *testing.T) {
	t.Parallel()
	e := newProtectTestEpoch(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 3, 0, 2)
	var msgs []*PrivateMessage
	for i := range 4 {
		msgs = append(msgs, e.sendApp(t, 2, []byte{byte(i)}))
	}
	for _, i := range []int{3, 0, 2, 1} {
		ac, err := e.recv.UnprotectPrivate(msgs[i], e.signerKey)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(ac.Content.ApplicationData, []byte{byte(i)}) {
			t.Fatalf("message %d decrypted to %x", i, ac.Content.ApplicationData)
		}
	}
}

func TestProtectPadding(t *testing.T) {
	t.Parallel()
	e := newProtectTestEpoch(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 2, 256, 0)
	short := e.sendApp(t, 0, []byte("a"))
	long := e.sendApp(t, 0, bytes.Repeat([]byte("b"), 100))
	if len(short.Ciphertext) != len(long.Ciphertext) {
		t.Fatalf("padded ciphertexts differ in length: %d and %d", len(short.Ciphertext), len(long.Ciphertext))
	}
	if got := len(short.Ciphertext) - 16; got != 256 {
		t.Fatalf("padded plaintext is %d bytes, want 256", got)
	}
	for _, m := range []*PrivateMessage{short, long} {
		if _, err := e.recv.UnprotectPrivate(m, e.signerKey); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnprotectRejectsNonZeroPadding(t *testing.T) {
	t.Parallel()
	e := newProtectTestEpoch(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 2, 0, 1)
	cs := e.cs
	c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(1),
		ContentType: ContentTypeApplication, ApplicationData: []byte("hi")}
	ac, err := e.send.Sign(WireFormatPrivateMessage, &c, e.priv[1])
	if err != nil {
		t.Fatal(err)
	}
	// Encrypt by hand with padding 00 00 01.
	pt, err := marshalPrivateMessageContent(ac, 0)
	if err != nil {
		t.Fatal(err)
	}
	pt = append(pt, 0, 0, 1)
	gen, key, nonce, err := e.send.tree.Next(1, RatchetApplication)
	if err != nil {
		t.Fatal(err)
	}
	m := &PrivateMessage{GroupID: c.GroupID, Epoch: c.Epoch, ContentType: c.ContentType}
	aad, _ := m.contentAAD()
	guard := [4]byte{1, 2, 3, 4}
	if m.Ciphertext, err = cs.Seal(key, applyReuseGuard(nonce, guard), aad, pt); err != nil {
		t.Fatal(err)
	}
	if err := m.sealSenderData(cs, e.send.senderDataSecret, &SenderData{LeafIndex: 1, Generation: gen, ReuseGuard: guard}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.recv.UnprotectPrivate(m, e.signerKey); !errors.Is(err, ErrBadPadding) {
		t.Fatalf("err = %v, want ErrBadPadding", err)
	}
}

func TestUnprotectRejectsTampering(t *testing.T) {
	t.Parallel()
	e := newProtectTestEpoch(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 2, 0, 0, 1)
	tests := []struct {
		name   string
		mutate func(m *PrivateMessage)
		want   error
	}{
		{"ciphertext", func(m *PrivateMessage) { m.Ciphertext[len(m.Ciphertext)-1] ^= 1 }, ErrDecrypt},
		{"sender data", func(m *PrivateMessage) { m.EncryptedSenderData[0] ^= 1 }, ErrDecrypt},
		{"authenticated data", func(m *PrivateMessage) { m.AuthenticatedData = []byte("AAD") }, ErrDecrypt},
		{"epoch", func(m *PrivateMessage) { m.Epoch++ }, ErrWrongEpoch},
		{"group", func(m *PrivateMessage) { m.GroupID = []byte("other") }, ErrWrongGroup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := e.sendApp(t, 0, []byte("genuine"))
			forged := *m
			forged.Ciphertext = bytes.Clone(m.Ciphertext)
			forged.EncryptedSenderData = bytes.Clone(m.EncryptedSenderData)
			tt.mutate(&forged)
			if _, err := e.recv.UnprotectPrivate(&forged, e.signerKey); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			// A forgery must not burn the genuine message's key.
			if _, err := e.recv.UnprotectPrivate(m, e.signerKey); err != nil {
				t.Fatalf("genuine message after forgery: %v", err)
			}
		})
	}
	t.Run("signature by another member", func(t *testing.T) {
		// Leaf 1 signs content claiming to be from leaf 0.
		c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(0),
			ContentType: ContentTypeApplication, ApplicationData: []byte("x")}
		ac, err := e.send.Sign(WireFormatPrivateMessage, &c, e.priv[1])
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.send.ProtectPrivate(e.rand, ac)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.recv.UnprotectPrivate(m, e.signerKey); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})
}

func TestProtectHandshakePrivateAndPublic(t *testing.T) {
	t.Parallel()
	e := newProtectTestEpoch(t, MLS128DHKEMP256AES128GCMSHA256P256, 4, 32, 3)
	commit := &Commit{Proposals: []ProposalOrRef{{Proposal: &RemoveProposal{Removed: 1}}, {Reference: []byte("ref")}}}
	for _, wf := range []WireFormat{WireFormatPrivateMessage, WireFormatPublicMessage} {
		for _, ct := range []ContentType{ContentTypeProposal, ContentTypeCommit} {
			t.Run(fmt.Sprintf("wf=%d/ct=%d", wf, ct), func(t *testing.T) {
				c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(3), ContentType: ct}
				if ct == ContentTypeProposal {
					c.Proposal = &SelfRemoveProposal{}
				} else {
					c.Commit = commit
				}
				ac, err := e.send.Sign(wf, &c, e.priv[3])
				if err != nil {
					t.Fatal(err)
				}
				if ct == ContentTypeCommit {
					ac.Auth.ConfirmationTag = bytes.Repeat([]byte{7}, 32)
				}
				var got *AuthenticatedContent
				if wf == WireFormatPrivateMessage {
					m, err := e.send.ProtectPrivate(e.rand, ac)
					if err != nil {
						t.Fatal(err)
					}
					got, err = e.recv.UnprotectPrivate(m, e.signerKey)
					if err != nil {
						t.Fatal(err)
					}
				} else {
					m, err := e.send.ProtectPublic(ac)
					if err != nil {
						t.Fatal(err)
					}
					got, err = e.recv.UnprotectPublic(m, e.signerKey)
					if err != nil {
						t.Fatal(err)
					}
					m.MembershipTag[0] ^= 1
					if _, err := e.recv.UnprotectPublic(m, e.signerKey); !errors.Is(err, ErrBadMembershipTag) {
						t.Fatalf("tampered membership tag: err = %v", err)
					}
				}
				want, _ := ac.Marshal()
				gotEnc, _ := got.Marshal()
				if !bytes.Equal(want, gotEnc) {
					t.Fatalf("unprotected content differs:\n got %x\nwant %x", gotEnc, want)
				}
			})
		}
	}
	t.Run("commit without confirmation tag", func(t *testing.T) {
		c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(3),
			ContentType: ContentTypeCommit, Commit: commit}
		ac, err := e.send.Sign(WireFormatPublicMessage, &c, e.priv[3])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.send.ProtectPublic(ac); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("protect: err = %v, want ErrInvalidMessage", err)
		}
		m, err := NewPublicMessage(e.cs, ac, e.send.membershipKey, e.send.groupContext)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.recv.UnprotectPublic(m, e.signerKey); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("unprotect: err = %v, want ErrInvalidMessage", err)
		}
	})
}

// TestNewEpochProtector runs the key schedule and protects a message with
// the resulting protector, as the group layer will.
func TestNewEpochProtector(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519
	gc := &GroupContext{Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: []byte("g"), Epoch: 1,
		TreeHash: make([]byte, 32), ConfirmedTranscriptHash: make([]byte, 32)}
	gcBytes, err := gc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	es, err := cs.AdvanceEpoch(make([]byte, 32), nil, nil, gcBytes)
	if err != nil {
		t.Fatal(err)
	}
	send, err := NewEpochProtector(gc, es, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	recv, err := NewEpochProtector(gc, es, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	rnd := cryptoTestRand(77)
	priv, pub, err := cs.GenerateSignatureKeyPair(rnd)
	if err != nil {
		t.Fatal(err)
	}
	m, err := send.ProtectApplication(rnd, 2, priv, nil, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	ac, err := recv.UnprotectPrivate(m, func(Sender) ([]byte, error) { return pub, nil })
	if err != nil || string(ac.Content.ApplicationData) != "hello" {
		t.Fatalf("got %v, %v", ac, err)
	}
	// A sender leaf outside the tree is refused by the secret tree.
	if _, err := send.ProtectApplication(rnd, 100, priv, nil, []byte("x")); RejectReason(err) != ReasonInvalid {
		t.Fatalf("leaf out of range: err = %v (%v)", err, RejectReason(err))
	}
	es.Suite = MLS128DHKEMX25519AES128GCMSHA256Ed25519
	if _, err := NewEpochProtector(gc, es, 3, 0); err == nil {
		t.Fatal("suite mismatch accepted")
	}
}

func TestPublicMessageExternalSender(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	e := newProtectTestEpoch(t, cs, 2, 0)
	server, serverPub, err := cs.GenerateSignatureKeyPair(e.rand)
	if err != nil {
		t.Fatal(err)
	}
	c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch,
		Sender:      Sender{SenderType: SenderTypeExternal, SenderIndex: 0},
		ContentType: ContentTypeProposal, Proposal: &RemoveProposal{Removed: 1}}
	ac, err := e.send.Sign(WireFormatPublicMessage, &c, server)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.send.ProtectPublic(ac)
	if err != nil {
		t.Fatal(err)
	}
	if m.MembershipTag != nil {
		t.Fatal("external sender message has a membership tag")
	}
	external := func(s Sender) ([]byte, error) {
		if s.SenderType == SenderTypeExternal && s.SenderIndex == 0 {
			return serverPub, nil
		}
		return nil, errors.New("unknown sender")
	}
	if _, err := e.recv.UnprotectPublic(m, external); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send.ProtectPrivate(e.rand, &AuthenticatedContent{WireFormat: WireFormatPrivateMessage, Content: c}); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("PrivateMessage from an external sender: err = %v", err)
	}
}

// benchmarkApplication measures protect or unprotect of a 1 KiB application
// message in groups of 2 and 50,000 members. The secret tree is lazy, so
// both sizes must cost the same.
func benchmarkApplication(b *testing.B, unprotect bool) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	data := bytes.Repeat([]byte{0x42}, 1024)
	b.Run("size=1KiB", func(b *testing.B) {
		for _, members := range []uint32{2, 50000} {
			b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
				sender := LeafIndex(members - 1)
				e := newProtectTestEpoch(b, cs, members, 0, sender)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				if !unprotect {
					b.ResetTimer()
					cpu0 := processCPUTime()
					for range b.N {
						if _, err := e.send.ProtectApplication(e.rand, sender, e.priv[sender], nil, data); err != nil {
							b.Fatal(err)
						}
					}
					reportCPUMicros(b, cpu0)
					return
				}
				msgs := make([]*PrivateMessage, b.N)
				for i := range msgs {
					m, err := e.send.ProtectApplication(e.rand, sender, e.priv[sender], nil, data)
					if err != nil {
						b.Fatal(err)
					}
					msgs[i] = m
				}
				b.ResetTimer()
				cpu0 := processCPUTime()
				for i := range b.N {
					if _, err := e.recv.UnprotectPrivate(msgs[i], e.signerKey); err != nil {
						b.Fatal(err)
					}
				}
				reportCPUMicros(b, cpu0)
			})
		}
	})
}

func BenchmarkProtectApplication(b *testing.B)   { benchmarkApplication(b, false) }
func BenchmarkUnprotectApplication(b *testing.B) { benchmarkApplication(b, true) }

func TestPublicMessageSenderRules(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	e := newProtectTestEpoch(t, cs, 2, 0, 0)
	tests := []struct {
		name   string
		sender Sender
		ct     ContentType
		p      Proposal
	}{
		{"member application", MemberSender(0), ContentTypeApplication, nil},
		{"external commit content", Sender{SenderType: SenderTypeExternal}, ContentTypeCommit, nil},
		{"new member proposes remove", Sender{SenderType: SenderTypeNewMemberProposal}, ContentTypeProposal, &RemoveProposal{}},
		{"new member commit proposes", Sender{SenderType: SenderTypeNewMemberCommit}, ContentTypeProposal, &RemoveProposal{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: tt.sender, ContentType: tt.ct,
				Proposal: tt.p, Commit: &Commit{}, ApplicationData: []byte("x")}
			ac, err := e.send.Sign(WireFormatPublicMessage, &c, e.priv[0])
			if err != nil {
				t.Fatal(err)
			}
			ac.Auth.ConfirmationTag = []byte{1}
			if _, err := e.send.ProtectPublic(ac); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("protect: err = %v, want ErrInvalidMessage", err)
			}
			// A peer that frames it anyway is refused on receipt.
			m, err := NewPublicMessage(cs, ac, e.send.membershipKey, e.send.groupContext)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.recv.UnprotectPublic(m, e.signerKey); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("unprotect: err = %v, want ErrInvalidMessage", err)
			}
		})
	}
}

// BenchmarkApplicationParts splits the cost of a 1 KiB application message
// into its signature and its encryption (secret tree, AEAD, sender data),
// to show where ProtectApplication and UnprotectApplication spend time.
func BenchmarkApplicationParts(b *testing.B) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	e := newProtectTestEpoch(b, cs, 2, 0, 1)
	c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(1),
		ContentType: ContentTypeApplication, ApplicationData: bytes.Repeat([]byte{0x42}, 1024)}
	ac, err := e.send.Sign(WireFormatPrivateMessage, &c, e.priv[1])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sign", func(b *testing.B) {
		cpu0 := processCPUTime()
		defer func() { reportCPUMicros(b, cpu0) }()
		for b.Loop() {
			if _, err := e.send.Sign(WireFormatPrivateMessage, &c, e.priv[1]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		cpu0 := processCPUTime()
		defer func() { reportCPUMicros(b, cpu0) }()
		for b.Loop() {
			if err := ac.VerifySignature(cs, e.pub[1], e.send.groupContext); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encrypt", func(b *testing.B) {
		cpu0 := processCPUTime()
		defer func() { reportCPUMicros(b, cpu0) }()
		for b.Loop() {
			if _, err := e.send.ProtectPrivate(e.rand, ac); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decrypt", func(b *testing.B) {
		f := newProtectTestEpoch(b, cs, 2, 0, 1)
		msgs := make([]*PrivateMessage, b.N)
		for i := range msgs {
			if msgs[i], err = f.send.ProtectPrivate(f.rand, ac); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		cpu0 := processCPUTime()
		defer func() { reportCPUMicros(b, cpu0) }()
		for i := range b.N {
			sd, err := msgs[i].OpenSenderData(cs, f.recv.senderDataSecret)
			if err != nil {
				b.Fatal(err)
			}
			err = f.recv.tree.WithKey(sd.LeafIndex, RatchetApplication, sd.Generation, func(key, nonce []byte) error {
				_, err := msgs[i].DecryptContent(cs, sd, key, nonce)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestProposalRef checks ProposalRef = RefHash("MLS 1.0 Proposal
// Reference", AuthenticatedContent) against a hash computed here, for a
// proposal received as a PublicMessage, and that sender and receiver agree.
func TestProposalRef(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	e := newProtectTestEpoch(t, cs, 2, 0, 1)
	c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(1),
		ContentType: ContentTypeProposal, Proposal: &AppDataUpdateProposal{ComponentID: 7, Op: AppDataUpdateOperationUpdate, Update: []byte("u")}}
	ac, err := e.send.Sign(WireFormatPublicMessage, &c, e.priv[1])
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.send.ProtectPublic(ac)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := UnmarshalPublicMessage(enc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.recv.UnprotectPublic(dec, e.signerKey)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := got.ProposalRef(cs)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := ac.ProposalRef(cs)
	if err != nil {
		t.Fatal(err)
	}
	// AuthenticatedContent = wire_format || FramedContent || auth; the
	// PublicMessage encoding is FramedContent || auth || membership_tag<V>.
	content := enc[:len(enc)-len(m.MembershipTag)-1]
	input := append([]byte{0, byte(WireFormatPublicMessage)}, content...)
	want, err := cs.RefHash("MLS 1.0 Proposal Reference", input)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ref, want) || !bytes.Equal(sent, want) {
		t.Fatalf("ProposalRef = %x (sender %x), want %x", ref, sent, want)
	}
	if _, err := (&AuthenticatedContent{Content: FramedContent{ContentType: ContentTypeCommit}}).ProposalRef(cs); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("ProposalRef of a commit: err = %v", err)
	}
}

func TestUnprotectUnknownSigner(t *testing.T) {
	t.Parallel()
	e := newProtectTestEpoch(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 4, 0, 2)
	m := e.sendApp(t, 2, []byte("x"))
	delete(e.pub, 2) // leaf 2 is blank in the receiver's tree
	_, err := e.recv.UnprotectPrivate(m, e.signerKey)
	if !errors.Is(err, ErrInvalidMessage) || RejectReason(err) != ReasonInvalid {
		t.Fatalf("err = %v (%v), want ErrInvalidMessage", err, RejectReason(err))
	}
}

// TestForgedPrivateMessageKeepsKey checks that a member who knows the
// epoch's secret tree cannot burn another member's message key: carol
// (leaf 2) encrypts content claiming to come from alice (leaf 0) under
// alice's next key, with carol's own signature. The receiver must reject it
// with ErrBadSignature without consuming the key, so alice's genuine message
// of that generation still decrypts, and a rejected message never turns a
// later genuine one into a replay.
func TestForgedPrivateMessageKeepsKey(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			t.Parallel()
			e := newProtectTestEpoch(t, cs, 3, 0, 0, 2)
			forger := e.newProtector() // carol's own view of the secret tree
			forge := func(data string) *PrivateMessage {
				t.Helper()
				c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(0),
					AuthenticatedData: []byte("aad"), ContentType: ContentTypeApplication, ApplicationData: []byte(data)}
				ac, err := forger.Sign(WireFormatPrivateMessage, &c, e.priv[2])
				if err != nil {
					t.Fatal(err)
				}
				m, err := forger.ProtectPrivate(e.rand, ac)
				if err != nil {
					t.Fatal(err)
				}
				return roundTripPrivate(t, m)
			}
			wantForgeryRejected := func(m *PrivateMessage) {
				t.Helper()
				_, err := e.recv.UnprotectPrivate(m, e.signerKey)
				if !errors.Is(err, ErrBadSignature) || RejectReason(err) != ReasonBadSignature {
					t.Fatalf("forgery: err = %v (%v), want ErrBadSignature", err, RejectReason(err))
				}
			}
			forged0 := forge("forged 0") // generation 0 of alice's ratchet
			sd, err := forged0.OpenSenderData(cs, e.recv.senderDataSecret)
			if err != nil || sd.LeafIndex != 0 || sd.Generation != 0 {
				t.Fatalf("forged sender data %+v, %v", sd, err)
			}
			wantForgeryRejected(forged0)
			// Rejected twice: a rejection does not mark the generation used
			// (the second attempt is not reported as a replay).
			wantForgeryRejected(forged0)
			// Jump ahead: generations 1..4 forged, only 5 delivered.
			for range 4 {
				forge("skipped")
			}
			forged5 := forge("forged 5")
			wantForgeryRejected(forged5)

			// Alice's genuine messages of generations 0..5 all decrypt, in
			// order, although forgeries named generations 0 and 5 first.
			for g := range 6 {
				data := fmt.Sprintf("genuine %d", g)
				m := e.sendApp(t, 0, []byte(data))
				ac, err := e.recv.UnprotectPrivate(m, e.signerKey)
				if err != nil {
					t.Fatalf("genuine generation %d after forgeries: %v", g, err)
				}
				if string(ac.Content.ApplicationData) != data {
					t.Fatalf("generation %d: got %q", g, ac.Content.ApplicationData)
				}
				if g == 0 {
					// Now it is consumed: a replay of it is refused.
					if _, err := e.recv.UnprotectPrivate(m, e.signerKey); !errors.Is(err, ErrReplay) {
						t.Fatalf("replay of generation 0: err = %v, want ErrReplay", err)
					}
				}
			}
			// A forgery of a consumed generation is a replay, not a
			// signature failure: the key is gone.
			if _, err := e.recv.UnprotectPrivate(forged5, e.signerKey); !errors.Is(err, ErrReplay) {
				t.Fatalf("forgery of a consumed generation: err = %v, want ErrReplay", err)
			}
			r := &e.recv.tree.leaves[0].application
			if r.head != 6 || len(r.skipped) != 0 {
				t.Fatalf("ratchet head %d with %d skipped keys, want 6 and 0", r.head, len(r.skipped))
			}
		})
	}
}

// roundTripPrivate sends m through the wire encoding.
func roundTripPrivate(tb testing.TB, m *PrivateMessage) *PrivateMessage {
	tb.Helper()
	enc, err := (&MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: m}).Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := UnmarshalMLSMessage(enc)
	if err != nil {
		tb.Fatal(err)
	}
	return dec.PrivateMessage
}

// reportCPUMicros reports the process CPU time per operation since cpu0 in
// microseconds (cpu-us/op): on the shared, loaded benchmark machine it
// does not include time spent waiting for a core, unlike ns/op.
func reportCPUMicros(b *testing.B, cpu0 int64) {
	if cpu := processCPUTime() - cpu0; cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-us/op")
	}
}
