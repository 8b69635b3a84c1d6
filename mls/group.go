package mls

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// The group state machine (RFC 9420, Sections 11-14): one member's view of
// one epoch of a group, and the operations that move it to the next.
//
// Files: group.go (state, accessors), group_keypackage.go, group_create.go,
// group_proposal.go (proposals and proposal-list validation, Section 12.2),
// group_commit.go (commit creation), group_process.go (processing, Section
// 12.4.2), group_join.go (Welcome, GroupInfo), group_external.go (external
// commits and senders), group_psk.go (PSKs, branch, reinit),
// group_message.go (application messages), group_snapshot.go (forks and
// retained epochs), group_appdata.go (AppDataUpdate, SelfRemove),
// publicstate.go (the public state and the validation that needs no
// secret, shared with the external observer of publicgroup.go).

// Errors of the group state machine. Peer input that breaks a protocol rule
// wraps [ErrInvalidMessage] as well, so [RejectReason] classifies it.
var (
	// ErrInvalidProposal reports a proposal or proposal list that breaks a
	// rule of RFC 9420, Sections 12.1 and 12.2.
	ErrInvalidProposal = errors.New("mls: invalid proposal")
	// ErrInvalidCommit reports a commit that breaks a rule of RFC 9420,
	// Section 12.4 (a missing path, a wrong sender, ...).
	ErrInvalidCommit = errors.New("mls: invalid commit")
	// ErrUnknownProposal reports a commit referencing a proposal this member
	// has not received in the epoch.
	ErrUnknownProposal = errors.New("mls: commit references an unknown proposal")
	// ErrUnknownPSK reports a PSK whose value this member does not have.
	ErrUnknownPSK = errors.New("mls: unknown pre-shared key")
	// ErrGroupInactive reports an operation on a group this member was
	// removed from, or that was reinitialized.
	ErrGroupInactive = errors.New("mls: group is no longer active for this member")
	// ErrBadWelcome reports a Welcome or GroupInfo that cannot be joined.
	ErrBadWelcome = errors.New("mls: invalid welcome")
	// ErrOwnMessage reports one of this member's own messages that it cannot
	// process (e.g. a commit that is not its pending commit).
	ErrOwnMessage = errors.New("mls: message from this member")
)

// GroupError is a rejection of peer input by the group state machine: a
// typed error callers can branch on, naming the step of RFC 9420 that
// failed. It matches its Err and [ErrInvalidMessage] with errors.Is unless
// Err already classifies itself (a bad signature, a wrong epoch, ...).
type GroupError struct {
	Step string // e.g. "proposal list", "confirmation tag"
	Err  error
}

// Error describes the failure.
func (e *GroupError) Error() string { return "mls: " + e.Step + ": " + e.Err.Error() }

// Unwrap returns the cause, and ErrInvalidMessage when the cause has no
// reason of its own.
func (e *GroupError) Unwrap() []error {
	if RejectReason(e.Err) != ReasonNone {
		return []error{e.Err}
	}
	return []error{e.Err, ErrInvalidMessage}
}

func groupErr(step string, err error) error { return &GroupError{Step: step, Err: err} }

func groupErrf(step string, sentinel error, format string, args ...any) error {
	return &GroupError{Step: step, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// PSKLookup returns the value of an external PSK, or of a resumption PSK of
// another group (or of an epoch this group no longer remembers).
type PSKLookup func(id *PreSharedKeyID) ([]byte, bool)

// AppDataUpdater computes a component's new app_data_dictionary entry from
// its current one (present reports whether it has one) and an
// AppDataUpdate's update bytes (draft-ietf-mls-extensions). nil means
// "replace the entry with the update bytes".
type AppDataUpdater func(id ComponentID, current []byte, present bool, update []byte) ([]byte, error)

// GroupConfig is a member's local policy for one group. The zero value
// works: no padding, no lifetime checks, no credential checks, no PSKs.
type GroupConfig struct {
	// PaddingBlock pads PrivateMessage content (RFC 9420, Section 15.1).
	PaddingBlock int
	// ValidateCredential is the Authentication Service check of every
	// credential that enters the group (RFC 9420, Section 5.3.1).
	ValidateCredential func(cred *Credential, signatureKey []byte) error
	// PSKs looks up external and foreign resumption PSKs.
	PSKs PSKLookup
	// AppData applies AppDataUpdate proposals; nil replaces entries.
	AppData AppDataUpdater
	// KnownComponents, if not nil, lists the component IDs an
	// AppDataUpdate may name; others are invalid.
	KnownComponents []ComponentID
	// EncryptHandshake sends proposals and commits as PrivateMessages.
	EncryptHandshake bool
	// RatchetTreeInWelcome puts the ratchet_tree extension in the
	// GroupInfo of Welcomes (otherwise the joiner needs the tree out of
	// band).
	RatchetTreeInWelcome bool
	// ResumptionPSKs is how many past epochs' resumption PSKs are kept
	// (default 8).
	ResumptionPSKs int
	// RetainedEpochs bounds the past and branch epochs kept for decryption
	// (default 4); RetainFor is how long a superseded epoch stays (0: it is
	// erased at once).
	RetainedEpochs int
	RetainFor      time.Duration
}

func (c *GroupConfig) resumptionKeep() int {
	if c.ResumptionPSKs > 0 {
		return c.ResumptionPSKs
	}
	return 8
}

func (c *GroupConfig) retainedMax() int {
	if c.RetainedEpochs > 0 {
		return c.RetainedEpochs
	}
	return 4
}

// cachedProposal is a proposal received (or sent) in the current epoch,
// kept until a commit references it (RFC 9420, Section 12.4).
type cachedProposal struct {
	ref      []byte
	proposal Proposal
	sender   Sender
	raw      []byte // the MLSMessage bytes when this member sent it
	// updatePriv is the new leaf private key of this member's own Update.
	updatePriv []byte
}

// resumptionPSK is the resumption_psk of one epoch of this group.
type resumptionPSK struct {
	epoch uint64
	psk   []byte
}

// Group is one member's state of a group in one epoch. Methods that process
// peer input work on a copy and replace the state only on success, so a
// rejected message leaves the group unchanged (the one exception is the
// key of a PrivateMessage that decrypted and whose signature verified,
// which is consumed even if the content is then rejected, e.g. an invalid
// commit of a genuine sender). A Group is not safe for concurrent use.
type Group struct {
	// publicState is what an external observer of the group also holds
	// (see [PublicGroup]): cipher suite, GroupContext, ratchet tree,
	// transcript hashes and the epoch's proposals.
	publicState

	cfg  GroupConfig
	keys *TreePrivateKeys
	me   LeafIndex
	sig  SignaturePrivateKey

	secrets *EpochSecrets
	prot    *MessageProtector

	resumption []resumptionPSK
	pending    *PendingCommit

	// inactive is set when this member was removed or the group was
	// reinitialized; reinit holds the ReInit proposal of the latter.
	inactive bool
	reinit   *ReInitProposal

	epochID  []byte
	retained []*retainedEpoch
}

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return g.cs }

// GroupID returns the group ID.
func (g *Group) GroupID() []byte { return slices.Clone(g.ctx.GroupID) }

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 { return g.ctx.Epoch }

// GroupContext returns a copy of the current GroupContext.
func (g *Group) GroupContext() GroupContext {
	c := g.ctx
	c.Extensions = slices.Clone(g.ctx.Extensions)
	return c
}

// Extensions returns the GroupContext extensions (read-only).
func (g *Group) Extensions() Extensions { return g.ctx.Extensions }

// LeafIndex returns this member's leaf.
func (g *Group) LeafIndex() LeafIndex { return g.me }

// Tree returns the ratchet tree (read-only; clone it to modify).
func (g *Group) Tree() *Tree { return g.tree }

// Members yields the leaf index of every member.
func (g *Group) Members() []LeafIndex { return slices.Collect(g.tree.Members()) }

// Active reports whether this member can still send and commit.
func (g *Group) Active() bool { return !g.inactive }

// PendingReInit returns the ReInit proposal committed in the last epoch,
// if the group was reinitialized (RFC 9420, Section 11.2).
func (g *Group) PendingReInit() (*ReInitProposal, bool) { return g.reinit, g.reinit != nil }

// EpochAuthenticator returns the epoch_authenticator (RFC 9420, Section
// 8.7); all members of an epoch agree on it.
func (g *Group) EpochAuthenticator() []byte { return slices.Clone(g.secrets.EpochAuthenticator) }

// Export is MLS-Exporter(label, context, length) of the current epoch
// (RFC 9420, Section 8.5).
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	return g.secrets.Exporter(label, context, length)
}

// ResumptionPSK returns the resumption_psk of the current epoch.
func (g *Group) ResumptionPSK() []byte { return slices.Clone(g.secrets.ResumptionPSK) }

// EpochID returns the opaque ID of the commit that created this epoch, as
// the caller supplied it ([ProcessOptions.EpochID], [Group.MergeCommit]);
// nil if none was given.
func (g *Group) EpochID() []byte { return slices.Clone(g.epochID) }

// SignaturePublicKey returns this member's signature public key.
func (g *Group) SignaturePublicKey() []byte { return g.sig.PublicKey() }

// clone returns a copy of g that can be changed without affecting g. The
// ratchet tree is copy-on-write; the message protector is shared (it is
// replaced, not changed, when the epoch advances).
func (g *Group) clone() *Group {
	n := *g
	n.publicState = g.publicState.clone()
	if g.keys != nil {
		n.keys = g.keys.Clone()
	}
	n.resumption = slices.Clone(g.resumption)
	n.retained = slices.Clone(g.retained)
	return &n
}

// signerKey resolves the signature key of a sender of this epoch.
func (g *Group) signerKey(s Sender) ([]byte, error) {
	return signerKeyIn(g.tree, &g.ctx, s)
}

func signerKeyIn(t *Tree, ctx *GroupContext, s Sender) ([]byte, error) {
	switch s.SenderType {
	case SenderTypeMember:
		if uint32(s.LeafIndex) >= t.LeafCount() {
			return nil, fmt.Errorf("%w: sender leaf %d", ErrLeafOutOfRange, s.LeafIndex)
		}
		k, ok := t.LeafSignatureKey(s.LeafIndex)
		if !ok {
			return nil, fmt.Errorf("%w: sender leaf %d", ErrBlankLeaf, s.LeafIndex)
		}
		return k, nil
	case SenderTypeExternal:
		es, err := externalSenders(ctx.Extensions)
		if err != nil {
			return nil, err
		}
		if uint64(s.SenderIndex) >= uint64(len(es)) {
			return nil, fmt.Errorf("%w: external sender %d of %d", ErrInvalidMessage, s.SenderIndex, len(es))
		}
		return es[s.SenderIndex].SignatureKey, nil
	}
	return nil, fmt.Errorf("%w: no stored key for sender type %d", ErrInvalidMessage, s.SenderType)
}

// externalSenders decodes the external_senders extension, if any.
func externalSenders(exts Extensions) (ExternalSenders, error) {
	e, ok := exts.Find(ExtensionTypeExternalSenders)
	if !ok {
		return nil, nil
	}
	return UnmarshalExternalSenders(e.ExtensionData)
}

// requiredCapabilities decodes the required_capabilities extension, if any.
func requiredCapabilities(exts Extensions) (*RequiredCapabilities, error) {
	e, ok := exts.Find(ExtensionTypeRequiredCapabilities)
	if !ok {
		return nil, nil
	}
	return UnmarshalRequiredCapabilities(e.ExtensionData)
}

// policy returns the member's validation policy for proposals and
// commits.
func (g *Group) policy() *groupPolicy {
	return &groupPolicy{validateCredential: g.cfg.ValidateCredential, appData: g.cfg.AppData,
		knownComponents: g.cfg.KnownComponents,
		hasPSK:          func(id *PreSharedKeyID) bool { _, ok := g.lookupPSK(id); return ok }}
}

// installEpoch sets the epoch's GroupContext and secrets and builds its
// message protector.
func (g *Group) installEpoch(ctx GroupContext, ctxBytes []byte, es *EpochSecrets, confTag []byte) error {
	prot, err := NewEpochProtector(&ctx, es, g.tree.LeafCount(), g.cfg.PaddingBlock)
	if err != nil {
		return err
	}
	if err := g.setEpoch(ctx, ctxBytes, confTag); err != nil {
		return err
	}
	g.secrets, g.prot = es, prot
	g.pending = nil
	g.resumption = append(g.resumption, resumptionPSK{epoch: ctx.Epoch, psk: es.ResumptionPSK})
	if k := g.cfg.resumptionKeep(); len(g.resumption) > k {
		g.resumption = slices.Delete(g.resumption, 0, len(g.resumption)-k)
	}
	return nil
}
