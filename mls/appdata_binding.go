package mls

import "bytes"

// Inspecting a commit before processing it, for application logic that
// authorizes AppDataUpdate proposals (draft-ietf-mls-extensions, Section
// 4.7) together with the Adds and Removes of the same commit.

// CommitProposal is one proposal a commit covers, with the sender that
// proposed it.
type CommitProposal struct {
	Proposal Proposal
	// Sender is the committer for a proposal included by value, and the
	// original sender for one included by reference.
	Sender Sender
	// Reference is the ProposalRef of a proposal included by reference
	// (nil when it is included by value).
	Reference []byte
}

// InspectCommit authenticates msg, a commit of the group's current epoch
// (membership tag or decryption, and the signature), and returns the
// committer and the proposals the commit covers in commit order, with
// references resolved against this epoch's cached proposals. It does not
// change the group: a PrivateMessage is decrypted with a copy of the
// secret tree, so [Group.ProcessMessage] can still decrypt it. It does not
// validate the proposal list or the path; ProcessMessage does. A member's
// own pending commit sent as a PrivateMessage cannot be inspected (its
// sender's key for it is used up; ErrOwnMessage): the committer knows the
// proposals it committed.
//
// Application logic needs this before ProcessMessage because an
// [AppDataUpdater] sees one component's bytes, not who proposed the update
// nor which clients the commit adds or removes: a room-state policy
// decides on the whole commit first, then lets ProcessMessage apply it.
func (g *Group) InspectCommit(msg *MLSMessage) (Sender, []CommitProposal, error) {
	const step = "inspect commit"
	if msg == nil {
		return Sender{}, nil, groupErrf(step, ErrInvalidMessage, "nil message")
	}
	if g.inactive {
		return Sender{}, nil, groupErr(step, ErrGroupInactive)
	}
	var ac *AuthenticatedContent
	var err error
	switch {
	case msg.WireFormat == WireFormatPublicMessage && msg.PublicMessage != nil:
		pm := msg.PublicMessage
		ac, err = g.prot.UnprotectPublic(pm, func(s Sender) ([]byte, error) { return g.senderKey(&pm.Content, s) })
	case msg.WireFormat == WireFormatPrivateMessage && msg.PrivateMessage != nil:
		if msg.PrivateMessage.ContentType != ContentTypeCommit {
			return Sender{}, nil, groupErrf(step, ErrInvalidMessage, "content type %d is not a commit", msg.PrivateMessage.ContentType)
		}
		if g.pending != nil {
			if raw, err := msg.Marshal(); err == nil && bytes.Equal(raw, g.pending.raw) {
				// The sender's own key for it is already used up.
				return Sender{}, nil, groupErrf(step, ErrOwnMessage, "this member's pending commit cannot be decrypted by it; it knows the proposals it committed")
			}
		}
		prot := copyProtector(g.prot, nil)
		ac, err = prot.UnprotectPrivate(msg.PrivateMessage, g.signerKey)
		eraseProtector(prot)
	default:
		return Sender{}, nil, groupErrf(step, ErrInvalidMessage, "wire format %d is not a group message", msg.WireFormat)
	}
	if err != nil {
		return Sender{}, nil, groupErr(step, err)
	}
	c := &ac.Content
	if !bytes.Equal(c.GroupID, g.ctx.GroupID) {
		return Sender{}, nil, groupErr(step, ErrWrongGroup)
	}
	if c.ContentType != ContentTypeCommit || c.Commit == nil {
		return Sender{}, nil, groupErrf(step, ErrInvalidMessage, "content type %d is not a commit", c.ContentType)
	}
	if c.Sender.SenderType != SenderTypeMember && c.Sender.SenderType != SenderTypeNewMemberCommit {
		return Sender{}, nil, groupErrf(step, ErrInvalidCommit, "sender type %d", c.Sender.SenderType)
	}
	list, err := g.resolveProposals(c.Commit, c.Sender)
	if err != nil {
		return Sender{}, nil, err
	}
	return c.Sender, commitProposals(list), nil
}

// commitProposals lists a commit's resolved proposals as [CommitProposal]s.
func commitProposals(list []proposalEntry) []CommitProposal {
	out := make([]CommitProposal, len(list))
	for i, e := range list {
		out[i] = CommitProposal{Proposal: e.p, Sender: e.sender, Reference: e.ref}
	}
	return out
}
