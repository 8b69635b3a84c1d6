package mls

import (
	"fmt"
	"slices"
	"time"
)

// The public state of one epoch and the validation of proposals and commits
// that needs no secret (RFC 9420, Sections 12.1-12.4.2). A member's [Group]
// embeds a publicState and adds its secrets; a [PublicGroup] (an external
// observer, such as a Rhizome server) is a publicState alone. Both run the
// rules below, so a member and an observer judge a commit by the same code.

// publicState is the public part of one epoch of a group: the GroupContext
// (RFC 9420, Section 8.1), the public ratchet tree, the interim transcript
// hash (Section 8.2) and the proposals received in the epoch (Section
// 12.4).
type publicState struct {
	cs       CipherSuite
	ctx      GroupContext
	ctxBytes []byte
	tree     *Tree
	interim  []byte // interim transcript hash of the epoch
	confTag  []byte // confirmation tag of the commit that created the epoch

	proposals proposalCache
}

// clone returns a copy of s that can be changed without affecting s (the
// tree is copy-on-write; see [Tree.Clone]).
func (s *publicState) clone() publicState {
	n := *s
	n.tree = s.tree.Clone()
	n.ctx.Extensions = slices.Clone(s.ctx.Extensions)
	return n
}

// setEpoch installs the public part of a new epoch: its GroupContext, the
// confirmation tag of the commit (or GroupInfo) that created it, and the
// interim transcript hash derived from the two; the proposal cache is
// emptied (proposals do not outlive their epoch, Section 12.4).
func (s *publicState) setEpoch(ctx GroupContext, ctxBytes, confTag []byte) error {
	interim, err := InterimTranscriptHash(s.cs, ctx.ConfirmedTranscriptHash, confTag)
	if err != nil {
		return err
	}
	s.ctx, s.ctxBytes, s.interim, s.confTag = ctx, ctxBytes, interim, confTag
	s.proposals = proposalCache{}
	return nil
}

// groupPolicy is the local policy that validating proposals and commits
// consults: the relevant part of a member's [GroupConfig] or of a
// [PublicGroupConfig]. A member and an observer of the same group must use
// the same policy to reach the same verdicts.
type groupPolicy struct {
	validateCredential func(cred *Credential, signatureKey []byte) error
	appData            AppDataUpdater
	knownComponents    []ComponentID
	// hasPSK reports whether the value of a PSK is available. nil accepts
	// every well-formed PSK ID (an observer holds no PSK values).
	hasPSK func(id *PreSharedKeyID) bool
}

// leafOptions returns the leaf validation options of a GroupContext.
func (p *groupPolicy) leafOptions(ctx *GroupContext, now time.Time) (*ValidationOptions, error) {
	rc, err := requiredCapabilities(ctx.Extensions)
	if err != nil {
		return nil, err
	}
	return &ValidationOptions{GroupID: ctx.GroupID, Now: now, RequiredCapabilities: rc,
		ValidateCredential: p.validateCredential}, nil
}

// publicSenderKey returns the signature key of a PublicMessage's sender in
// the epoch of t and ctx: a member's leaf, an external sender of the
// external_senders extension, or, for a new member, the key in its own
// message (RFC 9420, Section 6.1).
func publicSenderKey(t *Tree, ctx *GroupContext, c *FramedContent, s Sender) ([]byte, error) {
	switch s.SenderType {
	case SenderTypeNewMemberCommit:
		if c.ContentType != ContentTypeCommit || c.Commit == nil || c.Commit.Path == nil {
			return nil, fmt.Errorf("%w: external commit without a path", ErrInvalidCommit)
		}
		return c.Commit.Path.LeafNode.SignatureKey, nil
	case SenderTypeNewMemberProposal:
		p, ok := c.Proposal.(*AddProposal)
		if !ok {
			return nil, fmt.Errorf("%w: new member proposal is not an Add", ErrInvalidProposal)
		}
		return p.KeyPackage.LeafNode.SignatureKey, nil
	}
	return signerKeyIn(t, ctx, s)
}

// checkProposal validates a received proposal for its sender (RFC 9420,
// Section 12.1) and returns its ProposalRef. Validation that depends on
// the other proposals of a commit happens when the commit is processed.
func (s *publicState) checkProposal(ac *AuthenticatedContent, now time.Time, pol *groupPolicy) ([]byte, error) {
	sender := ac.Content.Sender
	p := ac.Content.Proposal
	if err := checkProposalSender(sender, p); err != nil {
		return nil, groupErr("proposal", err)
	}
	opts, err := pol.leafOptions(&s.ctx, now)
	if err != nil {
		return nil, groupErr("proposal", err)
	}
	switch p := p.(type) {
	case *AddProposal:
		if err := validateKeyPackage(s.tree, &s.ctx, &p.KeyPackage, opts); err != nil {
			return nil, groupErr("add", err)
		}
	case *UpdateProposal:
		if err := s.tree.CheckLeafNode(&p.LeafNode, sender.LeafIndex, LeafNodeInUpdate, opts); err != nil {
			return nil, groupErr("update", err)
		}
	case *RemoveProposal:
		if _, ok := s.tree.Leaf(p.Removed); !ok || uint32(p.Removed) >= s.tree.LeafCount() {
			return nil, groupErrf("remove", ErrInvalidProposal, "leaf %d is blank", p.Removed)
		}
	}
	ref, err := ac.ProposalRef(s.cs)
	if err != nil {
		return nil, err
	}
	return ref, nil
}

// cacheProposal keeps a validated proposal for commits of this epoch that
// reference it, once.
func (s *publicState) cacheProposal(cp cachedProposal) {
	s.proposals.add(cp)
}

// publicCommit is the outcome of the checks of a commit that need no
// secret: the resolved and applied proposals, the committer's leaf, the
// merged UpdatePath and the new epoch's GroupContext.
type publicCommit struct {
	list []proposalEntry
	a    *applied
	// committer is the committer's leaf in the new tree: the sender's, or
	// the leaf an external joiner takes.
	committer LeafIndex
	path      *mergedPath // nil for a commit without an UpdatePath
	confirmed []byte      // confirmed transcript hash of the new epoch
	ctx       GroupContext
	ctxBytes  []byte
}

// verifyCommit runs every check of a commit (RFC 9420, Section 12.4.2) that
// needs no secret on n, a clone of s, which ends up holding the new tree:
// the sender type, the proposal list (resolved against this epoch's cache,
// validated and applied, Sections 12.2 and 12.3), whether a path is
// required, an external joiner's leaf and resync, the UpdatePath's leaf and
// its merge (parent hashes, path length, ciphertext counts, Section 7.9.2),
// and the new GroupContext with the confirmed transcript hash. The
// signature of ac must already have been verified. What is left needs
// secrets: decrypting the path, the key schedule and the confirmation tag.
//
// The ObserverReason names the phase that failed, for [PublicGroup]; a
// [Group] ignores it.
func (s *publicState) verifyCommit(n *publicState, ac *AuthenticatedContent, now time.Time, pol *groupPolicy) (*publicCommit, ObserverReason, error) {
	sender := ac.Content.Sender
	commit := ac.Content.Commit
	if ac.Content.ContentType != ContentTypeCommit || commit == nil {
		return nil, ObserverInvalidCommit, groupErrf("commit", ErrInvalidMessage, "content type %d is not a commit", ac.Content.ContentType)
	}
	external := sender.SenderType == SenderTypeNewMemberCommit
	if !external && sender.SenderType != SenderTypeMember {
		return nil, ObserverInvalidCommit, groupErrf("commit", ErrInvalidCommit, "sender type %d", sender.SenderType)
	}
	list, err := s.resolveProposals(commit, sender)
	if err != nil {
		return nil, ObserverInvalidProposal, err
	}
	a, err := s.applyProposals(n, list, sender, now, pol)
	if err != nil {
		return nil, ObserverInvalidProposal, err
	}
	out := &publicCommit{list: list, a: a, committer: sender.LeafIndex}
	if (a.pathRequired || external) && commit.Path == nil {
		return nil, ObserverInvalidPath, groupErrf("commit", ErrInvalidCommit, "the proposals require a path")
	}
	provisional := GroupContext{Version: s.ctx.Version, CipherSuite: s.cs, GroupID: s.ctx.GroupID,
		Epoch: s.ctx.Epoch + 1, ConfirmedTranscriptHash: s.ctx.ConfirmedTranscriptHash, Extensions: a.extensions}
	if commit.Path != nil {
		if external {
			if out.committer, err = n.tree.ReserveLeaf(); err != nil {
				return nil, ObserverInvalidCommit, groupErr("external commit", err)
			}
			if err := s.checkResync(a, &commit.Path.LeafNode); err != nil {
				return nil, ObserverInvalidProposal, err
			}
		}
		vo, err := pol.leafOptions(&provisional, now)
		if err != nil {
			return nil, ObserverInvalidProposal, groupErr("path", err)
		}
		if err := n.tree.CheckLeafNode(&commit.Path.LeafNode, out.committer, LeafNodeInCommit, vo); err != nil {
			return nil, ObserverInvalidPath, groupErr("path leaf", err)
		}
		if out.path, err = n.tree.mergeUpdatePath(out.committer, commit.Path, provisional, a.added); err != nil {
			return nil, ObserverInvalidPath, groupErr("path", err)
		}
	}
	if out.confirmed, err = ConfirmedTranscriptHash(s.cs, s.interim, ac); err != nil {
		return nil, ObserverInvalidCommit, err
	}
	th, err := n.tree.TreeHash()
	if err != nil {
		return nil, ObserverInvalidCommit, err
	}
	out.ctx = provisional
	out.ctx.TreeHash, out.ctx.ConfirmedTranscriptHash = th, out.confirmed
	if out.ctxBytes, err = out.ctx.Marshal(); err != nil {
		return nil, ObserverInvalidCommit, err
	}
	return out, ObserverReasonNone, nil
}

// checkResync checks the Remove of an external commit: the removed leaf
// must hold the joiner's credential (RFC 9420, Section 12.2).
func (s *publicState) checkResync(a *applied, leaf *LeafNode) error {
	for _, l := range a.removed {
		old, ok := s.tree.Leaf(l)
		if !ok || !sameCredential(&old.Credential, &leaf.Credential) {
			return groupErrf("external commit", ErrInvalidProposal, "removes leaf %d of another client", l)
		}
	}
	return nil
}

// verifyGroupInfoTree validates t against gi (RFC 9420, Section 12.4.3.1,
// the checks that need no secret): structure, parent hashes and tree hash,
// every leaf (with validateLeaves if set), the group's extensions, and the
// GroupInfo signature by its signer's leaf.
func verifyGroupInfoTree(t *Tree, gi *GroupInfo, now time.Time, pol *groupPolicy, validateLeaves func(*Tree, *ValidationOptions) error) error {
	vo, err := pol.leafOptions(&gi.GroupContext, now)
	if err != nil {
		return groupErr("group info", err)
	}
	vo.TreeHash = gi.GroupContext.TreeHash
	if err := t.ValidateStructure(vo); err != nil {
		return groupErr("ratchet tree", err)
	}
	if validateLeaves != nil {
		err = validateLeaves(t, vo)
	} else {
		err = t.ValidateLeaves(0, LeafIndex(t.LeafCount()), vo)
	}
	if err != nil {
		return groupErr("ratchet tree", err)
	}
	if err := checkExtensionsSupported(t, gi.GroupContext.Extensions); err != nil {
		return groupErr("group info", err)
	}
	pub, ok := t.LeafSignatureKey(gi.Signer)
	if !ok || uint32(gi.Signer) >= t.LeafCount() {
		return groupErrf("group info", ErrBadWelcome, "signer leaf %d is blank", gi.Signer)
	}
	if err := gi.Verify(pub); err != nil {
		return groupErr("group info", fmt.Errorf("%w: %w", ErrBadSignature, err))
	}
	return nil
}
