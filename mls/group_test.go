package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// trio is a three-member group (alice at leaf 0, bob at 1, carol at 2) of
// suite 1, built through the public API.
type trio struct {
	rand              *seedReader
	alice, bob, carol *Group
	carolSign         SignaturePrivateKey
	now               time.Time
}

func newTrio(t testing.TB, cfg GroupConfig) *trio {
	t.Helper()
	return newTrioSuite(t, CipherSuite(1), cfg)
}

// newTrioSuite is newTrio for cipher suite cs.
func newTrioSuite(t testing.TB, cs CipherSuite, cfg GroupConfig) *trio {
	t.Helper()
	tr := &trio{rand: &seedReader{seed: fmt.Appendf(nil, "trio/%d", cs)}, now: time.Unix(1_800_000_000, 0)}
	sig := func() SignaturePrivateKey {
		k, _, err := cs.GenerateSignatureKeyPair(tr.rand)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cfg.RatchetTreeInWelcome = true
	var err error
	tr.alice, err = CreateGroup(tr.rand, cs, []byte("trio"), sig(), NewBasicCredential([]byte("alice")), &CreateOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	kbB, err := NewKeyPackage(tr.rand, cs, sig(), NewBasicCredential([]byte("bob")), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.carolSign = sig()
	kbC, err := NewKeyPackage(tr.rand, cs, tr.carolSign, NewBasicCredential([]byte("carol")), nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := tr.alice.Commit(tr.rand, &CommitOptions{Proposals: []Proposal{
		&AddProposal{KeyPackage: *kbB.KeyPackage}, &AddProposal{KeyPackage: *kbC.KeyPackage}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.alice.MergeCommit(pc, []byte("c1"), tr.now); err != nil {
		t.Fatal(err)
	}
	if tr.bob, err = JoinGroup(pc.Welcome, kbB, &JoinOptions{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if tr.carol, err = JoinGroup(pc.Welcome, kbC, &JoinOptions{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	return tr
}

// fingerprint captures the observable state of a group.
func fingerprint(t testing.TB, g *Group) string {
	t.Helper()
	th, err := g.Tree().TreeHash()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d|%x|%x|%x|%x|%x|%d|%v|%v|%d", g.Epoch(), g.EpochAuthenticator(), th, g.ctxBytes, g.interim, g.confTag,
		g.proposals.len(), g.Active(), g.pending != nil, len(g.retained))
}

// forge signs commit c as g's member and frames it with a valid
// membership tag and a zero confirmation tag.
func forge(t testing.TB, g *Group, c *Commit, mutate func(*AuthenticatedContent)) *MLSMessage {
	t.Helper()
	content := FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: MemberSender(g.me),
		AuthenticatedData: []byte{}, ContentType: ContentTypeCommit, Commit: c}
	ac, err := SignFramedContent(g.cs, WireFormatPublicMessage, &content, g.ctxBytes, g.sig)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = make([]byte, g.cs.Nh())
	if mutate != nil {
		mutate(ac)
	}
	pm, err := NewPublicMessage(g.cs, ac, g.secrets.MembershipKey, g.ctxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm})
}

func roundTrip(t testing.TB, m *MLSMessage) *MLSMessage {
	t.Helper()
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := UnmarshalMLSMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestInvalidCommitsLeaveStateUnchanged(t *testing.T) {
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			t.Parallel()
			testInvalidCommits(t, cs)
		})
	}
}

func testInvalidCommits(t *testing.T, cs CipherSuite) {
	tr := newTrioSuite(t, cs, GroupConfig{})
	genuine, err := tr.alice.Commit(tr.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	gm := genuine.Message.PublicMessage
	otherKB, err := NewKeyPackage(tr.rand, tr.alice.cs, tr.bob.sig, NewBasicCredential([]byte("bob again")), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, freshPub, err := tr.alice.cs.GenerateKEMKeyPair(tr.rand)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		msg    func() *MLSMessage
		want   error
		reason Reason
	}{
		{"bad signature", func() *MLSMessage {
			return forge(t, tr.alice, gm.Content.Commit, func(ac *AuthenticatedContent) {
				ac.Auth.Signature = bytes.Clone(ac.Auth.Signature)
				ac.Auth.Signature[3] ^= 1
			})
		}, ErrBadSignature, ReasonBadSignature},
		{"bad membership tag", func() *MLSMessage {
			m := roundTrip(t, genuine.Message)
			m.PublicMessage.MembershipTag[0] ^= 1
			return m
		}, ErrBadMembershipTag, ReasonBadSignature},
		{"wrong epoch", func() *MLSMessage {
			m := roundTrip(t, genuine.Message)
			m.PublicMessage.Content.Epoch++
			return m
		}, ErrWrongEpoch, ReasonWrongEpoch},
		{"wrong group", func() *MLSMessage {
			m := roundTrip(t, genuine.Message)
			m.PublicMessage.Content.GroupID = []byte("other")
			return m
		}, ErrWrongGroup, ReasonWrongEpoch},
		{"bad confirmation tag", func() *MLSMessage {
			return forge(t, tr.alice, gm.Content.Commit, func(ac *AuthenticatedContent) {
				ac.Auth.ConfirmationTag = bytes.Clone(gm.Auth.ConfirmationTag)
				ac.Auth.ConfirmationTag[0] ^= 1
			})
		}, ErrBadConfirmationTag, ReasonBadSignature},
		{"bad parent hash", func() *MLSMessage {
			c, err := UnmarshalCommit(mustMarshal(t, gm.Content.Commit))
			if err != nil {
				t.Fatal(err)
			}
			c.Path.Nodes[len(c.Path.Nodes)-1].EncryptionKey = freshPub
			return forge(t, tr.alice, c, nil)
		}, ErrBadParentHash, ReasonInvalid},
		{"duplicate leaf", func() *MLSMessage {
			return forge(t, tr.alice, &Commit{Proposals: []ProposalOrRef{{Proposal: &AddProposal{KeyPackage: *otherKB.KeyPackage}}}}, nil)
		}, ErrDuplicateKey, ReasonInvalid},
		{"remove of the committer", func() *MLSMessage {
			return forge(t, tr.alice, &Commit{Proposals: []ProposalOrRef{{Proposal: &RemoveProposal{Removed: 0}}}, Path: gm.Content.Commit.Path}, nil)
		}, ErrInvalidProposal, ReasonInvalid},
		{"path missing", func() *MLSMessage {
			return forge(t, tr.alice, &Commit{Proposals: []ProposalOrRef{{Proposal: &RemoveProposal{Removed: 2}}}}, nil)
		}, ErrInvalidCommit, ReasonInvalid},
		{"unknown proposal reference", func() *MLSMessage {
			return forge(t, tr.alice, &Commit{Proposals: []ProposalOrRef{{Reference: bytes.Repeat([]byte{7}, 32)}}}, nil)
		}, ErrUnknownProposal, ReasonInvalid},
		{"external init in a member commit", func() *MLSMessage {
			return forge(t, tr.alice, &Commit{Proposals: []ProposalOrRef{{Proposal: &ExternalInitProposal{KEMOutput: freshPub}}}, Path: gm.Content.Commit.Path}, nil)
		}, ErrInvalidProposal, ReasonInvalid},
	}
	before := fingerprint(t, tr.bob)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tr.bob.ProcessMessage(c.msg(), nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if r := RejectReason(err); r != c.reason {
				t.Errorf("reason %v, want %v (%v)", r, c.reason, err)
			}
			var ge *GroupError
			if !errors.As(err, &ge) {
				t.Errorf("%v is not a *GroupError", err)
			}
			if after := fingerprint(t, tr.bob); after != before {
				t.Fatalf("state changed:\n%s\n%s", before, after)
			}
		})
	}
	// The genuine commit still applies, and everyone agrees.
	for _, g := range []*Group{tr.bob, tr.carol, tr.alice} {
		if _, err := g.ProcessMessage(roundTrip(t, genuine.Message), nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(tr.bob.EpochAuthenticator(), tr.alice.EpochAuthenticator()) ||
		!bytes.Equal(tr.carol.EpochAuthenticator(), tr.alice.EpochAuthenticator()) {
		t.Fatal("members disagree after the genuine commit")
	}
}

func mustMarshal(t testing.TB, c *Commit) []byte {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRemovedMemberRejected(t *testing.T) {
	tr := newTrio(t, GroupConfig{})
	old := tr.carol.Snapshot()
	pc, err := tr.alice.Commit(tr.rand, &CommitOptions{Proposals: []Proposal{&RemoveProposal{Removed: tr.carol.LeafIndex()}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{tr.alice, tr.bob, tr.carol} {
		out, err := g.ProcessMessage(roundTrip(t, pc.Message), nil)
		if err != nil {
			t.Fatal(err)
		}
		if g == tr.carol && (!out.Commit.RemovedSelf || g.Active()) {
			t.Fatal("carol did not notice her removal")
		}
	}
	// Carol's old state sends in the old epoch: wrong epoch.
	oldCarol, err := old.Restore()
	if err != nil {
		t.Fatal(err)
	}
	m, err := oldCarol.Send(tr.rand, nil, []byte("still here?"))
	if err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, tr.bob)
	if _, err := tr.bob.ProcessMessage(roundTrip(t, m), nil); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("got %v, want ErrWrongEpoch", err)
	}
	// Even with the new epoch's keys, her leaf is blank: invalid sender,
	// for a proposal and for a commit alike.
	for _, content := range []FramedContent{
		{GroupID: tr.bob.ctx.GroupID, Epoch: tr.bob.ctx.Epoch, Sender: MemberSender(2),
			AuthenticatedData: []byte{}, ContentType: ContentTypeProposal, Proposal: &RemoveProposal{Removed: 1}},
		{GroupID: tr.bob.ctx.GroupID, Epoch: tr.bob.ctx.Epoch, Sender: MemberSender(2),
			AuthenticatedData: []byte{}, ContentType: ContentTypeCommit, Commit: &Commit{Proposals: []ProposalOrRef{{Proposal: &RemoveProposal{Removed: 1}}}}},
	} {
		ac, err := SignFramedContent(tr.bob.cs, WireFormatPublicMessage, &content, tr.bob.ctxBytes, tr.carolSign)
		if err != nil {
			t.Fatal(err)
		}
		if content.ContentType == ContentTypeCommit {
			ac.Auth.ConfirmationTag = make([]byte, tr.bob.cs.Nh())
		}
		pm, err := NewPublicMessage(tr.bob.cs, ac, tr.bob.secrets.MembershipKey, tr.bob.ctxBytes)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.bob.ProcessMessage(roundTrip(t, &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}), nil)
		if !errors.Is(err, ErrInvalidMessage) || RejectReason(err) != ReasonInvalid {
			t.Fatalf("content type %d: got %v, want an invalid-message rejection", content.ContentType, err)
		}
		if fingerprint(t, tr.bob) != before {
			t.Fatal("state changed")
		}
	}
	// A removed member can no longer act.
	if _, err := tr.carol.Send(tr.rand, nil, []byte("x")); !errors.Is(err, ErrGroupInactive) {
		t.Fatalf("got %v, want ErrGroupInactive", err)
	}
}

func TestCommitCreationValidates(t *testing.T) {
	tr := newTrio(t, GroupConfig{})
	dup, err := NewKeyPackage(tr.rand, tr.alice.cs, tr.bob.sig, NewBasicCredential([]byte("bob")), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, tr.alice)
	cases := []struct {
		name  string
		props []Proposal
		want  error
	}{
		{"duplicate leaf", []Proposal{&AddProposal{KeyPackage: *dup.KeyPackage}}, ErrDuplicateKey},
		{"remove self", []Proposal{&RemoveProposal{Removed: 0}}, ErrInvalidProposal},
		{"remove twice", []Proposal{&RemoveProposal{Removed: 1}, &RemoveProposal{Removed: 1}}, ErrInvalidProposal},
		{"remove blank", []Proposal{&RemoveProposal{Removed: 3}}, ErrBlankLeaf},
		{"reinit with others", []Proposal{&ReInitProposal{GroupID: []byte("x"), Version: 1, CipherSuite: 1, Extensions: Extensions{}}, &RemoveProposal{Removed: 1}}, ErrInvalidProposal},
		{"unsupported extension", []Proposal{&GroupContextExtensionsProposal{Extensions: Extensions{{ExtensionType: 0x7777, ExtensionData: []byte{}}}}}, ErrInvalidProposal},
		{"unknown PSK", []Proposal{&PreSharedKeyProposal{PSK: PreSharedKeyID{PSKType: PSKTypeExternal, PSKID: []byte("nope"), PSKNonce: make([]byte, 32)}}}, ErrUnknownPSK},
		{"short PSK nonce", []Proposal{&PreSharedKeyProposal{PSK: PreSharedKeyID{PSKType: PSKTypeExternal, PSKID: []byte("nope"), PSKNonce: []byte{1}}}}, ErrInvalidProposal},
		{"app data remove of absent", []Proposal{&AppDataUpdateProposal{ComponentID: 5, Op: AppDataUpdateOperationRemove}}, ErrInvalidProposal},
		{"app data update and remove", []Proposal{
			&AppDataUpdateProposal{ComponentID: 5, Op: AppDataUpdateOperationUpdate, Update: []byte("a")},
			&AppDataUpdateProposal{ComponentID: 5, Op: AppDataUpdateOperationRemove}}, ErrInvalidProposal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tr.alice.Commit(tr.rand, &CommitOptions{Proposals: c.props})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if fingerprint(t, tr.alice) != before {
				t.Fatal("state changed")
			}
		})
	}
}

func TestApplicationMessagesAndReplay(t *testing.T) {
	tr := newTrio(t, GroupConfig{PaddingBlock: 64})
	m, err := tr.bob.Send(tr.rand, []byte("ad"), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := tr.alice.ProcessMessage(roundTrip(t, m), nil)
	if err != nil || string(out.ApplicationData) != "hello" || string(out.AuthenticatedData) != "ad" || out.Sender != MemberSender(1) {
		t.Fatalf("got %+v, %v", out, err)
	}
	if _, err := tr.alice.ProcessMessage(roundTrip(t, m), nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: got %v", err)
	}
	e1, _ := tr.alice.Export("label", []byte("ctx"), 32)
	e2, _ := tr.carol.Export("label", []byte("ctx"), 32)
	e3, _ := tr.carol.Export("other", []byte("ctx"), 32)
	if !bytes.Equal(e1, e2) || bytes.Equal(e1, e3) {
		t.Fatal("exporter outputs do not match")
	}
}

func TestEncryptedHandshake(t *testing.T) {
	tr := newTrio(t, GroupConfig{EncryptHandshake: true})
	p, err := tr.carol.ProposeUpdate(tr.rand)
	if err != nil {
		t.Fatal(err)
	}
	if p.WireFormat != WireFormatPrivateMessage {
		t.Fatal("proposal not encrypted")
	}
	for _, g := range []*Group{tr.alice, tr.bob, tr.carol} {
		if _, err := g.ProcessMessage(roundTrip(t, p), nil); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := tr.bob.Commit(tr.rand, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{tr.alice, tr.bob, tr.carol} {
		if _, err := g.ProcessMessage(roundTrip(t, pc.Message), nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(tr.alice.EpochAuthenticator(), tr.carol.EpochAuthenticator()) || tr.carol.Epoch() != 2 {
		t.Fatal("members disagree after an encrypted commit of carol's update")
	}
}

func TestRetainedEpochsExpire(t *testing.T) {
	tr := newTrio(t, GroupConfig{RetainFor: time.Minute})
	late, err := tr.bob.Send(tr.rand, nil, []byte("sent before the commit"))
	if err != nil {
		t.Fatal(err)
	}
	late2, err := tr.bob.Send(tr.rand, nil, []byte("also before"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := tr.carol.Commit(tr.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.alice.ProcessMessage(roundTrip(t, pc.Message), &ProcessOptions{EpochID: []byte("c2"), Now: tr.now}); err != nil {
		t.Fatal(err)
	}
	// Epoch 0 (no ID) was retained when alice merged her first commit.
	if string(tr.alice.EpochID()) != "c2" || len(tr.alice.RetainedEpochs()) != 2 || string(tr.alice.RetainedEpochs()[1]) != "c1" {
		t.Fatalf("epoch IDs: %q, retained %q", tr.alice.EpochID(), tr.alice.RetainedEpochs())
	}
	out, err := tr.alice.ProcessMessage(roundTrip(t, late), nil)
	if err != nil || string(out.ApplicationData) != "sent before the commit" {
		t.Fatalf("late message: %v", err)
	}
	tr.alice.Expire(tr.now.Add(30 * time.Second))
	if len(tr.alice.RetainedEpochs()) != 2 {
		t.Fatal("epoch expired before its deadline")
	}
	tr.alice.Expire(tr.now.Add(2 * time.Minute))
	if len(tr.alice.RetainedEpochs()) != 0 {
		t.Fatal("epoch not expired")
	}
	if _, err := tr.alice.ProcessMessage(roundTrip(t, late2), nil); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("expired epoch still decrypts: %v", err)
	}
}

func TestSnapshotRestoreFork(t *testing.T) {
	tr := newTrio(t, GroupConfig{})
	snap := tr.alice.Snapshot()
	if string(snap.ID()) != "c1" || snap.Epoch() != 1 {
		t.Fatalf("snapshot id %q epoch %d", snap.ID(), snap.Epoch())
	}
	// Two members commit concurrently in epoch 1: a fork.
	pcB, err := tr.bob.Commit(tr.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	pcC, err := tr.carol.Commit(tr.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.alice.ProcessMessage(roundTrip(t, pcB.Message), &ProcessOptions{EpochID: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	branchB := tr.alice.Snapshot()
	// The ordering layer later picks carol's commit: restore and apply it.
	alt, err := snap.Restore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alt.ProcessMessage(roundTrip(t, pcC.Message), &ProcessOptions{EpochID: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.carol.ProcessMessage(roundTrip(t, pcC.Message), nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(alt.EpochAuthenticator(), tr.carol.EpochAuthenticator()) || string(alt.EpochID()) != "c" {
		t.Fatal("restored state did not follow carol's branch")
	}
	if string(branchB.ID()) != "b" || bytes.Equal(branchB.g.EpochAuthenticator(), alt.EpochAuthenticator()) {
		t.Fatal("branches not independent")
	}
	// Bob's branch epoch stays decryptable on the chosen branch until its
	// deadline.
	bobGroup, err := tr.bob.Snapshot().Restore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bobGroup.ProcessMessage(roundTrip(t, pcB.Message), nil); err != nil {
		t.Fatal(err)
	}
	m, err := bobGroup.Send(tr.rand, nil, []byte("on branch b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := alt.RetainEpoch(must(branchB.Restore()), tr.now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	out, err := alt.ProcessMessage(roundTrip(t, m), nil)
	if err != nil || string(out.ApplicationData) != "on branch b" {
		t.Fatalf("branch message: %v", err)
	}
	snap.Erase()
	if _, err := snap.Restore(); err == nil {
		t.Fatal("erased snapshot restored")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestKeyPackageOptions(t *testing.T) {
	cs := CipherSuite(1)
	r := &seedReader{seed: []byte("kp")}
	sk, _, err := cs.GenerateSignatureKeyPair(r)
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Unix(1_700_000_000, 0)
	kb, err := NewKeyPackage(r, cs, sk, NewBasicCredential([]byte("x")), &KeyPackageOptions{NotBefore: nb, NotAfter: nb.Add(time.Hour), LastResort: true})
	if err != nil {
		t.Fatal(err)
	}
	kp := kb.KeyPackage
	if err := kp.Verify(); err != nil {
		t.Fatal(err)
	}
	if !IsLastResort(kp) || kp.LeafNode.Lifetime.NotBefore != uint64(nb.Unix()) || kp.LeafNode.Lifetime.NotAfter != uint64(nb.Unix()+3600) {
		t.Fatalf("lifetime %+v last resort %v", kp.LeafNode.Lifetime, IsLastResort(kp))
	}
	// An expired KeyPackage is refused by a committer checking lifetimes.
	tr := newTrio(t, GroupConfig{})
	_, err = tr.alice.Commit(tr.rand, &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kp}}, Now: nb.Add(2 * time.Hour)})
	if !errors.Is(err, ErrInvalidLeafNode) {
		t.Fatalf("expired key package: got %v", err)
	}
	if _, err := tr.alice.Commit(tr.rand, &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kp}}, Now: nb.Add(time.Minute)}); err != nil {
		t.Fatalf("valid key package: %v", err)
	}
}

func TestExternalSenderMustBeListed(t *testing.T) {
	tr := newTrio(t, GroupConfig{})
	sk, _, err := tr.alice.cs.GenerateSignatureKeyPair(tr.rand)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ExternalProposal(tr.alice.cs, tr.alice.GroupID(), tr.alice.Epoch(), 0, sk, &RemoveProposal{Removed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.alice.ProcessMessage(roundTrip(t, m), nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("unlisted external sender: got %v", err)
	}
	if _, err := ExternalProposal(tr.alice.cs, tr.alice.GroupID(), tr.alice.Epoch(), 0, sk, &UpdateProposal{}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("external update: got %v", err)
	}
}
