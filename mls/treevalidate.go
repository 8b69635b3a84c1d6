package mls

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Validation of leaves (RFC 9420, Section 7.3) and of whole received trees
// (Section 12.4.3.1).

// Errors of tree and leaf validation. Tree validation wraps them in a
// [*TreeError] naming the node.
var (
	// ErrBadTreeHash reports a tree whose root hash differs from the
	// GroupContext's tree_hash (RFC 9420, Section 12.4.3.3).
	ErrBadTreeHash = errors.New("mls: tree hash mismatch")
	// ErrDuplicateKey reports an encryption or signature key that appears
	// in two nodes (RFC 9420, Sections 7.3, 12.4.2 and 12.4.3.1).
	ErrDuplicateKey = errors.New("mls: public key is not unique in the ratchet tree")
	// ErrBadUnmergedLeaves reports an unmerged_leaves list that is not
	// sorted, names a blank or foreign leaf, or is not repeated on the
	// nodes in between (RFC 9420, Sections 7.1 and 12.4.3.1).
	ErrBadUnmergedLeaves = errors.New("mls: invalid unmerged leaves")
	// ErrInvalidLeafNode reports a LeafNode that breaks a rule of RFC 9420,
	// Section 7.3 other than its signature: source, capabilities,
	// credential type, extensions or lifetime.
	ErrInvalidLeafNode = errors.New("mls: invalid leaf node")
)

// LeafNodeUse says where a LeafNode was received, which fixes the
// leaf_node_source it must have (RFC 9420, Section 7.3).
type LeafNodeUse uint8

// The places a LeafNode is validated.
const (
	// LeafNodeInTree is a leaf of a received ratchet tree: any source.
	LeafNodeInTree LeafNodeUse = iota
	// LeafNodeInKeyPackage is the leaf of a KeyPackage (an Add).
	LeafNodeInKeyPackage
	// LeafNodeInUpdate is the leaf of an Update proposal.
	LeafNodeInUpdate
	// LeafNodeInCommit is the leaf of an UpdatePath.
	LeafNodeInCommit
)

// source returns the leaf_node_source a use requires, if any.
func (u LeafNodeUse) source() (LeafNodeSource, bool) {
	switch u {
	case LeafNodeInKeyPackage:
		return LeafNodeSourceKeyPackage, true
	case LeafNodeInUpdate:
		return LeafNodeSourceUpdate, true
	case LeafNodeInCommit:
		return LeafNodeSourceCommit, true
	}
	return 0, false
}

// ValidationOptions parameterises leaf and tree validation.
type ValidationOptions struct {
	// GroupID is the group's ID, signed by leaves of the update and commit
	// sources.
	GroupID []byte
	// Now is the current time for the lifetime check of key_package
	// leaves. The zero time skips the check, which RFC 9420 only
	// recommends for received leaves (Section 7.3).
	Now time.Time
	// RequiredCapabilities is the group's required_capabilities extension,
	// if any (RFC 9420, Section 11.1).
	RequiredCapabilities *RequiredCapabilities
	// ValidateCredential, if set, is the Authentication Service check of a
	// leaf's credential and signature key (RFC 9420, Section 5.3.1).
	ValidateCredential func(cred *Credential, signatureKey []byte) error
	// TreeHash, if set, is the expected tree hash of the root
	// ([Tree.Validate] only).
	TreeHash []byte
}

// CheckLeafNode validates ln for use at leaf at (RFC 9420, Section 7.3):
// source, credential, signature (over the group ID and at for the update and
// commit sources), required capabilities, credential types shared with the
// other members, supported extensions, lifetime, and keys unique among the
// other nodes. For [LeafNodeInUpdate] and [LeafNodeInCommit] the encryption
// key must also differ from the one the leaf at holds now. For
// [LeafNodeInKeyPackage] no leaf is excepted from the uniqueness checks.
//
// CheckLeafNode only reads t, so calls may run concurrently with each other
// (but not with writes to t).
func (t *Tree) CheckLeafNode(ln *LeafNode, at LeafIndex, use LeafNodeUse, opts *ValidationOptions) error {
	if ln == nil {
		return fmt.Errorf("%w: no leaf node", ErrInvalidLeafNode)
	}
	var cur *LeafNode
	if use != LeafNodeInKeyPackage {
		cur, _ = t.Leaf(at)
	}
	return t.checkLeafNode(ln, at, use, opts, cur)
}

// checkLeafNode is CheckLeafNode with the current occupant of at (nil if
// none or for a KeyPackage leaf) already decoded.
func (t *Tree) checkLeafNode(ln *LeafNode, at LeafIndex, use LeafNodeUse, opts *ValidationOptions, cur *LeafNode) error {
	if opts == nil {
		opts = &ValidationOptions{}
	}
	if src, ok := use.source(); ok && ln.Source != src {
		return fmt.Errorf("%w: leaf_node_source %d, want %d", ErrInvalidLeafNode, ln.Source, src)
	}
	if opts.ValidateCredential != nil {
		if err := opts.ValidateCredential(&ln.Credential, ln.SignatureKey); err != nil {
			return fmt.Errorf("%w: credential: %w", ErrInvalidLeafNode, err)
		}
	}
	if err := ln.Verify(t.cs, opts.GroupID, at); err != nil {
		return err
	}
	if err := t.checkCapabilities(ln, cur, opts.RequiredCapabilities); err != nil {
		return err
	}
	if ln.Source == LeafNodeSourceKeyPackage && !opts.Now.IsZero() {
		now := opts.Now.Unix()
		if now < 0 || uint64(now) < ln.Lifetime.NotBefore || uint64(now) > ln.Lifetime.NotAfter {
			return fmt.Errorf("%w: lifetime [%d, %d] excludes %d", ErrInvalidLeafNode,
				ln.Lifetime.NotBefore, ln.Lifetime.NotAfter, now)
		}
	}
	except := at.NodeIndex()
	if use == LeafNodeInKeyPackage {
		except = ^NodeIndex(0)
	}
	if x, ok := t.EncryptionKeyHolder(ln.EncryptionKey, except); ok {
		return fmt.Errorf("%w: encryption key of leaf %d is held by node %d", ErrDuplicateKey, at, x)
	}
	if use == LeafNodeInUpdate || use == LeafNodeInCommit {
		if cur, ok := t.LeafEncryptionKey(at); ok && string(cur) == string(ln.EncryptionKey) {
			return fmt.Errorf("%w: encryption key of leaf %d not changed", ErrDuplicateKey, at)
		}
	}
	var exceptLeaf LeafIndex = at
	if use == LeafNodeInKeyPackage {
		exceptLeaf = LeafIndex(MaxLeaves)
	}
	if l, ok := t.SignatureKeyHolder(ln.SignatureKey, exceptLeaf); ok {
		return fmt.Errorf("%w: signature key of leaf %d is held by leaf %d", ErrDuplicateKey, at, l)
	}
	return nil
}

// checkCapabilities checks the capability rules of RFC 9420, Sections 7.2,
// 7.3 and 11.1 for ln replacing cur (nil for a new leaf), against the other
// members' counts.
func (t *Tree) checkCapabilities(ln, cur *LeafNode, rc *RequiredCapabilities) error {
	caps := &ln.Capabilities
	if !slices.Contains(caps.Versions, ProtocolVersionMLS10) {
		return fmt.Errorf("%w: capabilities lack mls10", ErrInvalidLeafNode)
	}
	if !slices.Contains(caps.CipherSuites, t.cs) {
		return fmt.Errorf("%w: capabilities lack cipher suite %v", ErrInvalidLeafNode, t.cs)
	}
	if !slices.Contains(caps.Credentials, ln.Credential.CredentialType) {
		return fmt.Errorf("%w: credential type %d not in its capabilities", ErrInvalidLeafNode, ln.Credential.CredentialType)
	}
	for _, e := range ln.Extensions {
		if !defaultExtension(e.ExtensionType) && !slices.Contains(caps.Extensions, e.ExtensionType) {
			return fmt.Errorf("%w: extension 0x%04x not in its capabilities", ErrInvalidLeafNode, uint16(e.ExtensionType))
		}
	}
	if rc != nil {
		for _, e := range rc.ExtensionTypes {
			if !defaultExtension(e) && !slices.Contains(caps.Extensions, e) {
				return fmt.Errorf("%w: required extension 0x%04x not supported", ErrInvalidLeafNode, uint16(e))
			}
		}
		for _, p := range rc.ProposalTypes {
			if !defaultProposal(p) && !slices.Contains(caps.Proposals, p) {
				return fmt.Errorf("%w: required proposal 0x%04x not supported", ErrInvalidLeafNode, uint16(p))
			}
		}
		for _, c := range rc.CredentialTypes {
			if !slices.Contains(caps.Credentials, c) {
				return fmt.Errorf("%w: required credential type %d not supported", ErrInvalidLeafNode, c)
			}
		}
	}
	// The other members: all of them minus the current occupant.
	members := t.MemberCount()
	if cur != nil {
		members--
	}
	own := func(list []CredentialType, c CredentialType) int {
		if cur != nil && slices.Contains(list, c) {
			return 1
		}
		return 0
	}
	ct := ln.Credential.CredentialType
	if t.caps.credSup[ct]-own(cur.capCreds(), ct) != members {
		return fmt.Errorf("%w: credential type %d not supported by every member", ErrInvalidLeafNode, ct)
	}
	for c, n := range t.caps.credInUse {
		if n-own(cur.credType(), c) > 0 && !slices.Contains(caps.Credentials, c) {
			return fmt.Errorf("%w: credential type %d in use but not supported", ErrInvalidLeafNode, c)
		}
	}
	return nil
}

// capCreds and credType tolerate a nil leaf (no current occupant).
func (n *LeafNode) capCreds() []CredentialType {
	if n == nil {
		return nil
	}
	return n.Capabilities.Credentials
}

func (n *LeafNode) credType() []CredentialType {
	if n == nil {
		return nil
	}
	return []CredentialType{n.Credential.CredentialType}
}

// ValidateLeaves validates every non-blank leaf in [lo, hi) as a leaf of a
// received tree (RFC 9420, Section 12.4.3.1: "for each non-empty leaf node,
// validate the LeafNode"), returning the first failure as a [*TreeError].
//
// Signature checks dominate the cost of joining a large group (about 50 us
// per Ed25519 leaf), and ValidateLeaves only reads t, so a caller with
// several cores may split [0, LeafCount) into ranges and run them on
// separate goroutines; this package starts none itself.
func (t *Tree) ValidateLeaves(lo, hi LeafIndex, opts *ValidationOptions) error {
	hi = min(hi, LeafIndex(t.nLeaves))
	for l := lo; l < hi; l++ {
		ln, ok := t.Leaf(l)
		if !ok {
			continue
		}
		if err := t.checkLeafNode(ln, l, LeafNodeInTree, opts, ln); err != nil {
			return &TreeError{Node: l.NodeIndex(), Err: err}
		}
	}
	return nil
}

// ValidateStructure runs the checks of a received tree that are not per
// leaf (RFC 9420, Sections 7.9.2 and 12.4.3.1): the tree hash (if
// opts.TreeHash is set), unmerged leaves, unique parent keys, and
// parent-hash validity of every non-blank parent. It returns a
// [*TreeError].
func (t *Tree) ValidateStructure(opts *ValidationOptions) error {
	if t.nLeaves == 0 {
		return ErrEmptyTree
	}
	if opts != nil && opts.TreeHash != nil {
		th, _ := t.TreeHash()
		if string(th) != string(opts.TreeHash) {
			return &TreeError{Node: t.root(), Err: ErrBadTreeHash}
		}
	}
	var err error
	t.walkParents(t.root(), func(x NodeIndex, p *ParentNode) bool {
		if e := t.checkUnmerged(x, p); e != nil {
			err = &TreeError{Node: x, Err: e}
			return false
		}
		if y, dup := t.EncryptionKeyHolder(p.EncryptionKey, x); dup {
			err = &TreeError{Node: x, Err: fmt.Errorf("%w: also at node %d", ErrDuplicateKey, y)}
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	return t.VerifyParentHashes()
}

// checkUnmerged checks the unmerged leaves of parent p at x.
func (t *Tree) checkUnmerged(x NodeIndex, p *ParentNode) error {
	for i, l := range p.UnmergedLeaves {
		if i > 0 && l <= p.UnmergedLeaves[i-1] {
			return fmt.Errorf("%w: not strictly increasing", ErrBadUnmergedLeaves)
		}
		if uint32(l) >= t.nLeaves || !rtInSubtree(l.NodeIndex(), x) {
			return fmt.Errorf("%w: leaf %d is not below the node", ErrBadUnmergedLeaves, l)
		}
		if t.leafRaw(l) == nil {
			return fmt.Errorf("%w: leaf %d is blank", ErrBadUnmergedLeaves, l)
		}
		for y := parentStep(l.NodeIndex()); y != x; y = parentStep(y) {
			if q := t.parent(y); q != nil && !slices.Contains(q.UnmergedLeaves, l) {
				return fmt.Errorf("%w: leaf %d missing at node %d", ErrBadUnmergedLeaves, l, y)
			}
		}
	}
	return nil
}

// Validate fully validates a received tree as a joiner must (RFC 9420,
// Section 12.4.3.1): [Tree.ValidateStructure] and then
// [Tree.ValidateLeaves] over all leaves. See ValidateLeaves for spreading
// the leaf checks over several cores.
func (t *Tree) Validate(opts *ValidationOptions) error {
	if err := t.ValidateStructure(opts); err != nil {
		return err
	}
	return t.ValidateLeaves(0, LeafIndex(t.nLeaves), opts)
}
