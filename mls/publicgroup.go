package mls

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"
)

// An external observer of a group (RFC 9420, Sections 6.1, 12.2-12.4.2 and
// 12.4.3.1, the checks that need no secret): the public state of one
// epoch, moved from epoch to epoch by PublicMessage commits, as a server
// that orders a group's handshake messages but is no member keeps it.

// PublicGroupConfig is an observer's validation policy. It must match the
// members' (their [GroupConfig]) wherever that decides a verdict, or the
// observer accepts commits the members reject.
type PublicGroupConfig struct {
	// Now is the time for the lifetime checks of the bootstrap tree's
	// key_package leaves (zero skips them). Commits and proposals take
	// their time per call.
	Now time.Time
	// ValidateCredential is the Authentication Service check of every
	// credential that enters the group (RFC 9420, Section 5.3.1).
	ValidateCredential func(cred *Credential, signatureKey []byte) error
	// AppData and KnownComponents are the members' [GroupConfig.AppData]
	// and [GroupConfig.KnownComponents]: the observer applies
	// AppDataUpdate proposals to compute the next GroupContext.
	AppData         AppDataUpdater
	KnownComponents []ComponentID
	// PSKs reports whether the members hold the value of a PSK. An
	// observer holds no PSK values; nil accepts every well-formed PSK ID.
	PSKs func(id *PreSharedKeyID) bool
	// ValidateLeaves, if set, replaces the sequential leaf validation of
	// the bootstrap tree (e.g. to spread [Tree.ValidateLeaves] over cores).
	ValidateLeaves func(t *Tree, opts *ValidationOptions) error
}

func (c *PublicGroupConfig) policy() *groupPolicy {
	return &groupPolicy{validateCredential: c.ValidateCredential, appData: c.AppData,
		knownComponents: c.KnownComponents, hasPSK: c.PSKs}
}

// PublicGroup is an external observer's state of one epoch of a group: the
// cipher suite, GroupContext, public ratchet tree, interim transcript hash
// and the proposals of the epoch (those processed by ProcessProposal, for
// commits that include them by reference). It runs the same
// validation code as a member ([Group]) for everything that needs no
// secret.
//
// A PublicGroup is an immutable value: [PublicGroup.ProcessCommit] and
// [PublicGroup.ProcessProposal] return a new PublicGroup and leave the
// receiver as it was, so a caller can keep one per branch of a DAG of
// commits and process two commits on the same parent from the same value.
// Copies share storage copy-on-write (see [Tree.Clone]). It is safe for
// concurrent use.
//
// # What an observer checks
//
// For a commit (a PublicMessage from a member or a new_member_commit
// sender): group ID and epoch; that the sender is a member; the
// FramedContent signature over this epoch's GroupContext (Section 6.1);
// the proposals, by value and by reference to proposals this PublicGroup
// processed in the epoch, exactly as a member validates and applies them
// (Sections 12.2, 12.3); the UpdatePath where present or required: the
// leaf node (signature, capabilities, source commit, keys unique), one
// path node per node of the filtered direct path, one ciphertext per
// member of each copath resolution, and parent hashes (Sections 7.9.2,
// 12.4.2); then the next GroupContext (epoch + 1, tree hash, confirmed
// transcript hash, extensions) and interim transcript hash.
//
// # What it cannot check
//
// The membership_tag (it needs the epoch's membership_key), the
// confirmation_tag (the confirmation_key), the path secrets' ciphertexts,
// an external commit's kem_output, PSK values, and the content of any
// PrivateMessage (rejected as [ObserverUnreadable]). A commit that passes
// here can therefore still be rejected by the members, when its committer
// is a member that lies inside the encryption. It cannot be a replay or a
// relabel: the signature binds the sender, the epoch and the whole
// GroupContext (hence the tree and the transcript) of the epoch it was
// made for, so another epoch's or another member's commit fails. The
// interim transcript hash takes the confirmation tag as carried; a wrong
// tag makes the members reject the commit, and any commit built on a
// state the members do not share fails its signature check here, because
// it is signed over the GroupContext the members compute.
//
// # Errors
//
// Every rejection is an [*ObserverError] whose Reason a server reports:
// "mls-replay" (another epoch or group: [ErrWrongEpoch], [ErrWrongGroup]),
// "mls-not-member", "mls-bad-signature" ([ErrBadSignature]),
// "mls-invalid-proposal" ([ErrInvalidProposal], [ErrUnknownProposal], ...),
// "mls-invalid-path" ([ErrBadUpdatePath], [ErrBadParentHash], leaf
// errors), "mls-invalid-commit" ([ErrInvalidCommit], ...),
// "mls-unreadable" ([ErrUnreadable]), "mls-malformed" and, when
// bootstrapping, "mls-invalid-group-info".
type PublicGroup struct {
	mu  sync.Mutex // guards st.tree, whose clones and hash cache write to it
	st  publicState
	cfg PublicGroupConfig
	// reinit is the ReInit proposal committed in the last epoch: the group
	// accepts no more handshake messages (RFC 9420, Section 11.2).
	reinit *ReInitProposal
}

// NewPublicGroup bootstraps an observer from a GroupInfo (RFC 9420, Section
// 12.4.3) and its ratchet tree: tree, or, if tree is nil, the GroupInfo's
// ratchet_tree extension. It validates the tree as a joiner does (Section
// 12.4.3.1, the checks that need no secret: tree hash equal to the
// GroupContext's, parent hashes, unmerged leaves, every leaf node, the
// group's extensions supported by every member) and the GroupInfo
// signature with the signer leaf's key, and derives the interim
// transcript hash from the GroupInfo's confirmation tag (Section 8.2). The
// GroupInfo is self-certifying only: whoever supplies it defines the group
// (for a room, its creator). tree is cloned (the caller may keep using it,
// but not concurrently with this call); gi is not kept.
func NewPublicGroup(gi *GroupInfo, tree *Tree, cfg *PublicGroupConfig) (*PublicGroup, error) {
	fail := func(err error) (*PublicGroup, error) { return nil, observerErr(ObserverInvalidGroupInfo, err) }
	if gi == nil {
		return nil, observerErr(ObserverMalformed, groupErrf("group info", ErrBadWelcome, "no GroupInfo"))
	}
	if cfg == nil {
		cfg = &PublicGroupConfig{}
	}
	cs := gi.GroupContext.CipherSuite
	if !cs.Supported() {
		return fail(&UnsupportedCipherSuiteError{Suite: cs})
	}
	if gi.GroupContext.Version != ProtocolVersionMLS10 {
		return fail(groupErrf("group info", ErrBadWelcome, "protocol version %d", gi.GroupContext.Version))
	}
	if len(gi.ConfirmationTag) != cs.Nh() {
		return fail(groupErrf("group info", ErrBadWelcome, "confirmation tag of %d bytes, want %d", len(gi.ConfirmationTag), cs.Nh()))
	}
	var t *Tree
	switch {
	case tree == nil:
		var err error
		if t, err = groupInfoTree(gi, nil); err != nil {
			return fail(err)
		}
	case tree.CipherSuite() != cs:
		return fail(groupErrf("ratchet tree", ErrBadWelcome, "tree of suite %v for a group of suite %v", tree.CipherSuite(), cs))
	default:
		t = tree.Clone()
	}
	if err := verifyGroupInfoTree(t, gi, cfg.Now, cfg.policy(), cfg.ValidateLeaves); err != nil {
		return fail(err)
	}
	// Keep a private copy of the GroupContext, not slices of gi.
	ctxBytes, err := gi.GroupContext.Marshal()
	if err != nil {
		return fail(groupErr("group info", err))
	}
	ctx, err := UnmarshalGroupContext(ctxBytes)
	if err != nil {
		return fail(groupErr("group info", err))
	}
	p := &PublicGroup{st: publicState{cs: cs, tree: t}, cfg: *cfg}
	if err := p.st.setEpoch(*ctx, ctxBytes, slices.Clone(gi.ConfirmationTag)); err != nil {
		return fail(err)
	}
	return p, nil
}

// ParsePublicGroup decodes an MLSMessage of wire format mls_group_info
// (with the ratchet_tree extension) and bootstraps an observer from it as
// [NewPublicGroup] does. Every error is an [*ObserverError]
// ("mls-malformed" for bytes that do not decode).
func ParsePublicGroup(groupInfo []byte, cfg *PublicGroupConfig) (*PublicGroup, error) {
	msg, err := UnmarshalMLSMessage(slices.Clone(groupInfo))
	if err != nil {
		return nil, observerErr(ObserverMalformed, err)
	}
	if msg.WireFormat != WireFormatGroupInfo || msg.GroupInfo == nil {
		return nil, observerErr(ObserverMalformed, groupErrf("group info", ErrInvalidMessage, "wire format %d is not a GroupInfo", msg.WireFormat))
	}
	return NewPublicGroup(msg.GroupInfo, nil, cfg)
}

// ObservedMember is a leaf a commit added or removed, with its
// credential and signature key.
type ObservedMember struct {
	Leaf         LeafIndex
	Credential   Credential
	SignatureKey []byte
}

// ObservedCommit summarises a commit a [PublicGroup] accepted.
type ObservedCommit struct {
	// Sender is the committer as the message names it, and Proposals the
	// proposals it covers in commit order, in the shape
	// [Group.InspectCommit] returns.
	Sender    Sender
	Proposals []CommitProposal
	// Committer is the committer's leaf in the new epoch (for an external
	// commit, the leaf the joiner took); Joiner describes that joiner.
	Committer LeafIndex
	External  bool
	Joiner    *ObservedMember
	// Added are the leaves the Adds filled (new tree); Removed the leaves
	// removed, with what they held in the old tree; Updated the leaves
	// replaced by Update proposals.
	Added, Removed []ObservedMember
	Updated        []LeafIndex
	// HasPath reports an UpdatePath; PSKs the PSKs the commit injects;
	// ReInit is set for a reinitialization.
	HasPath bool
	PSKs    []PreSharedKeyID
	ReInit  *ReInitProposal
	// Epoch is the new epoch's number.
	Epoch uint64
}

// ProcessCommit checks msg, a PublicMessage commit of the current epoch
// from a member or a new_member_commit sender, as the type documentation
// describes, and returns the state of the next epoch and a summary. p is
// unchanged. Proposals the commit includes by reference must have gone
// through [PublicGroup.ProcessProposal] on p (or the PublicGroup it was
// derived from in the same epoch). msg, and the bytes it was decoded
// from, must not be modified afterwards: the new state keeps parts of
// them.
//
// now is the time for the lifetime checks of added KeyPackages (zero
// skips them). For replicated validation pass what the members pass as
// [ProcessOptions.Now] for the same commit (a time fixed by the ordering
// layer, such as the commit event's timestamp), never a local clock: every
// server and member must reach the same verdict whenever it sees it.
func (p *PublicGroup) ProcessCommit(msg *MLSMessage, now time.Time) (*PublicGroup, *ObservedCommit, error) {
	pm, err := observedMessage(msg, ContentTypeCommit)
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reinit != nil {
		return nil, nil, observerErr(ObserverInvalidCommit, groupErr("commit", ErrGroupInactive))
	}
	s := &p.st
	// A memo (see [Memo]) answers a commit accepted on this state before.
	m := memo.Load()
	var mk memoKey
	if m != nil && p.cfg.memoizable() {
		if raw, err := msg.Marshal(); err == nil {
			mk = commitKey(s, raw, now)
			if next, oc, ok := m.observed(mk); ok {
				return next, oc, nil
			}
		} else {
			m = nil // not encodable: checked, never remembered
		}
	} else {
		m = nil
	}
	ac, err := s.authenticate(pm)
	if err != nil {
		return nil, nil, err
	}
	if len(ac.Auth.ConfirmationTag) != s.cs.Nh() {
		return nil, nil, observerErr(ObserverInvalidCommit, groupErrf("commit", ErrInvalidCommit,
			"confirmation tag of %d bytes, want %d", len(ac.Auth.ConfirmationTag), s.cs.Nh()))
	}
	n := s.clone()
	pc, reason, err := s.verifyCommit(&n, ac, now, p.cfg.policy())
	if err != nil {
		return nil, nil, observerErr(reason, err)
	}
	if err := n.setEpoch(pc.ctx, pc.ctxBytes, slices.Clone(ac.Auth.ConfirmationTag)); err != nil {
		return nil, nil, observerErr(ObserverInvalidCommit, err)
	}
	a := pc.a
	oc := &ObservedCommit{Sender: ac.Content.Sender, Proposals: commitProposals(pc.list), Committer: pc.committer,
		External: ac.Content.Sender.SenderType == SenderTypeNewMemberCommit, Updated: a.updated,
		HasPath: pc.path != nil, PSKs: a.psks, ReInit: a.reinit, Epoch: n.ctx.Epoch}
	for _, l := range a.added {
		oc.Added = append(oc.Added, observedMember(n.tree, l))
	}
	for _, l := range a.removed {
		oc.Removed = append(oc.Removed, observedMember(s.tree, l))
	}
	if oc.External {
		j := observedMember(n.tree, pc.committer)
		oc.Joiner = &j
	}
	next := &PublicGroup{st: n, cfg: p.cfg, reinit: a.reinit}
	if m != nil {
		m.addObserved(mk, next, oc)
	}
	return next, oc, nil
}

func observedMember(t *Tree, l LeafIndex) ObservedMember {
	m := ObservedMember{Leaf: l}
	if ln, ok := t.Leaf(l); ok {
		m.Credential, m.SignatureKey = ln.Credential, ln.SignatureKey
	}
	return m
}

// ObservedProposal is a proposal a [PublicGroup] accepted.
type ObservedProposal struct {
	Sender   Sender
	Proposal Proposal
	// Ref is its ProposalRef, by which commits of the epoch include it.
	Ref []byte
}

// ProcessProposal checks msg, a PublicMessage proposal of the current
// epoch from a member, an external sender of the group's external_senders
// extension or a new member (its own Add), as a member does (signature,
// sender rules, the proposal's own validity, RFC 9420, Section 12.1), and
// returns a state that also holds it for commits of this epoch that
// include it by reference. p is unchanged. The membership tag is not
// checked (see [PublicGroup]). now is as for [PublicGroup.ProcessCommit].
func (p *PublicGroup) ProcessProposal(msg *MLSMessage, now time.Time) (*PublicGroup, *ObservedProposal, error) {
	pm, err := observedMessage(msg, ContentTypeProposal)
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reinit != nil {
		return nil, nil, observerErr(ObserverInvalidProposal, groupErr("proposal", ErrGroupInactive))
	}
	s := &p.st
	ac, err := s.authenticate(pm)
	if err != nil {
		return nil, nil, err
	}
	ref, err := s.checkProposal(ac, now, p.cfg.policy())
	if err != nil {
		return nil, nil, observerErr(ObserverInvalidProposal, err)
	}
	n := s.clone()
	n.cacheProposal(cachedProposal{ref: ref, proposal: ac.Content.Proposal, sender: ac.Content.Sender})
	return &PublicGroup{st: n, cfg: p.cfg}, &ObservedProposal{Sender: ac.Content.Sender, Proposal: ac.Content.Proposal, Ref: ref}, nil
}

// observedMessage returns the PublicMessage of msg if it carries content
// of type want.
func observedMessage(msg *MLSMessage, want ContentType) (*PublicMessage, error) {
	const step = "observe"
	switch {
	case msg == nil:
		return nil, observerErr(ObserverMalformed, groupErrf(step, ErrInvalidMessage, "nil message"))
	case msg.WireFormat == WireFormatPrivateMessage:
		return nil, observerErr(ObserverUnreadable, groupErr(step, ErrUnreadable))
	case msg.WireFormat != WireFormatPublicMessage || msg.PublicMessage == nil:
		return nil, observerErr(ObserverMalformed, groupErrf(step, ErrInvalidMessage, "wire format %d is not a PublicMessage", msg.WireFormat))
	case msg.PublicMessage.Content.ContentType != want:
		return nil, observerErr(ObserverMalformed, groupErrf(step, ErrInvalidMessage, "content type %d, want %d",
			msg.PublicMessage.Content.ContentType, want))
	}
	return msg.PublicMessage, nil
}

// authenticate checks a PublicMessage's group and epoch, resolves its
// sender's signature key in this epoch and verifies the signature
// (RFC 9420, Section 6.1); the membership tag cannot be checked.
func (s *publicState) authenticate(pm *PublicMessage) (*AuthenticatedContent, error) {
	const step = "observe"
	c := &pm.Content
	if !bytes.Equal(c.GroupID, s.ctx.GroupID) {
		return nil, observerErr(ObserverReplay, groupErr(step, ErrWrongGroup))
	}
	if c.Epoch != s.ctx.Epoch {
		return nil, observerErr(ObserverReplay, groupErr(step,
			fmt.Errorf("%w: epoch %d, the group is in epoch %d", ErrWrongEpoch, c.Epoch, s.ctx.Epoch)))
	}
	if err := checkPublicSender(c); err != nil {
		return nil, observerErr(ObserverMalformed, groupErr(step, err))
	}
	key, err := publicSenderKey(s.tree, &s.ctx, c, c.Sender)
	if err != nil {
		reason := ObserverNotMember
		switch c.Sender.SenderType {
		case SenderTypeNewMemberCommit:
			reason = ObserverInvalidPath
		case SenderTypeNewMemberProposal:
			reason = ObserverInvalidProposal
		case SenderTypeMember, SenderTypeExternal:
		default:
			reason = ObserverMalformed
		}
		return nil, observerErr(reason, groupErr("sender", err))
	}
	ac, err := verifyPublicContent(s.cs, s.ctxBytes, pm, func(Sender) ([]byte, error) { return key, nil })
	if err != nil {
		reason := ObserverInvalidCommit
		if RejectReason(err) == ReasonBadSignature {
			reason = ObserverBadSignature
		}
		return nil, observerErr(reason, groupErr("signature", err))
	}
	return ac, nil
}

// CipherSuite returns the group's cipher suite.
func (p *PublicGroup) CipherSuite() CipherSuite { return p.st.cs }

// GroupID returns the group ID.
func (p *PublicGroup) GroupID() []byte { return slices.Clone(p.st.ctx.GroupID) }

// Epoch returns the current epoch number.
func (p *PublicGroup) Epoch() uint64 { return p.st.ctx.Epoch }

// GroupContext returns a copy of the current GroupContext.
func (p *PublicGroup) GroupContext() GroupContext {
	c, err := UnmarshalGroupContext(p.st.ctxBytes)
	if err != nil {
		// ctxBytes is an encoding this package produced.
		return GroupContext{}
	}
	return *c
}

// Extensions returns a copy of the GroupContext extensions.
func (p *PublicGroup) Extensions() Extensions { return p.GroupContext().Extensions }

// Tree returns a copy of the ratchet tree (cheap: copy-on-write).
func (p *PublicGroup) Tree() *Tree {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st.tree.Clone()
}

// Members returns the leaf index of every member.
func (p *PublicGroup) Members() []LeafIndex {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(p.st.tree.Members())
}

// Leaf returns a decoded copy of the member's LeafNode at leaf l, or false
// if l is blank or outside the tree.
func (p *PublicGroup) Leaf(l LeafIndex) (*LeafNode, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st.tree.Leaf(l)
}

// InterimTranscriptHash returns the epoch's interim transcript hash
// (RFC 9420, Section 8.2), which the next commit's confirmed transcript
// hash extends.
func (p *PublicGroup) InterimTranscriptHash() []byte { return slices.Clone(p.st.interim) }

// PendingReInit returns the ReInit proposal committed in the last epoch,
// if the group was reinitialized; the observer then accepts no more
// handshake messages (RFC 9420, Section 11.2).
func (p *PublicGroup) PendingReInit() (*ReInitProposal, bool) { return p.reinit, p.reinit != nil }
