package mls

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// CreateOptions parameterise [CreateGroup].
type CreateOptions struct {
	// Config is the creator's local policy.
	Config GroupConfig
	// Extensions are the GroupContext extensions of epoch 0.
	Extensions Extensions
	// Capabilities and LeafExtensions go into the creator's leaf.
	Capabilities   Capabilities
	LeafExtensions Extensions
	// NotBefore and NotAfter bound the creator leaf's lifetime (zero
	// NotAfter: NotBefore + 90 days).
	NotBefore, NotAfter time.Time
}

// CreateGroup creates a one-member group (RFC 9420, Section 11): a tree
// holding the creator's leaf, epoch 0 with an empty confirmed transcript
// hash, and a key schedule from a random init_secret. rand supplies every
// secret.
func CreateGroup(rand io.Reader, cs CipherSuite, groupID []byte, sig SignaturePrivateKey, cred Credential, opts *CreateOptions) (*Group, error) {
	if opts == nil {
		opts = &CreateOptions{}
	}
	kb, err := NewKeyPackage(rand, cs, sig, cred, &KeyPackageOptions{
		NotBefore: opts.NotBefore, NotAfter: opts.NotAfter,
		Capabilities: opts.Capabilities, LeafExtensions: opts.LeafExtensions,
	})
	if err != nil {
		return nil, err
	}
	return createGroupWithLeaf(rand, cs, groupID, kb, opts.Extensions, opts.Config)
}

// createGroupWithLeaf creates epoch 0 with the leaf of kb.
func createGroupWithLeaf(rand io.Reader, cs CipherSuite, groupID []byte, kb *KeyPackageBundle, exts Extensions, cfg GroupConfig) (*Group, error) {
	if len(groupID) == 0 {
		return nil, errors.New("mls: empty group ID")
	}
	tree, err := NewTree(cs)
	if err != nil {
		return nil, err
	}
	me, err := tree.AddLeaf(&kb.KeyPackage.LeafNode)
	if err != nil {
		return nil, err
	}
	keys, err := NewTreePrivateKeys(cs, me, kb.EncryptionKey)
	if err != nil {
		return nil, err
	}
	g := &Group{publicState: publicState{cs: cs, tree: tree}, cfg: cfg, keys: keys, me: me, sig: kb.SigningKey}
	if err := checkExtensionsSupported(tree, exts); err != nil {
		return nil, err
	}
	th, err := tree.TreeHash()
	if err != nil {
		return nil, err
	}
	ctx := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: slices.Clone(groupID),
		TreeHash: th, ConfirmedTranscriptHash: []byte{}, Extensions: nonNilExtensions(slices.Clone(exts))}
	initSecret, err := randomSecret(cs, rand)
	if err != nil {
		return nil, err
	}
	return g, g.startEpoch(ctx, initSecret, nil, nil)
}

// startEpoch runs the key schedule of a new group's first epoch (empty
// confirmed transcript hash) and installs it.
func (g *Group) startEpoch(ctx GroupContext, initSecret, commitSecret, pskSecret []byte) error {
	ctxBytes, err := ctx.Marshal()
	if err != nil {
		return err
	}
	es, err := g.cs.AdvanceEpoch(initSecret, commitSecret, pskSecret, ctxBytes)
	if err != nil {
		return err
	}
	tag, err := ConfirmationTag(g.cs, es.ConfirmationKey, ctx.ConfirmedTranscriptHash)
	if err != nil {
		return err
	}
	return g.installEpoch(ctx, ctxBytes, es, tag)
}

// checkExtensionsSupported checks that every member of t supports the
// GroupContext extensions exts and the capabilities they require (RFC 9420,
// Sections 11.1 and 12.1.7).
func checkExtensionsSupported(t *Tree, exts Extensions) error {
	types := make([]ExtensionType, len(exts))
	for i, e := range exts {
		types[i] = e.ExtensionType
	}
	if !t.SupportedByAll(types, nil, nil) {
		return fmt.Errorf("%w: a member does not support the group's extensions %v", ErrInvalidProposal, types)
	}
	rc, err := requiredCapabilities(exts)
	if err != nil {
		return err
	}
	if rc != nil && !t.SupportedByAll(rc.ExtensionTypes, rc.ProposalTypes, rc.CredentialTypes) {
		return fmt.Errorf("%w: a member lacks a required capability", ErrInvalidProposal)
	}
	if _, err := externalSenders(exts); err != nil {
		return err
	}
	if e, ok := exts.Find(ExtensionTypeAppDataDictionary); ok {
		if _, err := UnmarshalAppDataDictionary(e.ExtensionData); err != nil {
			return err
		}
	}
	return nil
}
