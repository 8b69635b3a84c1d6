package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// obsRoom is a group of named members built with the package's API, and an
// external observer that processes every handshake message first. After
// each commit, the observer's public state must equal every member's: the
// members compute theirs independently (the committer while creating the
// commit, the others after verifying its confirmation tag through the key
// schedule), so agreement is not produced by the code under test alone.
type obsRoom struct {
	t       testing.TB
	cs      CipherSuite
	rand    *seedReader
	members map[string]*Group
	sigs    map[string]SignaturePrivateKey
	server  SignaturePrivateKey
	obs     *PublicGroup
	cfg     GroupConfig
}

func newObsRoom(t testing.TB, cs CipherSuite, groupID string, cfg GroupConfig) *obsRoom {
	t.Helper()
	r := &obsRoom{t: t, cs: cs, rand: &seedReader{seed: []byte("observer/" + groupID + "/" + cs.String())},
		members: map[string]*Group{}, sigs: map[string]SignaturePrivateKey{}, cfg: cfg}
	r.cfg.RatchetTreeInWelcome = true
	r.server = r.sig("server")
	senders, err := ExternalSenders{{SignatureKey: r.server.PublicKey(), Credential: NewBasicCredential([]byte("server"))}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	alice, err := CreateGroup(r.rand, cs, []byte(groupID), r.sig("alice"), NewBasicCredential([]byte("alice")),
		&CreateOptions{Config: r.cfg, Extensions: Extensions{{ExtensionType: ExtensionTypeExternalSenders, ExtensionData: senders}}})
	if err != nil {
		t.Fatal(err)
	}
	r.members["alice"] = alice
	r.obs = observerOf(t, alice)
	r.checkSame("epoch 0")
	return r
}

// observerOf bootstraps an observer from g's GroupInfo (with the tree) as
// the bytes a room's create event carries.
func observerOf(t testing.TB, g *Group) *PublicGroup {
	t.Helper()
	gi, err := g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := (&MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePublicGroup(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *obsRoom) sig(name string) SignaturePrivateKey {
	if k, ok := r.sigs[name]; ok {
		return k
	}
	k, _, err := r.cs.GenerateSignatureKeyPair(r.rand)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sigs[name] = k
	return k
}

func (r *obsRoom) keyPackage(name string) *KeyPackageBundle {
	kb, err := NewKeyPackage(r.rand, r.cs, r.sig(name), NewBasicCredential([]byte(name)), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return kb
}

func (r *obsRoom) leaf(name string) LeafIndex { return r.members[name].LeafIndex() }

// commit has member by create a commit; it is not applied.
func (r *obsRoom) commit(by string, opts *CommitOptions) *PendingCommit {
	r.t.Helper()
	pc, err := r.members[by].Commit(r.rand, opts)
	if err != nil {
		r.t.Fatalf("%s commits: %v", by, err)
	}
	return pc
}

// propose delivers a proposal message to the observer and to every
// member but its sender.
func (r *obsRoom) propose(from string, m *MLSMessage) *ObservedProposal {
	r.t.Helper()
	next, op, err := r.obs.ProcessProposal(roundTrip(r.t, m), time.Time{})
	if err != nil {
		r.t.Fatalf("observer rejects the proposal of %s: %v", from, err)
	}
	r.obs = next
	for name, g := range r.members {
		if name == from {
			continue
		}
		if _, err := g.ProcessMessage(roundTrip(r.t, m), nil); err != nil {
			r.t.Fatalf("%s rejects the proposal of %s: %v", name, from, err)
		}
	}
	return op
}

// apply delivers a commit: the observer first, then the members (by, if
// set, merges its pending commit; joiners join from the Welcome; joined,
// if set, is an external joiner already in the new epoch).
func (r *obsRoom) apply(by string, pc *PendingCommit, joiners map[string]*KeyPackageBundle) *ObservedCommit {
	r.t.Helper()
	next, oc, err := r.obs.ProcessCommit(roundTrip(r.t, pc.Message), time.Time{})
	if err != nil {
		r.t.Fatalf("observer rejects the commit of %s: %v", by, err)
	}
	r.obs = next
	for name, g := range r.members {
		if name == by {
			if err := g.MergeCommit(pc, nil, time.Time{}); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		pm, err := g.ProcessMessage(roundTrip(r.t, pc.Message), nil)
		if err != nil {
			r.t.Fatalf("%s rejects the commit of %s: %v", name, by, err)
		}
		if pm.Commit.RemovedSelf {
			delete(r.members, name)
		}
	}
	for name, kb := range joiners {
		g, err := JoinGroup(pc.Welcome, kb, &JoinOptions{Config: r.cfg})
		if err != nil {
			r.t.Fatalf("%s joins: %v", name, err)
		}
		r.members[name] = g
	}
	r.checkSame(fmt.Sprintf("after the commit of %s", by))
	return oc
}

// checkSame asserts that the observer's public state equals every
// member's.
func (r *obsRoom) checkSame(what string) {
	r.t.Helper()
	o := r.obs
	oth, err := o.Tree().TreeHash()
	if err != nil {
		r.t.Fatal(err)
	}
	octx := o.GroupContext()
	octxBytes, err := octx.Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	for name, g := range r.members {
		ctx := g.GroupContext()
		want, err := ctx.Marshal()
		if err != nil {
			r.t.Fatal(err)
		}
		th, err := g.Tree().TreeHash()
		if err != nil {
			r.t.Fatal(err)
		}
		switch {
		case !bytes.Equal(octxBytes, want):
			r.t.Fatalf("%s: observer GroupContext differs from %s's:\n%x\n%x", what, name, octxBytes, want)
		case !bytes.Equal(oth, th) || !bytes.Equal(octx.TreeHash, th):
			r.t.Fatalf("%s: observer tree hash differs from %s's", what, name)
		case !bytes.Equal(o.InterimTranscriptHash(), g.interim):
			r.t.Fatalf("%s: observer interim transcript hash differs from %s's", what, name)
		case !slices.Equal(o.Members(), g.Members()):
			r.t.Fatalf("%s: observer members %v, %s has %v", what, o.Members(), name, g.Members())
		case o.Epoch() != g.Epoch() || !bytes.Equal(o.GroupID(), g.GroupID()) || o.CipherSuite() != g.CipherSuite():
			r.t.Fatalf("%s: observer epoch/group/suite differ from %s's", what, name)
		}
	}
}

// pgContext is the encoding of p's GroupContext as its accessor returns
// it.
func pgContext(t testing.TB, p *PublicGroup) []byte {
	t.Helper()
	c := p.GroupContext()
	return ctxEncoding(t, &c)
}

func ctxEncoding(t testing.TB, c *GroupContext) []byte {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func credentials(ms []ObservedMember) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Credential.Identity))
	}
	return out
}

// TestPublicGroupFollowsHonestCommits chains 13 epochs of every honest
// commit kind through a group of up to five members and an observer.
func TestPublicGroupFollowsHonestCommits(t *testing.T) {
	for _, cs := range []CipherSuite{1, 2, 3} {
		t.Run(cs.String(), func(t *testing.T) {
			testPublicGroupFollows(t, cs)
		})
	}
}

func testPublicGroupFollows(t *testing.T, cs CipherSuite) {
	r := newObsRoom(t, cs, "follow", GroupConfig{})
	kbs := map[string]*KeyPackageBundle{}
	steps := []struct {
		name  string
		run   func() *ObservedCommit
		check func(oc *ObservedCommit) error
	}{
		{"add two", func() *ObservedCommit {
			kbs["bob"], kbs["carol"] = r.keyPackage("bob"), r.keyPackage("carol")
			pc := r.commit("alice", &CommitOptions{Proposals: []Proposal{
				&AddProposal{KeyPackage: *kbs["bob"].KeyPackage}, &AddProposal{KeyPackage: *kbs["carol"].KeyPackage}}})
			return r.apply("alice", pc, map[string]*KeyPackageBundle{"bob": kbs["bob"], "carol": kbs["carol"]})
		}, func(oc *ObservedCommit) error {
			if got := credentials(oc.Added); !slices.Equal(got, []string{"bob", "carol"}) || oc.HasPath {
				return fmt.Errorf("added %v, path %v", got, oc.HasPath)
			}
			return nil
		}},
		{"update with path", func() *ObservedCommit {
			return r.apply("bob", r.commit("bob", &CommitOptions{ForcePath: true}), nil)
		}, func(oc *ObservedCommit) error {
			if !oc.HasPath || len(oc.Proposals) != 0 || oc.Committer != 1 {
				return fmt.Errorf("path %v, %d proposals, committer %d", oc.HasPath, len(oc.Proposals), oc.Committer)
			}
			return nil
		}},
		{"update proposal by reference", func() *ObservedCommit {
			m, err := r.members["carol"].ProposeUpdate(r.rand)
			if err != nil {
				t.Fatal(err)
			}
			if op := r.propose("carol", m); op.Sender != MemberSender(r.leaf("carol")) || len(op.Ref) == 0 {
				t.Fatalf("observed proposal %+v", op)
			}
			return r.apply("alice", r.commit("alice", nil), nil)
		}, func(oc *ObservedCommit) error {
			if len(oc.Proposals) != 1 || oc.Proposals[0].Reference == nil || !slices.Equal(oc.Updated, []LeafIndex{2}) {
				return fmt.Errorf("proposals %+v, updated %v", oc.Proposals, oc.Updated)
			}
			return nil
		}},
		{"add two more", func() *ObservedCommit {
			kbs["dave"], kbs["erin"] = r.keyPackage("dave"), r.keyPackage("erin")
			pc := r.commit("carol", &CommitOptions{ForcePath: true, Proposals: []Proposal{
				&AddProposal{KeyPackage: *kbs["dave"].KeyPackage}, &AddProposal{KeyPackage: *kbs["erin"].KeyPackage}}})
			return r.apply("carol", pc, map[string]*KeyPackageBundle{"dave": kbs["dave"], "erin": kbs["erin"]})
		}, func(oc *ObservedCommit) error {
			if len(r.members) != 5 || !slices.Equal(credentials(oc.Added), []string{"dave", "erin"}) {
				return fmt.Errorf("%d members, added %v", len(r.members), credentials(oc.Added))
			}
			return nil
		}},
		{"remove", func() *ObservedCommit {
			return r.apply("dave", r.commit("dave", &CommitOptions{Proposals: []Proposal{&RemoveProposal{Removed: r.leaf("carol")}}}), nil)
		}, func(oc *ObservedCommit) error {
			if !slices.Equal(credentials(oc.Removed), []string{"carol"}) || oc.Removed[0].Leaf != 2 || !oc.HasPath {
				return fmt.Errorf("removed %+v", oc.Removed)
			}
			return nil
		}},
		{"group context extensions", func() *ObservedCommit {
			senders, err := ExternalSenders{
				{SignatureKey: r.server.PublicKey(), Credential: NewBasicCredential([]byte("server"))},
				{SignatureKey: r.sig("server2").PublicKey(), Credential: NewBasicCredential([]byte("server2"))},
			}.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			exts := Extensions{{ExtensionType: ExtensionTypeExternalSenders, ExtensionData: senders}}
			return r.apply("erin", r.commit("erin", &CommitOptions{Proposals: []Proposal{&GroupContextExtensionsProposal{Extensions: exts}}}), nil)
		}, func(oc *ObservedCommit) error {
			es, err := externalSenders(r.obs.Extensions())
			if err != nil || len(es) != 2 {
				return fmt.Errorf("external senders after the commit: %d, %v", len(es), err)
			}
			return nil
		}},
		{"external sender's remove by reference", func() *ObservedCommit {
			g := r.members["erin"]
			m, err := ExternalProposal(r.cs, g.GroupID(), g.Epoch(), 1, r.sig("server2"), &RemoveProposal{Removed: r.leaf("erin")})
			if err != nil {
				t.Fatal(err)
			}
			if op := r.propose("", m); op.Sender.SenderType != SenderTypeExternal {
				t.Fatalf("observed proposal sender %+v", op.Sender)
			}
			return r.apply("bob", r.commit("bob", nil), nil)
		}, func(oc *ObservedCommit) error {
			if !slices.Equal(credentials(oc.Removed), []string{"erin"}) || oc.Proposals[0].Sender.SenderType != SenderTypeExternal {
				return fmt.Errorf("removed %v by %+v", credentials(oc.Removed), oc.Proposals)
			}
			return nil
		}},
		{"external join", func() *ObservedCommit {
			gi, err := r.members["alice"].GroupInfo(true)
			if err != nil {
				t.Fatal(err)
			}
			frank, m, err := JoinExternal(r.rand, gi, r.sig("frank"), NewBasicCredential([]byte("frank")), &ExternalJoinOptions{Config: r.cfg})
			if err != nil {
				t.Fatal(err)
			}
			oc := r.apply("", &PendingCommit{Message: m}, nil)
			r.members["frank"] = frank
			r.checkSame("after frank joined")
			return oc
		}, func(oc *ObservedCommit) error {
			if !oc.External || oc.Joiner == nil || string(oc.Joiner.Credential.Identity) != "frank" || oc.Committer != 2 {
				return fmt.Errorf("external %v joiner %+v committer %d", oc.External, oc.Joiner, oc.Committer)
			}
			return nil
		}},
		{"new member adds with path", func() *ObservedCommit {
			kbs["gina"] = r.keyPackage("gina")
			pc := r.commit("frank", &CommitOptions{ForcePath: true, Proposals: []Proposal{&AddProposal{KeyPackage: *kbs["gina"].KeyPackage}}})
			return r.apply("frank", pc, map[string]*KeyPackageBundle{"gina": kbs["gina"]})
		}, nil},
		{"self-remove by reference", func() *ObservedCommit {
			m, err := r.members["alice"].Propose(r.rand, &SelfRemoveProposal{})
			if err != nil {
				t.Fatal(err)
			}
			r.propose("alice", m)
			return r.apply("gina", r.commit("gina", nil), nil)
		}, func(oc *ObservedCommit) error {
			if !slices.Equal(credentials(oc.Removed), []string{"alice"}) {
				return fmt.Errorf("removed %v", credentials(oc.Removed))
			}
			return nil
		}},
		{"resumption psk", func() *ObservedCommit {
			g := r.members["bob"]
			id, err := NewPSKID(r.rand, r.cs, PreSharedKeyID{PSKType: PSKTypeResumption, Usage: ResumptionPSKUsageApplication,
				PSKGroupID: g.GroupID(), PSKEpoch: g.Epoch() - 1})
			if err != nil {
				t.Fatal(err)
			}
			return r.apply("bob", r.commit("bob", &CommitOptions{Proposals: []Proposal{&PreSharedKeyProposal{PSK: id}}}), nil)
		}, func(oc *ObservedCommit) error {
			if len(oc.PSKs) != 1 {
				return fmt.Errorf("psks %v", oc.PSKs)
			}
			return nil
		}},
		{"add without path", func() *ObservedCommit {
			kbs["hank"] = r.keyPackage("hank")
			pc := r.commit("dave", &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kbs["hank"].KeyPackage}}})
			return r.apply("dave", pc, map[string]*KeyPackageBundle{"hank": kbs["hank"]})
		}, func(oc *ObservedCommit) error {
			if oc.HasPath || len(oc.Added) != 1 || oc.Added[0].Leaf != 0 {
				return fmt.Errorf("path %v, added %+v", oc.HasPath, oc.Added)
			}
			return nil
		}},
		{"update with path after all that", func() *ObservedCommit {
			return r.apply("hank", r.commit("hank", &CommitOptions{ForcePath: true}), nil)
		}, nil},
	}
	for i, st := range steps {
		before := r.obs
		beforeCtx := before.GroupContext()
		oc := st.run()
		if oc.Epoch != beforeCtx.Epoch+1 || r.obs.Epoch() != oc.Epoch {
			t.Fatalf("step %d (%s): epoch %d after %d", i, st.name, oc.Epoch, beforeCtx.Epoch)
		}
		if st.check != nil {
			if err := st.check(oc); err != nil {
				t.Fatalf("step %d (%s): %v", i, st.name, err)
			}
		}
		// The previous value is unchanged.
		if after := before.GroupContext(); before.Epoch() != beforeCtx.Epoch || !bytes.Equal(ctxEncoding(r.t, &after), ctxEncoding(r.t, &beforeCtx)) {
			t.Fatalf("step %d (%s): the previous PublicGroup changed", i, st.name)
		}
	}
	if r.obs.Epoch() < 10 {
		t.Fatalf("only %d epochs", r.obs.Epoch())
	}
}

// TestPublicGroupBootstrapEqualsCreator: an observer from the epoch-0
// GroupInfo of a fresh group holds the creator's public state exactly.
func TestPublicGroupBootstrapEqualsCreator(t *testing.T) {
	for _, cs := range SupportedCipherSuites() {
		rand := &seedReader{seed: []byte(cs.String())}
		sig, _, err := cs.GenerateSignatureKeyPair(rand)
		if err != nil {
			t.Fatal(err)
		}
		g, err := CreateGroup(rand, cs, []byte("fresh"), sig, NewBasicCredential([]byte("creator")), nil)
		if err != nil {
			t.Fatal(err)
		}
		p := observerOf(t, g)
		if !bytes.Equal(p.st.ctxBytes, g.ctxBytes) || !bytes.Equal(p.st.interim, g.interim) || !bytes.Equal(p.st.confTag, g.confTag) {
			t.Fatalf("%v: observer state differs from the creator's", cs)
		}
		if p.Epoch() != 0 || !slices.Equal(p.Members(), []LeafIndex{0}) {
			t.Fatalf("%v: epoch %d members %v", cs, p.Epoch(), p.Members())
		}
		if ln, ok := p.Leaf(0); !ok || string(ln.Credential.Identity) != "creator" {
			t.Fatalf("%v: leaf 0 %v", cs, ln)
		}
	}
}

// TestPublicGroupBranches: two commits on the same parent both process
// from the same PublicGroup value into independent next states, each equal
// to its committer's.
func TestPublicGroupBranches(t *testing.T) {
	r := newObsRoom(t, CipherSuite(1), "branches", GroupConfig{})
	kb := r.keyPackage("bob")
	r.apply("alice", r.commit("alice", &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}}),
		map[string]*KeyPackageBundle{"bob": kb})
	parent := r.obs
	parentCtx := pgContext(t, parent)
	pa := r.commit("alice", &CommitOptions{ForcePath: true})
	pb := r.commit("bob", &CommitOptions{ForcePath: true})
	na, _, err := parent.ProcessCommit(roundTrip(t, pa.Message), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	nb, _, err := parent.ProcessCommit(roundTrip(t, pb.Message), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pgContext(t, parent), parentCtx) {
		t.Fatal("processing changed the parent")
	}
	ca, cb := pgContext(t, na), pgContext(t, nb)
	if bytes.Equal(ca, cb) || na.Epoch() != 2 || nb.Epoch() != 2 {
		t.Fatal("the two branches did not diverge")
	}
	alice, bob := r.members["alice"], r.members["bob"]
	if err := alice.MergeCommit(pa, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := bob.MergeCommit(pb, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca, alice.ctxBytes) || !bytes.Equal(cb, bob.ctxBytes) ||
		!bytes.Equal(na.InterimTranscriptHash(), alice.interim) || !bytes.Equal(nb.InterimTranscriptHash(), bob.interim) {
		t.Fatal("a branch differs from its committer's state")
	}
	// Each branch goes on by itself: the other branch's next commit is
	// signed over another GroupContext.
	c2, err := alice.Commit(r.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := na.ProcessCommit(roundTrip(t, c2.Message), time.Time{}); err != nil {
		t.Fatalf("branch a rejects alice's next commit: %v", err)
	}
	if _, _, err := nb.ProcessCommit(roundTrip(t, c2.Message), time.Time{}); ObserverReasonOf(err) != ObserverBadSignature {
		t.Fatalf("branch b on alice's next commit: %v, want mls-bad-signature", err)
	}
}

// BenchmarkPublicGroupProcessCommit: an observer of a 64-member group
// processes a commit with path from the last member (the PublicGroup is
// immutable, so every iteration processes the same commit on the same
// state).
func BenchmarkPublicGroupProcessCommit(b *testing.B) {
	cs := CipherSuite(1)
	rand := &seedReader{seed: []byte("observer bench")}
	newSig := func() SignaturePrivateKey {
		k, _, err := cs.GenerateSignatureKeyPair(rand)
		if err != nil {
			b.Fatal(err)
		}
		return k
	}
	alice, err := CreateGroup(rand, cs, []byte("bench"), newSig(), NewBasicCredential([]byte("m0")), nil)
	if err != nil {
		b.Fatal(err)
	}
	var adds []Proposal
	var last *KeyPackageBundle
	for i := 1; i < 64; i++ {
		if last, err = NewKeyPackage(rand, cs, newSig(), NewBasicCredential(fmt.Appendf(nil, "m%d", i)), nil); err != nil {
			b.Fatal(err)
		}
		adds = append(adds, &AddProposal{KeyPackage: *last.KeyPackage})
	}
	pc, err := alice.Commit(rand, &CommitOptions{Proposals: adds, ForcePath: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := alice.MergeCommit(pc, nil, time.Time{}); err != nil {
		b.Fatal(err)
	}
	member, err := JoinGroup(pc.Welcome, last, &JoinOptions{Config: GroupConfig{}, RatchetTree: must(alice.Tree().Encode())})
	if err != nil {
		b.Fatal(err)
	}
	pg := observerOf(b, alice)
	commit, err := member.Commit(rand, &CommitOptions{ForcePath: true})
	if err != nil {
		b.Fatal(err)
	}
	msg := roundTrip(b, commit.Message)
	if n := len(pg.Members()); n != 64 {
		b.Fatalf("%d members", n)
	}
	for b.Loop() {
		if _, _, err := pg.ProcessCommit(msg, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPublicGroupConcurrentUse: one value used from several goroutines
// (run with -race): commits of two branches, a proposal and the accessors.
func TestPublicGroupConcurrentUse(t *testing.T) {
	r := newObsRoom(t, CipherSuite(1), "concurrent", GroupConfig{})
	kb := r.keyPackage("bob")
	r.apply("alice", r.commit("alice", &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}}),
		map[string]*KeyPackageBundle{"bob": kb})
	msgs := []*MLSMessage{
		roundTrip(t, r.commit("alice", &CommitOptions{ForcePath: true}).Message),
		roundTrip(t, r.commit("bob", &CommitOptions{ForcePath: true}).Message),
	}
	prop, err := ExternalProposal(r.cs, r.obs.GroupID(), r.obs.Epoch(), 0, r.server, &RemoveProposal{Removed: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := r.obs
	want := make([][]byte, len(msgs))
	for i, m := range msgs {
		next, _, err := p.ProcessCommit(m, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = pgContext(t, next)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for k := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				i := k % len(msgs)
				next, _, err := p.ProcessCommit(msgs[i], time.Time{})
				if err != nil {
					errs <- err
					return
				}
				if c := next.GroupContext(); !bytes.Equal(must(c.Marshal()), want[i]) {
					errs <- fmt.Errorf("commit %d gave another state", i)
					return
				}
				if _, _, err := p.ProcessProposal(prop, time.Time{}); err != nil {
					errs <- err
					return
				}
				if _, err := p.Tree().TreeHash(); err != nil || len(p.Members()) != 2 {
					errs <- fmt.Errorf("accessors: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestPublicGroupReInit: after a ReInit commit the observer, like the
// members, accepts no more handshake messages of the group.
func TestPublicGroupReInit(t *testing.T) {
	r := newObsRoom(t, CipherSuite(1), "reinit", GroupConfig{})
	kb := r.keyPackage("bob")
	r.apply("alice", r.commit("alice", &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}}),
		map[string]*KeyPackageBundle{"bob": kb})
	ri := &ReInitProposal{GroupID: []byte("reinit 2"), Version: ProtocolVersionMLS10, CipherSuite: 1, Extensions: Extensions{}}
	oc := r.apply("bob", r.commit("bob", &CommitOptions{Proposals: []Proposal{ri}}), nil)
	got, ok := r.obs.PendingReInit()
	if oc.ReInit == nil || !ok || string(got.GroupID) != "reinit 2" {
		t.Fatalf("reinit not reported: %+v, %v", oc.ReInit, ok)
	}
	if r.members["alice"].Active() {
		t.Fatal("alice is still active")
	}
	prop, err := ExternalProposal(r.cs, r.obs.GroupID(), r.obs.Epoch(), 0, r.server, &RemoveProposal{Removed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.obs.ProcessProposal(prop, time.Time{}); !errors.Is(err, ErrGroupInactive) || ObserverReasonOf(err) != ObserverInvalidProposal {
		t.Fatalf("proposal after reinit: %v", err)
	}
	forged := (&rejectRoom{obsRoom: r}).framed(t, 0, r.sigs["alice"], &Commit{Proposals: []ProposalOrRef{}}, nil)
	if _, _, err := r.obs.ProcessCommit(forged, time.Time{}); !errors.Is(err, ErrGroupInactive) || ObserverReasonOf(err) != ObserverInvalidCommit {
		t.Fatalf("commit after reinit: %v", err)
	}
}
