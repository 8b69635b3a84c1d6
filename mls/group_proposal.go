package mls

import (
	"fmt"
	"io"
	"time"
)

// Proposals: sending, caching and the validation and application of a
// commit's proposal list (RFC 9420, Sections 12.1-12.3).

// Propose sends proposal p from this member (RFC 9420, Section 12.1) and
// caches it so that a later commit of this member includes it. For an
// Update use [Group.ProposeUpdate], which also keeps the new private key.
func (g *Group) Propose(rand io.Reader, p Proposal) (*MLSMessage, error) {
	if g.inactive {
		return nil, ErrGroupInactive
	}
	if _, ok := p.(*UpdateProposal); ok {
		return nil, fmt.Errorf("%w: use ProposeUpdate", ErrInvalidProposal)
	}
	return g.propose(rand, p, nil)
}

// ProposeUpdate sends an Update of this member's leaf with a fresh
// encryption key (RFC 9420, Section 12.1.2).
func (g *Group) ProposeUpdate(rand io.Reader) (*MLSMessage, error) {
	if g.inactive {
		return nil, ErrGroupInactive
	}
	cur, ok := g.tree.Leaf(g.me)
	if !ok {
		return nil, ErrBlankLeaf
	}
	priv, pub, err := g.cs.GenerateKEMKeyPair(rand)
	if err != nil {
		return nil, err
	}
	ln := LeafNode{EncryptionKey: pub, SignatureKey: cur.SignatureKey, Credential: cur.Credential,
		Capabilities: cur.Capabilities, Source: LeafNodeSourceUpdate, Extensions: nonNilExtensions(cur.Extensions)}
	if err := ln.Sign(g.cs, g.sig, g.ctx.GroupID, g.me); err != nil {
		return nil, err
	}
	raw, err := ln.Marshal()
	if err != nil {
		return nil, err
	}
	dec, err := UnmarshalLeafNode(raw)
	if err != nil {
		return nil, err
	}
	return g.propose(rand, &UpdateProposal{LeafNode: *dec}, priv)
}

// propose frames, signs, protects and caches a proposal of this member.
func (g *Group) propose(rand io.Reader, p Proposal, updatePriv []byte) (*MLSMessage, error) {
	c := FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: MemberSender(g.me),
		AuthenticatedData: []byte{}, ContentType: ContentTypeProposal, Proposal: p}
	msg, ac, err := g.frame(rand, &c, nil)
	if err != nil {
		return nil, err
	}
	ref, err := ac.ProposalRef(g.cs)
	if err != nil {
		return nil, err
	}
	raw, err := msg.Marshal()
	if err != nil {
		return nil, err
	}
	g.proposals.add(cachedProposal{ref: ref, proposal: p, sender: c.Sender, raw: raw, updatePriv: updatePriv})
	return msg, nil
}

// frame signs content of this member and protects it as this group's
// handshake wire format; setTag, if not nil, sets the confirmation tag
// between signing and protection.
func (g *Group) frame(rand io.Reader, c *FramedContent, setTag func(*AuthenticatedContent) error) (*MLSMessage, *AuthenticatedContent, error) {
	wf := WireFormatPublicMessage
	if g.cfg.EncryptHandshake {
		wf = WireFormatPrivateMessage
	}
	ac, err := g.prot.Sign(wf, c, g.sig)
	if err != nil {
		return nil, nil, err
	}
	if setTag != nil {
		if err := setTag(ac); err != nil {
			return nil, nil, err
		}
	}
	msg := &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: wf}
	if wf == WireFormatPrivateMessage {
		msg.PrivateMessage, err = g.prot.ProtectPrivate(rand, ac)
	} else {
		msg.PublicMessage, err = g.prot.ProtectPublic(ac)
	}
	if err != nil {
		return nil, nil, err
	}
	return msg, ac, nil
}

// proposalEntry is one proposal of a commit with its sender.
type proposalEntry struct {
	p      Proposal
	sender Sender
	ref    []byte // nil when by value
}

// resolveProposals turns a commit's ProposalOrRef list into proposals,
// looking references up in the epoch's cache.
func (s *publicState) resolveProposals(c *Commit, committer Sender) ([]proposalEntry, error) {
	out := make([]proposalEntry, 0, len(c.Proposals))
	for i := range c.Proposals {
		por := &c.Proposals[i]
		if por.Proposal != nil {
			out = append(out, proposalEntry{p: por.Proposal, sender: committer})
			continue
		}
		cp, ok := s.proposals.find(por.Reference)
		if !ok {
			return nil, groupErrf("proposal list", ErrUnknownProposal, "reference %x", por.Reference)
		}
		out = append(out, proposalEntry{p: cp.proposal, sender: cp.sender, ref: cp.ref})
	}
	return out, nil
}

// applied is the outcome of applying a proposal list to a copy of the
// group's tree.
type applied struct {
	extensions   Extensions
	added        []LeafIndex
	addedKPs     []*KeyPackage
	removed      []LeafIndex
	updated      []LeafIndex
	psks         []PreSharedKeyID
	reinit       *ReInitProposal
	externalInit *ExternalInitProposal
	pathRequired bool
	myUpdate     []byte // new leaf private key if this member's Update was applied (members only)
}

// pathRequiredFor reports whether a proposal type forces a commit to carry
// an UpdatePath (RFC 9420, Section 17.4 "Path Required"; SelfRemove as
// Remove, AppDataUpdate not, per draft-ietf-mls-extensions).
func pathRequiredFor(t ProposalType) bool {
	switch t {
	case ProposalTypeAdd, ProposalTypePreSharedKey, ProposalTypeReInit, ProposalTypeAppDataUpdate:
		return false
	}
	return true
}

// applyProposals is [publicState.applyProposals] for a member: it also
// finds the new leaf private key of this member's own Update, if the list
// holds one.
func (g *Group) applyProposals(n *Group, list []proposalEntry, committer Sender, now time.Time) (*applied, error) {
	a, err := g.publicState.applyProposals(&n.publicState, list, committer, now, g.policy())
	if err != nil {
		return nil, err
	}
	if a.myUpdate, err = g.ownUpdateKey(list); err != nil {
		return nil, err
	}
	return a, nil
}

// ownUpdateKey returns the new leaf private key of the Update of this
// member's leaf in list (nil if there is none): the member must have sent
// that Update itself.
func (g *Group) ownUpdateKey(list []proposalEntry) ([]byte, error) {
	for _, e := range list {
		if _, ok := e.p.(*UpdateProposal); !ok || e.sender != MemberSender(g.me) {
			continue
		}
		cp, ok := g.proposals.find(e.ref)
		if !ok || cp.updatePriv == nil {
			return nil, groupErrf("update", ErrNoPrivateKey, "an update of this member's leaf it did not send")
		}
		return cp.updatePriv, nil
	}
	return nil, nil
}

// applyProposals validates the proposal list of a commit from committer
// (RFC 9420, Section 12.2) and applies it to n (a copy of s) in the order
// of Section 12.3: GroupContextExtensions, Update, Remove, Add, then
// PreSharedKey; AppDataUpdate after the RFC 9420 proposals.
func (s *publicState) applyProposals(n *publicState, list []proposalEntry, committer Sender, now time.Time, pol *groupPolicy) (*applied, error) {
	bad := func(format string, args ...any) error {
		return groupErrf("proposal list", ErrInvalidProposal, format, args...)
	}
	external := committer.SenderType == SenderTypeNewMemberCommit
	a := &applied{extensions: n.ctx.Extensions, pathRequired: len(list) == 0}
	var gce *GroupContextExtensionsProposal
	touched := map[LeafIndex]bool{}
	pskSeen := map[string]bool{}
	var appData []*AppDataUpdateProposal
	counts := map[ProposalType]int{}
	for _, e := range list {
		t := e.p.ProposalType()
		counts[t]++
		if pathRequiredFor(t) {
			a.pathRequired = true
		}
		if external && e.ref != nil {
			return nil, bad("external commit includes a proposal by reference")
		}
		switch p := e.p.(type) {
		case *UpdateProposal:
			if e.sender.SenderType != SenderTypeMember || e.sender == committer {
				return nil, bad("update from the committer or a non-member")
			}
			if touched[e.sender.LeafIndex] {
				return nil, bad("several updates or removes of leaf %d", e.sender.LeafIndex)
			}
			touched[e.sender.LeafIndex] = true
		case *RemoveProposal:
			if committer.SenderType == SenderTypeMember && p.Removed == committer.LeafIndex {
				return nil, bad("remove of the committer")
			}
			if touched[p.Removed] {
				return nil, bad("several updates or removes of leaf %d", p.Removed)
			}
			touched[p.Removed] = true
		case *SelfRemoveProposal:
			if e.sender.SenderType != SenderTypeMember || e.sender == committer {
				return nil, bad("self-remove from the committer or a non-member")
			}
			if touched[e.sender.LeafIndex] {
				return nil, bad("several updates or removes of leaf %d", e.sender.LeafIndex)
			}
			touched[e.sender.LeafIndex] = true
		case *PreSharedKeyProposal:
			if err := s.checkPSKID(&p.PSK, ResumptionPSKUsageApplication, pol); err != nil {
				return nil, err
			}
			key, err := p.PSK.Marshal()
			if err != nil {
				return nil, err
			}
			if pskSeen[string(key)] {
				return nil, bad("PSK proposed twice")
			}
			pskSeen[string(key)] = true
			a.psks = append(a.psks, p.PSK)
		case *ReInitProposal:
			if p.Version < s.ctx.Version {
				return nil, bad("reinit to protocol version %d below %d", p.Version, s.ctx.Version)
			}
			a.reinit = p
		case *ExternalInitProposal:
			if !external {
				return nil, bad("external init in a member commit")
			}
			a.externalInit = p
		case *GroupContextExtensionsProposal:
			gce = p
		case *AppDataUpdateProposal:
			appData = append(appData, p)
		case *AddProposal:
		default:
			return nil, bad("proposal type %d", t)
		}
	}
	switch {
	case counts[ProposalTypeReInit] > 0 && len(list) != 1:
		return nil, bad("reinit together with other proposals")
	case counts[ProposalTypeGroupContextExtensions] > 1:
		return nil, bad("several group context extensions proposals")
	case external && (counts[ProposalTypeExternalInit] != 1 || counts[ProposalTypeRemove] > 1 ||
		counts[ProposalTypeExternalInit]+counts[ProposalTypeRemove]+counts[ProposalTypePreSharedKey] != len(list)):
		return nil, bad("external commit must hold one external init, at most one remove and PSKs")
	}
	opts, err := pol.leafOptions(&n.ctx, now)
	if err != nil {
		return nil, groupErr("proposal list", err)
	}
	if gce != nil {
		if err := s.checkGCEAppData(gce, len(appData) > 0); err != nil {
			return nil, err
		}
		a.extensions = gce.Extensions
		next := n.ctx
		next.Extensions = gce.Extensions
		if opts, err = pol.leafOptions(&next, now); err != nil {
			return nil, groupErr("group context extensions", err)
		}
	}
	for _, e := range list {
		if p, ok := e.p.(*UpdateProposal); ok {
			l := e.sender.LeafIndex
			if err := n.tree.CheckLeafNode(&p.LeafNode, l, LeafNodeInUpdate, opts); err != nil {
				return nil, groupErr("update", err)
			}
			if err := n.tree.UpdateLeaf(l, &p.LeafNode); err != nil {
				return nil, groupErr("update", err)
			}
			a.updated = append(a.updated, l)
		}
	}
	for _, e := range list {
		var l LeafIndex
		switch p := e.p.(type) {
		case *RemoveProposal:
			l = p.Removed
		case *SelfRemoveProposal:
			l = e.sender.LeafIndex
		default:
			continue
		}
		if uint32(l) >= n.tree.LeafCount() {
			return nil, bad("remove of leaf %d outside the tree", l)
		}
		if err := n.tree.RemoveLeaf(l); err != nil {
			return nil, groupErr("remove", err)
		}
		a.removed = append(a.removed, l)
	}
	for _, e := range list {
		p, ok := e.p.(*AddProposal)
		if !ok {
			continue
		}
		if err := validateKeyPackage(n.tree, &n.ctx, &p.KeyPackage, opts); err != nil {
			return nil, groupErr("add", err)
		}
		l, err := n.tree.AddLeaf(&p.KeyPackage.LeafNode)
		if err != nil {
			return nil, groupErr("add", err)
		}
		a.added = append(a.added, l)
		a.addedKPs = append(a.addedKPs, &p.KeyPackage)
	}
	if len(appData) > 0 {
		if a.extensions, err = pol.applyAppData(a.extensions, appData); err != nil {
			return nil, err
		}
	}
	if gce != nil || len(appData) > 0 {
		if err := checkExtensionsSupported(n.tree, a.extensions); err != nil {
			return nil, groupErr("group context extensions", err)
		}
	}
	return a, nil
}

// checkProposalSender enforces who may send which proposal (RFC 9420,
// Sections 12.1.8 and 12.1.8.1): external senders may send Add, Remove,
// PreSharedKey, ReInit and GroupContextExtensions; new members only their
// own Add; members anything but ExternalInit.
func checkProposalSender(s Sender, p Proposal) error {
	t := p.ProposalType()
	ok := true
	switch s.SenderType {
	case SenderTypeMember:
		ok = t != ProposalTypeExternalInit
	case SenderTypeExternal:
		ok = t == ProposalTypeAdd || t == ProposalTypeRemove || t == ProposalTypePreSharedKey ||
			t == ProposalTypeReInit || t == ProposalTypeGroupContextExtensions
	case SenderTypeNewMemberProposal:
		ok = t == ProposalTypeAdd
	default:
		ok = false
	}
	if !ok {
		return fmt.Errorf("%w: sender type %d may not propose type %d", ErrInvalidProposal, s.SenderType, t)
	}
	return nil
}
