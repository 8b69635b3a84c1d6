package room

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Servers verify every commit as MLS external observers (RFC 9420 has no
// name for it; OpenMLS calls the state a PublicGroup): the engine keeps
// the public group state of each accepted commit's epoch, built from the
// epoch-0 GroupInfo that the group's first commit carries and from the
// PublicMessage commits since. Before a commit is accepted (and so before
// it can be sealed or acked) it must verify against its parent's epoch:
// sender a member, signature over that epoch's GroupContext, proposals
// and UpdatePath valid (mls.PublicGroup.ProcessCommit). Then the commit is
// held against room policy (roomstate.AuthorizeCommit): who may add,
// remove or change roles, and the MLS roster change must match the
// participant-list change the commit staples.

// observerWindow bounds how many epochs' public group states an engine
// keeps (each holds the epoch's ratchet tree: a 1,000-member group's is
// some hundreds of KiB, shared copy-on-write with its parent's): a commit on
// a parent whose state was dropped is refused as mls-epoch-gone. Beyond
// the window the oldest state of the committer holding the most is dropped
// (Engine.keepGroup), so that one device's flood of valid commits evicts
// its own. Honest commits build on the canonical tip or, during a
// partition, on a fork point that is rarely more than a few epochs back.
const observerWindow = 64

// Reasons of the MLS observer and of room policy on commits.
const (
	// ReasonMLSNoGroupInfo: the group's first commit carries no usable
	// epoch-0 GroupInfo, or one that does not describe the room's creator.
	ReasonMLSNoGroupInfo Reason = "mls-no-group-info"
	// ReasonMLSEpochGone: the commit's parent epoch is beyond the horizon
	// of kept public group states.
	ReasonMLSEpochGone Reason = "mls-epoch-gone"
	// ReasonSenderMismatch: the MLS sender is not the device the event
	// names (a relabelled commit).
	ReasonSenderMismatch Reason = "mls-sender-mismatch"
	// ReasonPolicy: room policy forbids the commit or proposal
	// (roomstate.AuthorizeCommit, AuthorizeProposal).
	ReasonPolicy Reason = "policy"
	// ReasonWelcomeMismatch: the commit's Welcome does not address exactly
	// the KeyPackages its Adds add (or there is one without Adds, or none
	// with them), so that an added device could never join.
	ReasonWelcomeMismatch Reason = "mls-welcome-mismatch"
)

// ClientOf maps an MLS credential to the room-state client it names: the
// identity of a basic credential is the MIMI client URI
// mimi://DOMAIN/d/USER/DEVICE, whose user is mimi://DOMAIN/u/USER.
func ClientOf(c mls.Credential) (roomstate.Client, error) {
	id := string(c.Identity)
	rest, ok := strings.CutPrefix(id, "mimi://")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 || parts[1] != "d" || parts[0] == "" || parts[2] == "" || parts[3] == "" {
		return roomstate.Client{}, fmt.Errorf("room: credential %q is not a MIMI client URI", id)
	}
	return roomstate.Client{ID: roomstate.ClientID(id), User: roomstate.URI("mimi://" + parts[0] + "/u/" + parts[2])}, nil
}

// LeafLookup returns the leaf node at an index (mls.Group.Tree().Leaf and
// mls.PublicGroup.Leaf both fit).
type LeafLookup func(mls.LeafIndex) (*mls.LeafNode, bool)

// Roster is the room-state view of an MLS group's members.
func Roster(members []mls.LeafIndex, leaf LeafLookup) ([]roomstate.Client, error) {
	out := make([]roomstate.Client, 0, len(members))
	for _, l := range members {
		ln, ok := leaf(l)
		if !ok {
			continue
		}
		c, err := ClientOf(ln.Credential)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// DescribeCommit is the room-state summary of an MLS commit with the
// room-state changes stapled to it: the committer, each MLS proposal
// (Adds and Removes resolved to clients through leaf, the parent epoch's
// tree), and each stapled change as an AppDataUpdate from the committer.
// Servers and clients run roomstate.AuthorizeCommit on it.
func DescribeCommit(committer mls.Sender, props []mls.CommitProposal, changes []roomevent.Change, leaf LeafLookup) (roomstate.Commit, error) {
	sender := func(s mls.Sender) (roomstate.Sender, error) {
		if s.SenderType != mls.SenderTypeMember {
			return roomstate.Sender{}, fmt.Errorf("room: MLS sender type %d is not used in rooms", s.SenderType)
		}
		ln, ok := leaf(s.LeafIndex)
		if !ok {
			return roomstate.Sender{}, fmt.Errorf("room: sender leaf %d is blank", s.LeafIndex)
		}
		c, err := ClientOf(ln.Credential)
		return roomstate.MemberSender(c), err
	}
	var out roomstate.Commit
	var err error
	if out.Committer, err = sender(committer); err != nil {
		return out, err
	}
	for _, cp := range props {
		var p roomstate.Proposal
		if p.Sender, err = sender(cp.Sender); err != nil {
			return out, err
		}
		switch q := cp.Proposal.(type) {
		case *mls.AddProposal:
			p.Type = roomstate.ProposalAdd
			if p.Client, err = ClientOf(q.KeyPackage.LeafNode.Credential); err != nil {
				return out, err
			}
		case *mls.RemoveProposal:
			p.Type = roomstate.ProposalRemove
			ln, ok := leaf(q.Removed)
			if !ok {
				return out, fmt.Errorf("room: remove of blank leaf %d", q.Removed)
			}
			if p.Client, err = ClientOf(ln.Credential); err != nil {
				return out, err
			}
		case *mls.UpdateProposal:
			p.Type = roomstate.ProposalUpdate
		case *mls.SelfRemoveProposal:
			p.Type = roomstate.ProposalSelfRemove
		default:
			return out, fmt.Errorf("room: MLS proposal type %d is not used in rooms", cp.Proposal.ProposalType())
		}
		out.Proposals = append(out.Proposals, p)
	}
	for _, ch := range changes {
		out.Proposals = append(out.Proposals, roomstate.Proposal{Type: roomstate.ProposalAppDataUpdate, Sender: out.Committer,
			Component: roomstate.ComponentID(ch.Component), Update: ch.Update})
	}
	return out, nil
}

// observeCommit verifies commit c (event ev) as an MLS external observer
// against the public group state of its parent's epoch, and holds it
// against room policy with st, the room state of that epoch. It returns
// the public group state of the commit's epoch.
func (e *Engine) observeCommit(ev *dag.Event, c *roomevent.Commit, st *roomstate.State) (*mls.PublicGroup, error) {
	pg, err := e.parentGroup(ev, c)
	if err != nil {
		return nil, err
	}
	msg, err := mls.UnmarshalMLSMessage(c.Commit)
	if err != nil {
		return nil, rejectErr(ReasonMalformedMLS, err)
	}
	// Lifetimes of added KeyPackages are judged at the commit event's
	// timestamp, which every server and member reads the same (clients
	// pass it as ProcessOptions.Now): a verdict on a local clock would let
	// a commit that servers ordered be one that members refuse.
	next, oc, err := pg.ProcessCommit(msg, eventTime(ev))
	if err != nil {
		return nil, rejectErr(Reason(mls.ObserverReasonOf(err).String()), err)
	}
	if err := e.checkRefParents(ev, c.Parent, oc.Proposals); err != nil {
		return nil, err
	}
	ln, ok := pg.Leaf(oc.Sender.LeafIndex)
	if oc.Sender.SenderType != mls.SenderTypeMember || !ok || string(ln.Credential.Identity) != c.Sender.Client {
		return nil, reject(ReasonSenderMismatch, "the commit's MLS sender is not %s, the device the event names", c.Sender.Client)
	}
	if cl, err := ClientOf(ln.Credential); err != nil || string(cl.User) != c.Sender.User {
		// The changes apply with the event's user as actor; policy judged
		// the credential's user: they must be the same.
		return nil, reject(ReasonSenderMismatch, "the event names user %s, but device %s is not theirs", c.Sender.User, c.Sender.Client)
	}
	if err := checkWelcome(c, oc.Proposals, pg.CipherSuite()); err != nil {
		return nil, err
	}
	desc, err := DescribeCommit(oc.Sender, oc.Proposals, c.Changes, pg.Leaf)
	if err != nil {
		return nil, rejectErr(ReasonPolicy, err)
	}
	roster, err := Roster(pg.Members(), pg.Leaf)
	if err != nil {
		return nil, rejectErr(ReasonPolicy, err)
	}
	_, want, err := roomstate.AuthorizeCommit(st, roster, desc)
	if err != nil {
		return nil, rejectErr(ReasonPolicy, err)
	}
	// An UpdatePath or Update replaces a leaf, credential and all, and
	// nothing in MLS holds the identity to the old one: the members the
	// commit leaves must be exactly those room policy authorized.
	got, err := Roster(next.Members(), next.Leaf)
	if err != nil {
		return nil, rejectErr(ReasonPolicy, err)
	}
	if !roomstate.SameRoster(got, want) {
		return nil, reject(ReasonPolicy, "the MLS group the commit leaves (%v) is not the one room policy authorized (%v)", got, want)
	}
	return next, nil
}

// checkWelcome holds commit c's Welcome to what an observer can check of
// it (RFC 9420, Section 12.4.3.1): present exactly when the commit adds
// members, of the group's cipher suite, with one EncryptedGroupSecrets for
// each added KeyPackage (by its KeyPackageRef) and no other. Whether the
// secrets decrypt is the joiners' to find out.
func checkWelcome(c *roomevent.Commit, props []mls.CommitProposal, cs mls.CipherSuite) error {
	want := map[string]bool{}
	for _, cp := range props {
		if add, ok := cp.Proposal.(*mls.AddProposal); ok {
			ref, err := add.KeyPackage.Ref()
			if err != nil {
				return rejectErr(ReasonWelcomeMismatch, err)
			}
			want[string(ref)] = true
		}
	}
	if c.Welcome == nil {
		if len(want) > 0 {
			return reject(ReasonWelcomeMismatch, "the commit adds %d KeyPackages and carries no Welcome", len(want))
		}
		return nil
	}
	msg, err := mls.UnmarshalMLSMessage(c.Welcome)
	if err != nil || msg.Welcome == nil {
		return rejectErr(ReasonMalformedMLS, errors.Join(errors.New("not a Welcome"), err))
	}
	w := msg.Welcome
	if w.CipherSuite != cs {
		return reject(ReasonWelcomeMismatch, "Welcome of cipher suite %v in a group of %v", w.CipherSuite, cs)
	}
	if len(w.Secrets) != len(want) {
		return reject(ReasonWelcomeMismatch, "the Welcome addresses %d new members, the commit adds %d", len(w.Secrets), len(want))
	}
	for _, s := range w.Secrets {
		if !want[string(s.NewMember)] {
			return reject(ReasonWelcomeMismatch, "the Welcome addresses KeyPackage %x, which the commit does not add", s.NewMember)
		}
		delete(want, string(s.NewMember))
	}
	return nil
}

// parentGroup returns the public group state of commit c's parent epoch:
// a kept one, or, for the group's first commit, the one its epoch-0
// GroupInfo describes. That GroupInfo must come from the create event's
// origin (the creator's server vouches for its device), be for the room
// (group ID = room ID), at epoch 0, with the creator's device as the only
// member.
func (e *Engine) parentGroup(ev *dag.Event, c *roomevent.Commit) (*mls.PublicGroup, error) {
	if c.Parent != e.b.root {
		pg, ok := e.groups[c.Parent]
		if !ok {
			return nil, reject(ReasonMLSEpochGone, "no public group state is kept for epoch %v", c.Parent)
		}
		return pg, nil
	}
	if len(c.GroupInfo) == 0 {
		return nil, reject(ReasonMLSNoGroupInfo, "the group's first commit carries no GroupInfo of epoch 0")
	}
	if ev.Origin != e.creator.origin {
		return nil, reject(ReasonMLSNoGroupInfo, "the group's first commit comes from %v, not from the room's creating server", ev.Origin)
	}
	pg, err := bootstrapGroup(c.GroupInfo)
	if err != nil {
		return nil, rejectErr(ReasonMLSNoGroupInfo, err)
	}
	members := pg.Members()
	if !bytes.Equal(pg.GroupID(), []byte(e.room.String())) || pg.Epoch() != 0 || len(members) != 1 {
		return nil, reject(ReasonMLSNoGroupInfo, "the GroupInfo is not of epoch 0 of this room's group with one member")
	}
	if ln, ok := pg.Leaf(members[0]); !ok || string(ln.Credential.Identity) != e.creator.client {
		return nil, reject(ReasonMLSNoGroupInfo, "the GroupInfo's only member is not the room's creator %s", e.creator.client)
	}
	return pg, nil
}

// bootstrapGroup is mls.ParsePublicGroup for an epoch-0 GroupInfo, whose
// ratchet tree group creation makes with one leaf (RFC 9420, Section 11):
// a tree of more leaves is refused before it is hashed and validated.
func bootstrapGroup(raw []byte) (*mls.PublicGroup, error) {
	msg, err := mls.UnmarshalMLSMessage(slices.Clone(raw))
	if err != nil {
		return nil, err
	}
	gi := msg.GroupInfo
	if msg.WireFormat != mls.WireFormatGroupInfo || gi == nil {
		return nil, fmt.Errorf("room: wire format %d is not a GroupInfo", msg.WireFormat)
	}
	ext, ok := gi.Extensions.Find(mls.ExtensionTypeRatchetTree)
	if !ok {
		return nil, errors.New("room: the GroupInfo carries no ratchet tree")
	}
	tree, err := mls.DecodeTree(gi.GroupContext.CipherSuite, ext.ExtensionData)
	if err != nil {
		return nil, err
	}
	if n := tree.LeafCount(); n != 1 {
		return nil, fmt.Errorf("room: the epoch-0 ratchet tree has %d leaves, not one", n)
	}
	return mls.NewPublicGroup(gi, tree, &mls.PublicGroupConfig{})
}

// observeProposal verifies a proposal event as an MLS external observer in
// its epoch and holds it against room policy; it returns the epoch's
// public group state with the proposal recorded and the proposal's
// ProposalRef (commits of the epoch may include it by reference).
func (e *Engine) observeProposal(ev *dag.Event, epoch dag.EventID, c *roomevent.Proposal, st *roomstate.State) (*mls.PublicGroup, []byte, error) {
	pg, ok := e.groups[epoch]
	if !ok {
		return nil, nil, reject(ReasonMLSEpochGone, "no public group state is kept for epoch %v", epoch)
	}
	msg, err := mls.UnmarshalMLSMessage(c.Proposal)
	if err != nil {
		return nil, nil, rejectErr(ReasonMalformedMLS, err)
	}
	next, op, err := pg.ProcessProposal(msg, eventTime(ev))
	if err != nil {
		return nil, nil, rejectErr(Reason(mls.ObserverReasonOf(err).String()), err)
	}
	if op.Sender.SenderType == mls.SenderTypeMember {
		ln, ok := pg.Leaf(op.Sender.LeafIndex)
		if !ok || string(ln.Credential.Identity) != c.Sender.Client {
			return nil, nil, reject(ReasonSenderMismatch, "the proposal's MLS sender is not %s, the device the event names", c.Sender.Client)
		}
		if cl, err := ClientOf(ln.Credential); err != nil || string(cl.User) != c.Sender.User {
			return nil, nil, reject(ReasonSenderMismatch, "the event names user %s, but device %s is not theirs", c.Sender.User, c.Sender.Client)
		}
		if u, ok := op.Proposal.(*mls.UpdateProposal); ok && (u.LeafNode.Credential.CredentialType != ln.Credential.CredentialType ||
			!bytes.Equal(u.LeafNode.Credential.Identity, ln.Credential.Identity)) {
			// As for a commit's UpdatePath (observeCommit): a device
			// keeps its identity.
			return nil, nil, reject(ReasonPolicy, "the Update replaces device %s by %q", c.Sender.Client, u.LeafNode.Credential.Identity)
		}
	}
	desc, err := DescribeCommit(op.Sender, []mls.CommitProposal{{Proposal: op.Proposal, Sender: op.Sender}}, nil, pg.Leaf)
	if err != nil {
		return nil, nil, rejectErr(ReasonPolicy, err)
	}
	roster, err := Roster(pg.Members(), pg.Leaf)
	if err != nil {
		return nil, nil, rejectErr(ReasonPolicy, err)
	}
	if err := roomstate.AuthorizeProposal(st, roster, desc.Proposals[0]); err != nil {
		return nil, nil, rejectErr(ReasonPolicy, err)
	}
	return next, op.Ref, nil
}

// observeMessage checks what an observer can of an application message:
// a PrivateMessage of the room's group in the epoch its event names (for
// the create event, before any public group state: epoch 0 of the group
// whose ID is the room's).
func (e *Engine) observeMessage(epoch dag.EventID, c *roomevent.Message) error {
	groupID, number := []byte(e.room.String()), uint64(0)
	if pg, ok := e.groups[epoch]; ok {
		groupID, number = pg.GroupID(), pg.Epoch()
	} else if epoch != e.b.root {
		return reject(ReasonMLSEpochGone, "no public group state is kept for epoch %v", epoch)
	}
	msg, err := mls.UnmarshalMLSMessage(c.Message)
	if err != nil || msg.PrivateMessage == nil {
		return rejectErr(ReasonMalformedMLS, errors.Join(errors.New("not a PrivateMessage"), err))
	}
	if pm := msg.PrivateMessage; pm.Epoch != number || !bytes.Equal(pm.GroupID, groupID) {
		return reject(Reason(mls.ObserverReplay.String()), "message of group epoch %d, but epoch %v is group epoch %d", pm.Epoch, epoch, number)
	}
	return nil
}

// eventTime is the time an event's MLS content is judged at (KeyPackage
// lifetimes): its timestamp, signed by its origin and so the same for
// every server and member.
func eventTime(ev *dag.Event) time.Time { return time.UnixMilli(ev.Timestamp) }
