package mls

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Commit creation (RFC 9420, Section 12.4.1).

// CommitOptions parameterise [Group.Commit].
type CommitOptions struct {
	// Proposals are included by value (from this member).
	Proposals []Proposal
	// NoPending leaves out the proposals received in this epoch; by default
	// every cached proposal is committed by reference (this member's own
	// Updates excepted, which a committer must not include).
	NoPending bool
	// ForcePath adds an UpdatePath even when no proposal requires one.
	ForcePath bool
	// AuthenticatedData is the commit's authenticated_data.
	AuthenticatedData []byte
	// Now is the time for KeyPackage lifetime checks (zero skips them).
	Now time.Time
}

// PendingCommit is a commit this member created, not yet merged: the
// ordering layer decides whether it takes effect. Merge it with
// [Group.MergeCommit], or let it come back through [Group.ProcessMessage].
type PendingCommit struct {
	// Message is the commit to send to the group.
	Message *MLSMessage
	// Welcome invites the members the commit adds (nil if none).
	Welcome *Welcome

	raw  []byte
	next *Group
}

// GroupInfo returns the signed GroupInfo of the epoch the commit creates
// (with the ratchet_tree extension if withTree), as [Group.GroupInfo] does
// once the commit is merged. It is made on request: signing it, deriving
// the external_pub and encoding the tree cost as much as framing and
// signing the commit itself, and a commit that adds no member needs none.
func (pc *PendingCommit) GroupInfo(withTree bool) (*GroupInfo, error) {
	if pc == nil || pc.next == nil {
		return nil, fmt.Errorf("%w: no pending commit", ErrInvalidCommit)
	}
	return pc.next.GroupInfo(withTree)
}

// Commit creates a commit of the cached proposals and opts.Proposals
// (RFC 9420, Section 12.4.1), with an UpdatePath when one is required or
// opts.ForcePath is set. It does not change g; the result is merged later.
func (g *Group) Commit(rand io.Reader, opts *CommitOptions) (*PendingCommit, error) {
	if opts == nil {
		opts = &CommitOptions{}
	}
	if g.inactive {
		return nil, ErrGroupInactive
	}
	me := MemberSender(g.me)
	var list []proposalEntry
	var pors []ProposalOrRef
	if !opts.NoPending {
		for _, cp := range g.proposals.all() {
			if _, upd := cp.proposal.(*UpdateProposal); upd && cp.sender == me {
				continue
			}
			list = append(list, proposalEntry{p: cp.proposal, sender: cp.sender, ref: cp.ref})
			pors = append(pors, ProposalOrRef{Reference: cp.ref})
		}
	}
	for _, p := range opts.Proposals {
		list = append(list, proposalEntry{p: p, sender: me})
		pors = append(pors, ProposalOrRef{Proposal: p})
	}
	if pors == nil {
		pors = []ProposalOrRef{}
	}
	n := g.clone()
	a, err := g.applyProposals(n, list, me, opts.Now)
	if err != nil {
		return nil, err
	}
	return g.finishCommit(rand, n, a, &Commit{Proposals: pors}, me, opts.ForcePath || a.pathRequired,
		opts.AuthenticatedData, g.secrets.InitSecret, nil)
}

// finishCommit creates the path, signs the commit, runs the key schedule
// and builds the GroupInfo and Welcome. n is the copy of g the proposals
// were applied to; initSecret is the previous epoch's init_secret (or an
// external commit's).
func (g *Group) finishCommit(rand io.Reader, n *Group, a *applied, commit *Commit, sender Sender, path bool,
	aad []byte, initSecret []byte, tmpl *LeafNode) (*PendingCommit, error) {
	cs := g.cs
	provisional := GroupContext{Version: g.ctx.Version, CipherSuite: cs, GroupID: g.ctx.GroupID,
		Epoch: g.ctx.Epoch + 1, ConfirmedTranscriptHash: g.ctx.ConfirmedTranscriptHash, Extensions: a.extensions}
	var commitSecret []byte
	var res *UpdatePathResult
	if path {
		if tmpl == nil {
			cur, ok := n.tree.Leaf(n.me)
			if !ok {
				return nil, errors.New("mls: committer leaf is blank")
			}
			tmpl = &LeafNode{SignatureKey: cur.SignatureKey, Credential: cur.Credential,
				Capabilities: cur.Capabilities, Extensions: nonNilExtensions(cur.Extensions)}
		}
		var err error
		res, err = n.tree.CreateUpdatePath(n.me, &UpdatePathParams{Leaf: *tmpl, SigningKey: n.sig,
			GroupContext: provisional, Exclude: a.added}, rand)
		if err != nil {
			return nil, err
		}
		commit.Path = res.Path
		n.keys = res.Keys
		commitSecret = res.CommitSecret
	} else {
		n.keys.Prune(n.tree)
	}
	psk, err := g.pskSecret(a.psks)
	if err != nil {
		return nil, err
	}
	if aad == nil {
		aad = []byte{}
	}
	c := FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: sender, AuthenticatedData: aad,
		ContentType: ContentTypeCommit, Commit: commit}
	var newCtx GroupContext
	var ctxBytes []byte
	var es *EpochSecrets
	setTag := func(ac *AuthenticatedContent) error {
		confirmed, err := ConfirmedTranscriptHash(cs, g.interim, ac)
		if err != nil {
			return err
		}
		th, err := n.tree.TreeHash()
		if err != nil {
			return err
		}
		newCtx = provisional
		newCtx.TreeHash, newCtx.ConfirmedTranscriptHash = th, confirmed
		if ctxBytes, err = newCtx.Marshal(); err != nil {
			return err
		}
		if es, err = cs.AdvanceEpoch(initSecret, commitSecret, psk, ctxBytes); err != nil {
			return err
		}
		ac.Auth.ConfirmationTag, err = ConfirmationTag(cs, es.ConfirmationKey, confirmed)
		return err
	}
	var msg *MLSMessage
	var ac *AuthenticatedContent
	if sender.SenderType == SenderTypeNewMemberCommit {
		msg, ac, err = g.frameExternal(&c, n.sig, setTag)
	} else {
		msg, ac, err = g.frame(rand, &c, setTag)
	}
	if err != nil {
		return nil, err
	}
	if err := n.installEpoch(newCtx, ctxBytes, es, ac.Auth.ConfirmationTag); err != nil {
		return nil, err
	}
	n.applyStatus(a)
	pc := &PendingCommit{Message: msg, next: n}
	if pc.raw, err = msg.Marshal(); err != nil {
		return nil, err
	}
	if len(a.added) > 0 {
		gi, err := n.GroupInfo(n.cfg.RatchetTreeInWelcome)
		if err != nil {
			return nil, err
		}
		if pc.Welcome, err = NewWelcome(cs, es.WelcomeSecret, gi); err != nil {
			return nil, err
		}
		for i, l := range a.added {
			gs := &GroupSecrets{JoinerSecret: es.JoinerSecret, PSKs: slices.Clone(a.psks)}
			if gs.PSKs == nil {
				gs.PSKs = []PreSharedKeyID{}
			}
			if res != nil {
				if s, ok := res.PathSecretFor(l); ok {
					gs.PathSecret = &PathSecret{PathSecret: s}
				}
			}
			if err := pc.Welcome.AddMember(a.addedKPs[i], gs, rand); err != nil {
				return nil, err
			}
		}
	}
	if sender.SenderType == SenderTypeMember {
		g.pending = pc
	}
	return pc, nil
}

// applyStatus records the end of the group for this member: a ReInit
// commit makes the group inactive (RFC 9420, Section 11.2).
func (g *Group) applyStatus(a *applied) {
	if a.reinit != nil {
		g.inactive = true
		g.reinit = a.reinit
	}
}

// MergeCommit makes the pending commit pc (created by [Group.Commit] on
// this state) take effect: g moves to the new epoch, whose ID becomes
// epochID. The previous epoch is retained for decryption as
// [Group.RetainEpoch] describes, with deadline now + RetainFor.
func (g *Group) MergeCommit(pc *PendingCommit, epochID []byte, now time.Time) error {
	if pc == nil || pc.next == nil {
		return fmt.Errorf("%w: nothing to merge", ErrInvalidCommit)
	}
	if g.pending != pc {
		return fmt.Errorf("%w: commit was not created on this state", ErrInvalidCommit)
	}
	next := pc.next.deepCopy()
	g.advanceTo(next, epochID, now)
	return nil
}

// GroupInfo returns the signed GroupInfo of the current epoch (RFC 9420,
// Section 12.4.3), with the external_pub extension for external joiners
// and, if withTree, the ratchet_tree extension.
func (g *Group) GroupInfo(withTree bool) (*GroupInfo, error) {
	_, pub, err := g.secrets.ExternalKeyPair()
	if err != nil {
		return nil, err
	}
	epData, err := (&ExternalPub{ExternalPub: pub}).Marshal()
	if err != nil {
		return nil, err
	}
	exts := Extensions{{ExtensionType: ExtensionTypeExternalPub, ExtensionData: epData}}
	if withTree {
		td, err := g.tree.Encode()
		if err != nil {
			return nil, err
		}
		exts = append(exts, Extension{ExtensionType: ExtensionTypeRatchetTree, ExtensionData: td})
	}
	gi := &GroupInfo{GroupContext: g.GroupContext(), Extensions: exts, ConfirmationTag: slices.Clone(g.confTag), Signer: g.me}
	if err := gi.Sign(g.sig); err != nil {
		return nil, err
	}
	return gi, nil
}
