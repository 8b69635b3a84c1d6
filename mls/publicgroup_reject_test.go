package mls

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// rejectRoom is a four-member group (alice 0, bob 1, carol 2, dave 3) in
// epoch 3 with an observer: epoch 2 came from a commit with path by alice
// (kept for the replay case), epoch 3 from bob's removal of carol.
type rejectRoom struct {
	*obsRoom
	epoch2     *MLSMessage
	carolSig   SignaturePrivateKey
	carolIndex LeafIndex
}

func newRejectRoom(t testing.TB) *rejectRoom {
	t.Helper()
	r := newObsRoom(t, CipherSuite(1), "reject", GroupConfig{})
	joiners := map[string]*KeyPackageBundle{"bob": r.keyPackage("bob"), "carol": r.keyPackage("carol"), "dave": r.keyPackage("dave")}
	var adds []Proposal
	for _, n := range []string{"bob", "carol", "dave"} {
		adds = append(adds, &AddProposal{KeyPackage: *joiners[n].KeyPackage})
	}
	r.apply("alice", r.commit("alice", &CommitOptions{Proposals: adds}), joiners)
	pc := r.commit("alice", &CommitOptions{ForcePath: true})
	r.apply("alice", pc, nil)
	rr := &rejectRoom{obsRoom: r, epoch2: roundTrip(t, pc.Message), carolSig: r.sig("carol"), carolIndex: r.leaf("carol")}
	r.apply("bob", r.commit("bob", &CommitOptions{Proposals: []Proposal{&RemoveProposal{Removed: rr.carolIndex}}}), nil)
	return rr
}

// framed signs commit c as the member at leaf with key sig over the
// observer's epoch, with a valid membership tag (alice's epoch secrets)
// and a confirmation tag of the right size: members can judge it too.
func (r *rejectRoom) framed(t testing.TB, leaf LeafIndex, sig SignaturePrivateKey, c *Commit, mutate func(*AuthenticatedContent)) *MLSMessage {
	t.Helper()
	g := r.members["alice"]
	content := FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: MemberSender(leaf),
		AuthenticatedData: []byte{}, ContentType: ContentTypeCommit, Commit: c}
	ac, err := SignFramedContent(g.cs, WireFormatPublicMessage, &content, g.ctxBytes, sig)
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

// genuinePath returns a decoded copy of a fresh commit with path by alice
// (not applied).
func (r *rejectRoom) genuinePath(t testing.TB) *MLSMessage {
	t.Helper()
	return roundTrip(t, r.commit("alice", &CommitOptions{ForcePath: true, NoPending: true}).Message)
}

// tamperPath re-signs (as alice) alice's fresh commit with path after
// mutate changed its commit.
func (r *rejectRoom) tamperPath(t testing.TB, mutate func(c *Commit)) *MLSMessage {
	t.Helper()
	c := r.genuinePath(t).PublicMessage.Content.Commit
	mutate(c)
	return r.framed(t, r.leaf("alice"), r.sigs["alice"], c, nil)
}

// TestPublicGroupRejects: every malicious or misplaced commit is rejected
// with its typed reason and sentinel, the observer value is unchanged,
// and a member (bob) rejects the same message.
func TestPublicGroupRejects(t *testing.T) {
	r := newRejectRoom(t)
	alice := r.leaf("alice")
	aliceSig := r.sigs["alice"]
	badKP := r.keyPackage("mallory")
	badKP.KeyPackage.Signature = append([]byte{}, badKP.KeyPackage.Signature...)
	badKP.KeyPackage.Signature[0] ^= 1
	goodKP := r.keyPackage("peggy")
	other := newTrio(t, GroupConfig{})
	otherCommit, err := other.alice.Commit(other.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	encrypted := newTrio(t, GroupConfig{EncryptHandshake: true})
	privCommit, err := encrypted.alice.Commit(encrypted.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		msg    func() *MLSMessage
		reason ObserverReason
		want   error
	}{
		{"replay of an earlier epoch's commit", func() *MLSMessage { return r.epoch2 }, ObserverReplay, ErrWrongEpoch},
		{"commit bytes relabelled to another member", func() *MLSMessage {
			m := r.genuinePath(t)
			c := m.PublicMessage.Content
			c.raw = nil
			c.Sender = MemberSender(r.leaf("dave"))
			m.PublicMessage.Content = c
			return roundTrip(t, m)
		}, ObserverBadSignature, ErrBadSignature},
		{"commit from a removed member", func() *MLSMessage {
			return r.framed(t, r.carolIndex, r.carolSig, &Commit{Proposals: []ProposalOrRef{}}, nil)
		}, ObserverNotMember, ErrBlankLeaf},
		{"commit from a leaf outside the tree", func() *MLSMessage {
			return r.framed(t, 40, r.carolSig, &Commit{Proposals: []ProposalOrRef{}}, nil)
		}, ObserverNotMember, ErrLeafOutOfRange},
		{"commit of another group", func() *MLSMessage { return roundTrip(t, otherCommit.Message) }, ObserverReplay, ErrWrongGroup},
		{"corrupted signature", func() *MLSMessage {
			m := r.genuinePath(t)
			m.PublicMessage.Auth.Signature[3] ^= 0x40
			return roundTrip(t, m)
		}, ObserverBadSignature, ErrBadSignature},
		{"signed by a member with another member's key", func() *MLSMessage {
			return r.framed(t, alice, r.sigs["bob"], &Commit{Proposals: []ProposalOrRef{}}, nil)
		}, ObserverBadSignature, ErrBadSignature},
		{"add of a key package with a bad signature", func() *MLSMessage {
			return r.framed(t, alice, aliceSig, &Commit{Proposals: []ProposalOrRef{{Proposal: &AddProposal{KeyPackage: *badKP.KeyPackage}}}}, nil)
		}, ObserverInvalidProposal, ErrBadSignature},
		{"remove of a blank leaf", func() *MLSMessage {
			return r.framed(t, alice, aliceSig, &Commit{Proposals: []ProposalOrRef{{Proposal: &RemoveProposal{Removed: r.carolIndex}}}}, nil)
		}, ObserverInvalidProposal, ErrBlankLeaf},
		{"duplicate adds", func() *MLSMessage {
			add := ProposalOrRef{Proposal: &AddProposal{KeyPackage: *goodKP.KeyPackage}}
			return r.framed(t, alice, aliceSig, &Commit{Proposals: []ProposalOrRef{add, add}}, nil)
		}, ObserverInvalidProposal, ErrDuplicateKey},
		{"reference to a proposal never seen", func() *MLSMessage {
			return r.framed(t, alice, aliceSig, &Commit{Proposals: []ProposalOrRef{{Reference: bytes.Repeat([]byte{7}, 32)}}}, nil)
		}, ObserverInvalidProposal, ErrUnknownProposal},
		{"update by the committer", func() *MLSMessage {
			ln, _ := r.obs.Leaf(alice)
			return r.framed(t, alice, aliceSig, &Commit{Proposals: []ProposalOrRef{{Proposal: &UpdateProposal{LeafNode: *ln}}}}, nil)
		}, ObserverInvalidProposal, ErrInvalidProposal},
		{"path missing where required", func() *MLSMessage {
			return r.framed(t, alice, aliceSig, &Commit{Proposals: []ProposalOrRef{{Proposal: &RemoveProposal{Removed: r.leaf("dave")}}}}, nil)
		}, ObserverInvalidPath, ErrInvalidCommit},
		{"parent hash tampered (leaf re-signed)", func() *MLSMessage {
			return r.tamperPath(t, func(c *Commit) {
				ln := c.Path.LeafNode
				ln.ParentHash = bytes.Repeat([]byte{1}, len(ln.ParentHash))
				if err := ln.Sign(r.cs, aliceSig, r.obs.GroupID(), alice); err != nil {
					t.Fatal(err)
				}
				c.Path.LeafNode = ln
			})
		}, ObserverInvalidPath, ErrBadParentHash},
		{"path node key replaced", func() *MLSMessage {
			return r.tamperPath(t, func(c *Commit) {
				_, pub, err := r.cs.GenerateKEMKeyPair(r.rand)
				if err != nil {
					t.Fatal(err)
				}
				c.Path.Nodes[len(c.Path.Nodes)-1].EncryptionKey = pub
			})
		}, ObserverInvalidPath, ErrBadParentHash},
		{"leaf node signature tampered", func() *MLSMessage {
			return r.tamperPath(t, func(c *Commit) {
				c.Path.LeafNode.Signature = append([]byte{}, c.Path.LeafNode.Signature...)
				c.Path.LeafNode.Signature[5] ^= 2
			})
		}, ObserverInvalidPath, ErrBadSignature},
		{"path one node short", func() *MLSMessage {
			return r.tamperPath(t, func(c *Commit) { c.Path.Nodes = c.Path.Nodes[:len(c.Path.Nodes)-1] })
		}, ObserverInvalidPath, ErrBadUpdatePath},
		{"ciphertext missing for a copath member", func() *MLSMessage {
			return r.tamperPath(t, func(c *Commit) {
				n := &c.Path.Nodes[len(c.Path.Nodes)-1]
				n.EncryptedPathSecret = n.EncryptedPathSecret[1:]
			})
		}, ObserverInvalidPath, ErrBadUpdatePath},
		{"confirmation tag of the wrong size", func() *MLSMessage {
			return r.framed(t, alice, aliceSig, &Commit{Proposals: []ProposalOrRef{}}, func(ac *AuthenticatedContent) {
				ac.Auth.ConfirmationTag = []byte{1, 2, 3}
			})
		}, ObserverInvalidCommit, ErrInvalidCommit},
		{"commit sent as a PrivateMessage", func() *MLSMessage { return roundTrip(t, privCommit.Message) }, ObserverUnreadable, ErrUnreadable},
		{"a proposal passed as a commit", func() *MLSMessage {
			m, err := r.members["alice"].ProposeUpdate(r.rand)
			if err != nil {
				t.Fatal(err)
			}
			return roundTrip(t, m)
		}, ObserverMalformed, ErrInvalidMessage},
	}
	before := pgContext(t, r.obs)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.msg()
			next, oc, err := r.obs.ProcessCommit(m, time.Time{})
			var oe *ObserverError
			if !errors.As(err, &oe) || oe.Reason != tc.reason || !errors.Is(err, tc.want) || next != nil || oc != nil {
				t.Fatalf("ProcessCommit = %v (reason %v), want %v with %v", err, ObserverReasonOf(err), tc.reason, tc.want)
			}
			if RejectReason(err) == ReasonNone {
				t.Fatalf("RejectReason(%v) = none", err)
			}
			if !bytes.Equal(pgContext(t, r.obs), before) {
				t.Fatal("the observer changed")
			}
			if m.PublicMessage != nil && m.PublicMessage.Content.ContentType != ContentTypeCommit {
				return // a valid proposal, which bob accepts as one
			}
			bob := r.members["bob"]
			fp := fingerprint(t, bob)
			if _, err := bob.ProcessMessage(roundTrip(t, m), nil); err == nil {
				t.Fatal("bob accepts what the observer rejected")
			}
			if fingerprint(t, bob) != fp {
				t.Fatal("bob changed")
			}
		})
	}
	if got := ObserverReasonOf(nil); got != ObserverReasonNone {
		t.Fatalf("ObserverReasonOf(nil) = %v", got)
	}
	if _, _, err := r.obs.ProcessCommit(nil, time.Time{}); ObserverReasonOf(err) != ObserverMalformed {
		t.Fatalf("nil message: %v", err)
	}
	// The genuine commit is still accepted afterwards.
	r.apply("alice", r.commit("alice", &CommitOptions{ForcePath: true}), nil)
}

// TestPublicGroupRejectsProposals: proposals are authenticated and
// validated as members do.
func TestPublicGroupRejectsProposals(t *testing.T) {
	r := newRejectRoom(t)
	badKP := r.keyPackage("mallory")
	badKP.KeyPackage.Signature = append([]byte{}, badKP.KeyPackage.Signature...)
	badKP.KeyPackage.Signature[0] ^= 1
	alice := r.members["alice"]
	propose := func(p Proposal) *MLSMessage {
		m, err := alice.Propose(r.rand, p)
		if err != nil {
			t.Fatal(err)
		}
		return roundTrip(t, m)
	}
	cases := []struct {
		name   string
		msg    func() *MLSMessage
		reason ObserverReason
		want   error
	}{
		{"add of a bad key package", func() *MLSMessage { return propose(&AddProposal{KeyPackage: *badKP.KeyPackage}) },
			ObserverInvalidProposal, ErrBadSignature},
		{"remove of a blank leaf", func() *MLSMessage { return propose(&RemoveProposal{Removed: r.carolIndex}) },
			ObserverInvalidProposal, ErrInvalidProposal},
		{"external sender not in the extension", func() *MLSMessage {
			m, err := ExternalProposal(r.cs, alice.GroupID(), alice.Epoch(), 3, r.server, &RemoveProposal{Removed: 1})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}, ObserverNotMember, ErrInvalidMessage},
		{"external proposal with another key", func() *MLSMessage {
			m, err := ExternalProposal(r.cs, alice.GroupID(), alice.Epoch(), 0, r.sigs["bob"], &RemoveProposal{Removed: 1})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}, ObserverBadSignature, ErrBadSignature},
		{"proposal of an earlier epoch", func() *MLSMessage {
			m, err := ExternalProposal(r.cs, alice.GroupID(), alice.Epoch()-1, 0, r.server, &RemoveProposal{Removed: 1})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}, ObserverReplay, ErrWrongEpoch},
		{"a commit passed as a proposal", func() *MLSMessage { return r.genuinePath(t) }, ObserverMalformed, ErrInvalidMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next, op, err := r.obs.ProcessProposal(tc.msg(), time.Time{})
			if ObserverReasonOf(err) != tc.reason || !errors.Is(err, tc.want) || next != nil || op != nil {
				t.Fatalf("ProcessProposal = %v (reason %v), want %v with %v", err, ObserverReasonOf(err), tc.reason, tc.want)
			}
		})
	}
	// A valid proposal is recorded on the new value only.
	m, err := ExternalProposal(r.cs, alice.GroupID(), alice.Epoch(), 0, r.server, &RemoveProposal{Removed: r.leaf("dave")})
	if err != nil {
		t.Fatal(err)
	}
	next, op, err := r.obs.ProcessProposal(m, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ref := ProposalOrRef{Reference: op.Ref}
	commit := r.framed(t, r.leaf("alice"), r.sigs["alice"], &Commit{Proposals: []ProposalOrRef{ref}}, nil)
	if _, _, err := r.obs.ProcessCommit(commit, time.Time{}); ObserverReasonOf(err) != ObserverInvalidProposal || !errors.Is(err, ErrUnknownProposal) {
		t.Fatalf("the old value resolved the new proposal: %v", err)
	}
	// With it, the by-reference remove goes on to need a path.
	if _, _, err := next.ProcessCommit(commit, time.Time{}); ObserverReasonOf(err) != ObserverInvalidPath {
		t.Fatalf("commit of the recorded proposal without a path: %v", err)
	}
}

// TestPublicGroupBootstrapRejects: GroupInfos that cannot bootstrap an
// observer.
func TestPublicGroupBootstrapRejects(t *testing.T) {
	r := newRejectRoom(t)
	alice := r.members["alice"]
	gi := func(withTree bool, mutate func(*GroupInfo)) *GroupInfo {
		g, err := alice.GroupInfo(withTree)
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(g)
		}
		raw, err := g.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		d, err := UnmarshalGroupInfo(raw)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	oldTree := r.obs.Tree()
	r.apply("alice", r.commit("alice", &CommitOptions{ForcePath: true}), nil)
	cases := []struct {
		name   string
		gi     *GroupInfo
		tree   *Tree
		reason ObserverReason
		want   error
	}{
		{"no GroupInfo", nil, nil, ObserverMalformed, ErrBadWelcome},
		{"no tree", gi(false, nil), nil, ObserverInvalidGroupInfo, ErrBadWelcome},
		{"tree of another epoch", gi(false, nil), oldTree, ObserverInvalidGroupInfo, ErrBadTreeHash},
		{"bad signature", gi(true, func(g *GroupInfo) { g.Signature[2] ^= 1 }), nil, ObserverInvalidGroupInfo, ErrBadSignature},
		{"blank signer", gi(true, func(g *GroupInfo) {
			g.Signer = r.carolIndex
			if err := g.Sign(alice.sig); err != nil {
				t.Fatal(err)
			}
		}), nil, ObserverInvalidGroupInfo, ErrBadWelcome},
		{"short confirmation tag", gi(true, func(g *GroupInfo) {
			g.ConfirmationTag = g.ConfirmationTag[:4]
			if err := g.Sign(alice.sig); err != nil {
				t.Fatal(err)
			}
		}), nil, ObserverInvalidGroupInfo, ErrBadWelcome},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPublicGroup(tc.gi, tc.tree, nil)
			if ObserverReasonOf(err) != tc.reason || !errors.Is(err, tc.want) || p != nil {
				t.Fatalf("NewPublicGroup = %v (reason %v), want %v with %v", err, ObserverReasonOf(err), tc.reason, tc.want)
			}
		})
	}
	// The tree given out of band works like the extension.
	p, err := NewPublicGroup(gi(false, nil), r.obs.Tree(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pgContext(t, p), alice.ctxBytes) || !bytes.Equal(p.InterimTranscriptHash(), alice.interim) {
		t.Fatal("observer from GroupInfo and tree differs from alice")
	}
	for _, raw := range [][]byte{nil, {0, 1, 0, 4}, must(r.commit("bob", nil).Message.Marshal())} {
		if _, err := ParsePublicGroup(raw, nil); ObserverReasonOf(err) != ObserverMalformed {
			t.Fatalf("ParsePublicGroup(%x...) = %v, want mls-malformed", raw[:min(len(raw), 8)], err)
		}
	}
}

// TestPublicGroupLifetime: the time passed to ProcessCommit decides
// KeyPackage lifetimes as the members' ProcessOptions.Now does.
func TestPublicGroupLifetime(t *testing.T) {
	r := newRejectRoom(t)
	t0 := time.Unix(1_800_000_000, 0)
	kb, err := NewKeyPackage(r.rand, r.cs, r.sig("late"), NewBasicCredential([]byte("late")),
		&KeyPackageOptions{NotBefore: t0, NotAfter: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	m := roundTrip(t, r.commit("alice", &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}}).Message)
	for _, tc := range []struct {
		now time.Time
		ok  bool
	}{{time.Time{}, true}, {t0.Add(time.Minute), true}, {t0.Add(2 * time.Hour), false}, {t0.Add(-time.Minute), false}} {
		_, _, err := r.obs.ProcessCommit(m, tc.now)
		if tc.ok != (err == nil) || (err != nil && (ObserverReasonOf(err) != ObserverInvalidProposal || !errors.Is(err, ErrInvalidLeafNode))) {
			t.Fatalf("now %v: %v, want accepted %v", tc.now, err, tc.ok)
		}
		_, merr := r.members["bob"].deepCopy().ProcessMessage(roundTrip(t, m), &ProcessOptions{Now: tc.now})
		if (merr == nil) != tc.ok {
			t.Fatalf("now %v: observer and member disagree: %v / %v", tc.now, err, merr)
		}
	}
}

// TestProcessLifetimeAt: a member judges KeyPackage lifetimes at
// ProcessOptions.LifetimeAt when set (the event's timestamp, as observers
// are given), whatever its Now, so that it reaches the observer's verdict.
func TestProcessLifetimeAt(t *testing.T) {
	r := newRejectRoom(t)
	t0 := time.Unix(1_800_000_000, 0)
	kb, err := NewKeyPackage(r.rand, r.cs, r.sig("late"), NewBasicCredential([]byte("late")),
		&KeyPackageOptions{NotBefore: t0, NotAfter: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	m := roundTrip(t, r.commit("alice", &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}}).Message)
	for _, tc := range []struct {
		now, at time.Time
		ok      bool
	}{
		{t0.Add(2 * time.Hour), t0.Add(time.Minute), true}, // expired by the member's clock, valid at the event
		{t0.Add(time.Minute), t0.Add(2 * time.Hour), false},
		{t0.Add(time.Minute), time.Time{}, true}, // unset: Now
	} {
		_, err := r.members["bob"].deepCopy().ProcessMessage(roundTrip(t, m), &ProcessOptions{Now: tc.now, LifetimeAt: tc.at})
		if (err == nil) != tc.ok {
			t.Errorf("now %v, lifetime at %v: %v, want accepted %v", tc.now, tc.at, err, tc.ok)
		}
	}
}
