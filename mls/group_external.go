package mls

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"time"
)

// External commits (RFC 9420, Section 12.4.3.2) and proposals from
// non-members (Section 12.1.8).

// ExternalJoinOptions parameterise [JoinExternal].
type ExternalJoinOptions struct {
	// Config is the joiner's local policy.
	Config GroupConfig
	// RatchetTree is the encoded tree when the GroupInfo has no
	// ratchet_tree extension.
	RatchetTree []byte
	// Remove, if set, removes the joiner's old leaf (a resync, Section
	// 12.4.3.2); it must hold the same credential.
	Remove *LeafIndex
	// PSKs are injected by PreSharedKey proposals.
	PSKs []PreSharedKeyID
	// Capabilities and LeafExtensions go into the joiner's leaf.
	Capabilities   Capabilities
	LeafExtensions Extensions
	// Now is the time for lifetime checks of the received tree.
	Now time.Time
	// AuthenticatedData is the commit's authenticated_data.
	AuthenticatedData []byte
	// ValidateLeaves, if set, replaces the sequential leaf validation of
	// the received tree (e.g. to spread [Tree.ValidateLeaves] over cores).
	ValidateLeaves func(t *Tree, opts *ValidationOptions) error
}

// JoinExternal joins the group of gi by an external commit: it validates
// the GroupInfo and its tree, encapsulates an init_secret to the
// external_pub, takes the leftmost free leaf with a fresh UpdatePath and
// signs the commit as new_member_commit. It returns the joiner's group in
// the new epoch and the commit to send; the group is valid once the
// ordering layer accepts the commit.
func JoinExternal(rand io.Reader, gi *GroupInfo, sig SignaturePrivateKey, cred Credential, opts *ExternalJoinOptions) (*Group, *MLSMessage, error) {
	if opts == nil {
		opts = &ExternalJoinOptions{}
	}
	cs := gi.GroupContext.CipherSuite
	tree, err := groupInfoTree(gi, opts.RatchetTree)
	if err != nil {
		return nil, nil, err
	}
	g0 := &Group{publicState: publicState{cs: cs, tree: tree}, cfg: opts.Config, sig: sig}
	if err := g0.verifyGroupInfo(gi, opts.Now, opts.ValidateLeaves); err != nil {
		return nil, nil, err
	}
	e, ok := gi.Extensions.Find(ExtensionTypeExternalPub)
	if !ok {
		return nil, nil, groupErrf("group info", ErrBadWelcome, "no external_pub extension")
	}
	ep, err := UnmarshalExternalPub(e.ExtensionData)
	if err != nil {
		return nil, nil, groupErr("group info", err)
	}
	kemOutput, initSecret, err := cs.ExternalInitSend(ep.ExternalPub, rand)
	if err != nil {
		return nil, nil, err
	}
	g0.ctx = gi.GroupContext
	if g0.ctxBytes, err = g0.ctx.Marshal(); err != nil {
		return nil, nil, err
	}
	if g0.interim, err = InterimTranscriptHash(cs, g0.ctx.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		return nil, nil, err
	}
	props := []Proposal{&ExternalInitProposal{KEMOutput: kemOutput}}
	if opts.Remove != nil {
		old, ok := tree.Leaf(*opts.Remove)
		if !ok || !sameCredential(&old.Credential, &cred) {
			return nil, nil, fmt.Errorf("%w: resync removes leaf %d, which does not hold the joiner's credential", ErrInvalidProposal, *opts.Remove)
		}
		props = append(props, &RemoveProposal{Removed: *opts.Remove})
	}
	for _, id := range opts.PSKs {
		props = append(props, &PreSharedKeyProposal{PSK: id})
	}
	list := make([]proposalEntry, len(props))
	pors := make([]ProposalOrRef, len(props))
	sender := Sender{SenderType: SenderTypeNewMemberCommit}
	for i, p := range props {
		list[i] = proposalEntry{p: p, sender: sender}
		pors[i] = ProposalOrRef{Proposal: p}
	}
	n := g0.clone()
	a, err := g0.applyProposals(n, list, sender, opts.Now)
	if err != nil {
		return nil, nil, err
	}
	if n.me, err = n.tree.ReserveLeaf(); err != nil {
		return nil, nil, err
	}
	tmpl := &LeafNode{SignatureKey: sig.PublicKey(), Credential: cred,
		Capabilities: defaultCapabilities(cs, opts.Capabilities, cred.CredentialType),
		Extensions:   nonNilExtensions(opts.LeafExtensions)}
	pc, err := g0.finishCommit(rand, n, a, &Commit{Proposals: pors}, sender, true, opts.AuthenticatedData, initSecret, tmpl)
	if err != nil {
		return nil, nil, err
	}
	return pc.next, pc.Message, nil
}

// Resync rejoins the group by an external commit that removes this
// member's current leaf (RFC 9420, Section 12.4.3.2), from a GroupInfo of
// the group's current epoch. The returned group replaces g once the commit
// is accepted.
func (g *Group) Resync(rand io.Reader, gi *GroupInfo, opts *ExternalJoinOptions) (*Group, *MLSMessage, error) {
	o := ExternalJoinOptions{Config: g.cfg}
	if opts != nil {
		o = *opts
	}
	cur, ok := g.tree.Leaf(g.me)
	if !ok {
		return nil, nil, ErrBlankLeaf
	}
	tree, err := groupInfoTree(gi, o.RatchetTree)
	if err != nil {
		return nil, nil, err
	}
	l, ok := tree.FindLeaf(cur)
	if !ok {
		// The leaf may have been updated since: find it by signature key.
		if l, ok = tree.SignatureKeyHolder(cur.SignatureKey, LeafIndex(MaxLeaves)); !ok {
			return JoinExternal(rand, gi, g.sig, cur.Credential, &o)
		}
	}
	o.Remove = &l
	return JoinExternal(rand, gi, g.sig, cur.Credential, &o)
}

// frameExternal signs an external commit and frames it as a PublicMessage
// (no membership tag; Section 6.2).
func (g *Group) frameExternal(c *FramedContent, sig SignaturePrivateKey, setTag func(*AuthenticatedContent) error) (*MLSMessage, *AuthenticatedContent, error) {
	ac, err := SignFramedContent(g.cs, WireFormatPublicMessage, c, g.ctxBytes, sig)
	if err != nil {
		return nil, nil, err
	}
	if err := setTag(ac); err != nil {
		return nil, nil, err
	}
	pm, err := NewPublicMessage(g.cs, ac, nil, g.ctxBytes)
	if err != nil {
		return nil, nil, err
	}
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}, ac, nil
}

func sameCredential(a, b *Credential) bool {
	x, err1 := a.Marshal()
	y, err2 := b.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// ExternalProposal creates a proposal signed by the external sender at
// senderIndex of the group's external_senders extension (RFC 9420, Section
// 12.1.8.1), e.g. a Rhizome server removing a departed member. Only Add,
// Remove, PreSharedKey, ReInit and GroupContextExtensions are allowed.
func ExternalProposal(cs CipherSuite, groupID []byte, epoch uint64, senderIndex uint32, sig SignaturePrivateKey, p Proposal) (*MLSMessage, error) {
	s := Sender{SenderType: SenderTypeExternal, SenderIndex: senderIndex}
	if err := checkProposalSender(s, p); err != nil {
		return nil, err
	}
	return nonMemberProposal(cs, groupID, epoch, s, sig, p)
}

// NewMemberProposal creates the Add proposal by which the client of kb asks
// to join the group (sender new_member_proposal, RFC 9420, Section
// 12.1.8); a member then commits it.
func NewMemberProposal(groupID []byte, epoch uint64, kb *KeyPackageBundle) (*MLSMessage, error) {
	s := Sender{SenderType: SenderTypeNewMemberProposal}
	return nonMemberProposal(kb.KeyPackage.CipherSuite, groupID, epoch, s, kb.SigningKey, &AddProposal{KeyPackage: *kb.KeyPackage})
}

func nonMemberProposal(cs CipherSuite, groupID []byte, epoch uint64, s Sender, sig SignaturePrivateKey, p Proposal) (*MLSMessage, error) {
	c := FramedContent{GroupID: slices.Clone(groupID), Epoch: epoch, Sender: s, AuthenticatedData: []byte{},
		ContentType: ContentTypeProposal, Proposal: p}
	ac, err := SignFramedContent(cs, WireFormatPublicMessage, &c, nil, sig)
	if err != nil {
		return nil, err
	}
	pm, err := NewPublicMessage(cs, ac, nil, nil)
	if err != nil {
		return nil, err
	}
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}, nil
}
