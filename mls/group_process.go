package mls

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// Processing received messages (RFC 9420, Sections 6, 12.1 and 12.4.2).

// ProcessOptions parameterise [Group.ProcessMessage].
type ProcessOptions struct {
	// EpochID identifies the epoch a commit creates: an opaque ID of the
	// commit chosen by the caller (e.g. its event ID in the ordering layer).
	EpochID []byte
	// Now is the current time: KeyPackage lifetimes are checked against it
	// (zero skips the check), a superseded epoch is retained until
	// Now + [GroupConfig.RetainFor], and retained epochs whose deadline is
	// before Now are erased (as by [Group.Expire]) before the message is
	// looked at, so that no message decrypts in an expired epoch.
	Now time.Time
	// LifetimeAt, when set, is the time KeyPackage lifetimes (of Adds in
	// proposals and commits) are checked against instead of Now. For
	// replicated validation it is a time every member and server uses for
	// the same message (the event's timestamp in the ordering layer, as
	// [PublicGroup.ProcessCommit] is given), so that all reach the same
	// verdict; retention still follows Now.
	LifetimeAt time.Time
}

// lifetimeAt is the time KeyPackage lifetimes are checked against.
func (o *ProcessOptions) lifetimeAt() time.Time {
	if !o.LifetimeAt.IsZero() {
		return o.LifetimeAt
	}
	return o.Now
}

// CommitSummary describes the effect of a processed commit.
type CommitSummary struct {
	// Own is set when the commit was this member's pending commit.
	Own bool
	// Added, Removed and Updated list the leaves the proposals changed.
	Added, Removed, Updated []LeafIndex
	// PSKs lists the PSKs injected into the new epoch.
	PSKs []PreSharedKeyID
	// ReInit is set when the commit reinitializes the group.
	ReInit *ReInitProposal
	// RemovedSelf is set when the commit removed this member: the group is
	// then inactive and stays in its last epoch.
	RemovedSelf bool
	// External is set for an external commit; ExternalJoiner is the
	// joiner's leaf.
	External       bool
	ExternalJoiner LeafIndex
}

// ProcessedMessage is the outcome of [Group.ProcessMessage].
type ProcessedMessage struct {
	ContentType       ContentType
	Sender            Sender
	Epoch             uint64
	AuthenticatedData []byte
	// ApplicationData is set for application messages.
	ApplicationData []byte
	// Proposal and ProposalRef are set for proposals (cached until a
	// commit).
	Proposal    Proposal
	ProposalRef []byte
	// Commit is set for commits.
	Commit *CommitSummary
}

// ProcessMessage processes one message of the group: an application
// message, a proposal (validated for its sender and cached for the epoch)
// or a commit (validated as RFC 9420, Section 12.4.2 requires and, if
// valid, moving the group to the next epoch). On error the group is
// unchanged (apart from the expiry of retained epochs whose deadline
// passed, see [ProcessOptions.Now]).
func (g *Group) ProcessMessage(msg *MLSMessage, opts *ProcessOptions) (*ProcessedMessage, error) {
	if opts == nil {
		opts = &ProcessOptions{}
	}
	if !opts.Now.IsZero() {
		g.Expire(opts.Now)
	}
	if msg == nil {
		return nil, groupErrf("message", ErrInvalidMessage, "nil message")
	}
	var groupID []byte
	var epoch uint64
	switch msg.WireFormat {
	case WireFormatPublicMessage:
		if msg.PublicMessage == nil {
			return nil, groupErrf("message", ErrInvalidMessage, "no PublicMessage")
		}
		groupID, epoch = msg.PublicMessage.Content.GroupID, msg.PublicMessage.Content.Epoch
	case WireFormatPrivateMessage:
		if msg.PrivateMessage == nil {
			return nil, groupErrf("message", ErrInvalidMessage, "no PrivateMessage")
		}
		groupID, epoch = msg.PrivateMessage.GroupID, msg.PrivateMessage.Epoch
	default:
		return nil, groupErrf("message", ErrInvalidMessage, "wire format %d is not a group message", msg.WireFormat)
	}
	if !bytes.Equal(groupID, g.ctx.GroupID) {
		return nil, groupErr("message", ErrWrongGroup)
	}
	if own, ok, err := g.ownMessage(msg, opts); ok || err != nil {
		return own, err
	}
	if epoch != g.ctx.Epoch {
		if msg.WireFormat == WireFormatPrivateMessage && msg.PrivateMessage.ContentType == ContentTypeApplication {
			return g.processRetained(msg.PrivateMessage)
		}
		return nil, groupErr("message", fmt.Errorf("%w: epoch %d, the group is in epoch %d", ErrWrongEpoch, epoch, g.ctx.Epoch))
	}
	var ac *AuthenticatedContent
	var err error
	if msg.WireFormat == WireFormatPublicMessage {
		pm := msg.PublicMessage
		ac, err = g.prot.UnprotectPublic(pm, func(s Sender) ([]byte, error) { return g.senderKey(&pm.Content, s) })
	} else {
		if msg.PrivateMessage.ContentType != ContentTypeApplication && g.inactive {
			return nil, groupErr("message", ErrGroupInactive)
		}
		ac, err = g.prot.UnprotectPrivate(msg.PrivateMessage, g.signerKey)
		if err != nil && msg.PrivateMessage.ContentType == ContentTypeApplication && g.hasRetained(epoch) {
			// A branch epoch with the same number (a fork) may hold it.
			if out, rerr := g.processRetained(msg.PrivateMessage); rerr == nil {
				return out, nil
			}
		}
	}
	if err != nil {
		return nil, groupErr("unprotect", err)
	}
	out := &ProcessedMessage{ContentType: ac.Content.ContentType, Sender: ac.Content.Sender, Epoch: epoch,
		AuthenticatedData: ac.Content.AuthenticatedData}
	switch ac.Content.ContentType {
	case ContentTypeApplication:
		out.ApplicationData = ac.Content.ApplicationData
		return out, nil
	case ContentTypeProposal:
		if g.inactive {
			return nil, groupErr("proposal", ErrGroupInactive)
		}
		ref, err := g.receiveProposal(ac, opts.lifetimeAt())
		if err != nil {
			return nil, err
		}
		out.Proposal, out.ProposalRef = ac.Content.Proposal, ref
		return out, nil
	case ContentTypeCommit:
		if g.inactive {
			return nil, groupErr("commit", ErrGroupInactive)
		}
		sum, err := g.processCommit(ac, opts)
		if err != nil {
			return nil, err
		}
		out.Commit = sum
		return out, nil
	}
	return nil, groupErrf("message", ErrInvalidMessage, "content type %d", ac.Content.ContentType)
}

// senderKey returns the signature key of a PublicMessage's sender; a new
// member signs with the key in its own message (RFC 9420, Section 6.1).
func (g *Group) senderKey(c *FramedContent, s Sender) ([]byte, error) {
	return publicSenderKey(g.tree, &g.ctx, c, s)
}

// ownMessage recognises this member's own pending commit and sent
// proposals coming back from the ordering layer.
func (g *Group) ownMessage(msg *MLSMessage, opts *ProcessOptions) (*ProcessedMessage, bool, error) {
	if g.pending == nil && g.proposals.len() == 0 {
		return nil, false, nil
	}
	raw, err := msg.Marshal()
	if err != nil {
		return nil, false, nil
	}
	if g.pending != nil && bytes.Equal(raw, g.pending.raw) {
		pc := g.pending
		next := pc.next.deepCopy()
		g.advanceTo(next, opts.EpochID, opts.Now)
		return &ProcessedMessage{ContentType: ContentTypeCommit, Sender: MemberSender(g.me), Epoch: g.ctx.Epoch - 1,
			Commit: &CommitSummary{Own: true}}, true, nil
	}
	for _, cp := range g.proposals.all() {
		if cp.raw != nil && bytes.Equal(cp.raw, raw) {
			return &ProcessedMessage{ContentType: ContentTypeProposal, Sender: cp.sender, Epoch: g.ctx.Epoch,
				Proposal: cp.proposal, ProposalRef: cp.ref}, true, nil
		}
	}
	return nil, false, nil
}

// receiveProposal validates a received proposal for its sender and caches
// it (RFC 9420, Section 12.1), as [publicState.checkProposal] does.
func (g *Group) receiveProposal(ac *AuthenticatedContent, now time.Time) ([]byte, error) {
	s := ac.Content.Sender
	if s.SenderType == SenderTypeMember && s.LeafIndex == g.me {
		return nil, groupErrf("proposal", ErrOwnMessage, "a proposal from this member it did not send")
	}
	ref, err := g.checkProposal(ac, now, g.policy())
	if err != nil {
		return nil, err
	}
	g.cacheProposal(cachedProposal{ref: ref, proposal: ac.Content.Proposal, sender: s})
	return ref, nil
}

// processCommit validates and applies a commit (RFC 9420, Section 12.4.2)
// on a copy of the group and installs the copy on success: the checks
// that need no secret are [publicState.verifyCommit]'s, shared with
// [PublicGroup]; then the path secret, the key schedule and the
// confirmation tag.
func (g *Group) processCommit(ac *AuthenticatedContent, opts *ProcessOptions) (*CommitSummary, error) {
	cs := g.cs
	sender := ac.Content.Sender
	if sender.SenderType == SenderTypeMember && sender.LeafIndex == g.me {
		return nil, groupErrf("commit", ErrOwnMessage, "a commit from this member that is not its pending commit")
	}
	n := g.clone()
	pc, _, err := g.verifyCommit(&n.publicState, ac, opts.lifetimeAt(), g.policy())
	if err != nil {
		return nil, err
	}
	a := pc.a
	external := sender.SenderType == SenderTypeNewMemberCommit
	sum := &CommitSummary{Added: a.added, Removed: a.removed, Updated: a.updated, PSKs: a.psks, ReInit: a.reinit, External: external}
	if external {
		sum.ExternalJoiner = pc.committer
	}
	if slices.Contains(a.removed, g.me) {
		// This member cannot follow the group into the new epoch.
		sum.RemovedSelf = true
		g.inactive = true
		g.proposals = proposalCache{}
		return sum, nil
	}
	if a.myUpdate, err = g.ownUpdateKey(pc.list); err != nil {
		return nil, err
	}
	if a.myUpdate != nil {
		if n.keys, err = NewTreePrivateKeys(cs, g.me, a.myUpdate); err != nil {
			return nil, err
		}
	}
	var commitSecret []byte
	if pc.path != nil {
		pp, err := n.tree.decryptPath(pc.path, n.keys)
		if err != nil {
			return nil, groupErr("path", err)
		}
		n.keys, commitSecret = pp.Keys, pp.CommitSecret
	} else {
		n.keys.Prune(n.tree)
	}
	initSecret := g.secrets.InitSecret
	if external {
		priv, _, err := g.secrets.ExternalKeyPair()
		if err != nil {
			return nil, err
		}
		if initSecret, err = cs.ExternalInitReceive(priv, a.externalInit.KEMOutput); err != nil {
			return nil, groupErr("external init", fmt.Errorf("%w: %w", ErrDecrypt, err))
		}
	}
	psk, err := g.pskSecret(a.psks)
	if err != nil {
		return nil, err
	}
	es, err := cs.AdvanceEpoch(initSecret, commitSecret, psk, pc.ctxBytes)
	if err != nil {
		return nil, err
	}
	if err := VerifyConfirmationTag(cs, es.ConfirmationKey, pc.confirmed, ac.Auth.ConfirmationTag); err != nil {
		return nil, groupErr("confirmation tag", err)
	}
	if err := n.installEpoch(pc.ctx, pc.ctxBytes, es, ac.Auth.ConfirmationTag); err != nil {
		return nil, err
	}
	n.applyStatus(a)
	g.advanceTo(n, opts.EpochID, opts.Now)
	return sum, nil
}
