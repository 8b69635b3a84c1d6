package mls

import (
	"time"
)

// Joining by Welcome (RFC 9420, Section 12.4.3.1) and GroupInfo checks.

// JoinOptions parameterise [JoinGroup].
type JoinOptions struct {
	// Config is the joiner's local policy; Config.PSKs must answer the
	// PSKs the Welcome names (for a branch or reinit, chain the old group's
	// [Group.ResumptionPSKLookup]).
	Config GroupConfig
	// RatchetTree is the encoded tree when the GroupInfo has no
	// ratchet_tree extension.
	RatchetTree []byte
	// Now is the time for lifetime checks of the tree's KeyPackage leaves
	// (zero skips them).
	Now time.Time
	// EpochID identifies the joined epoch (see [Group.EpochID]).
	EpochID []byte
	// ValidateLeaves, if set, replaces the sequential leaf validation of
	// the received tree (e.g. to spread [Tree.ValidateLeaves] over cores;
	// this package starts no goroutines).
	ValidateLeaves func(t *Tree, opts *ValidationOptions) error
}

// JoinGroup joins a group from a Welcome with the KeyPackage bundle it was
// made for: it decrypts the GroupSecrets and GroupInfo, fully validates
// the ratchet tree (structure, parent hashes, tree hash, every leaf),
// verifies the GroupInfo signature, implants the path secret, runs the key
// schedule from joiner_secret and checks the confirmation tag.
func JoinGroup(w *Welcome, kb *KeyPackageBundle, opts *JoinOptions) (*Group, error) {
	if opts == nil {
		opts = &JoinOptions{}
	}
	if w == nil || kb == nil || kb.KeyPackage == nil {
		return nil, groupErrf("welcome", ErrBadWelcome, "missing welcome or key package")
	}
	cs := kb.KeyPackage.CipherSuite
	if w.CipherSuite != cs {
		return nil, groupErrf("welcome", ErrBadWelcome, "suite %v for a key package of suite %v", w.CipherSuite, cs)
	}
	ref, err := kb.KeyPackage.Ref()
	if err != nil {
		return nil, err
	}
	gs, err := w.DecryptGroupSecrets(ref, kb.InitPriv)
	if err != nil {
		return nil, groupErr("group secrets", err)
	}
	if len(gs.JoinerSecret) != cs.Nh() {
		return nil, groupErrf("group secrets", ErrBadWelcome, "joiner_secret of %d bytes, want %d", len(gs.JoinerSecret), cs.Nh())
	}
	if gs.PathSecret != nil && len(gs.PathSecret.PathSecret) != cs.Nh() {
		return nil, groupErrf("group secrets", ErrBadWelcome, "path_secret of %d bytes, want %d", len(gs.PathSecret.PathSecret), cs.Nh())
	}
	g := &Group{publicState: publicState{cs: cs}, cfg: opts.Config, sig: kb.SigningKey}
	for i := range gs.PSKs {
		if len(gs.PSKs[i].PSKNonce) != cs.Nh() {
			return nil, groupErrf("psk", ErrInvalidProposal, "psk_nonce of %d bytes", len(gs.PSKs[i].PSKNonce))
		}
	}
	psk, err := g.pskSecret(gs.PSKs)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := cs.WelcomeSecret(gs.JoinerSecret, psk)
	if err != nil {
		return nil, err
	}
	gi, err := w.DecryptGroupInfo(welcomeSecret)
	if err != nil {
		return nil, groupErr("group info", err)
	}
	if gi.GroupContext.CipherSuite != cs || gi.GroupContext.Version != kb.KeyPackage.Version {
		return nil, groupErrf("group info", ErrBadWelcome, "group suite %v version %d, key package suite %v version %d",
			gi.GroupContext.CipherSuite, gi.GroupContext.Version, cs, kb.KeyPackage.Version)
	}
	if g.tree, err = groupInfoTree(gi, opts.RatchetTree); err != nil {
		return nil, err
	}
	if err := g.verifyGroupInfo(gi, opts.Now, opts.ValidateLeaves); err != nil {
		return nil, err
	}
	me, ok := g.tree.FindLeaf(&kb.KeyPackage.LeafNode)
	if !ok {
		return nil, groupErrf("welcome", ErrBadWelcome, "the tree does not hold the key package's leaf")
	}
	g.me = me
	if g.keys, err = NewTreePrivateKeys(cs, me, kb.EncryptionKey); err != nil {
		return nil, err
	}
	if gs.PathSecret != nil {
		x := CommonAncestor(me.NodeIndex(), gi.Signer.NodeIndex())
		if _, err := g.keys.ImplantPathSecret(g.tree, x, gs.PathSecret.PathSecret); err != nil {
			return nil, groupErr("path secret", err)
		}
	}
	ctx := gi.GroupContext
	ctxBytes, err := ctx.Marshal()
	if err != nil {
		return nil, err
	}
	es, err := cs.EpochSecretsFromJoiner(gs.JoinerSecret, psk, ctxBytes)
	if err != nil {
		return nil, err
	}
	if err := VerifyConfirmationTag(cs, es.ConfirmationKey, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		return nil, groupErr("confirmation tag", err)
	}
	if err := g.installEpoch(ctx, ctxBytes, es, gi.ConfirmationTag); err != nil {
		return nil, err
	}
	g.epochID = opts.EpochID
	return g, nil
}

// groupInfoTree decodes the ratchet tree of a GroupInfo's extension, or
// the one supplied out of band.
func groupInfoTree(gi *GroupInfo, external []byte) (*Tree, error) {
	cs := gi.GroupContext.CipherSuite
	data := external
	if e, ok := gi.Extensions.Find(ExtensionTypeRatchetTree); ok {
		data = e.ExtensionData
	}
	if data == nil {
		return nil, groupErrf("group info", ErrBadWelcome, "no ratchet tree in the GroupInfo or the options")
	}
	t, err := DecodeTree(cs, data)
	if err != nil {
		return nil, groupErr("ratchet tree", err)
	}
	return t, nil
}

// verifyGroupInfo validates g.tree against gi as [verifyGroupInfoTree]
// does, under the member's policy.
func (g *Group) verifyGroupInfo(gi *GroupInfo, now time.Time, validateLeaves func(*Tree, *ValidationOptions) error) error {
	return verifyGroupInfoTree(g.tree, gi, now, g.policy(), validateLeaves)
}
