package mls

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"time"
)

// Pre-shared keys, resumption, branch and reinit (RFC 9420, Sections 8.4,
// 8.6, 11.2 and 11.3).

// lookupPSK returns the value of a PSK: this group's own resumption PSKs of
// recent epochs, else the configured lookup.
func (g *Group) lookupPSK(id *PreSharedKeyID) ([]byte, bool) {
	if id.PSKType == PSKTypeResumption && bytes.Equal(id.PSKGroupID, g.ctx.GroupID) {
		for _, r := range g.resumption {
			if r.epoch == id.PSKEpoch {
				return r.psk, true
			}
		}
	}
	if g.cfg.PSKs != nil {
		return g.cfg.PSKs(id)
	}
	return nil, false
}

// checkPSKID validates a PreSharedKey proposal's ID (RFC 9420, Section
// 12.1.4): a known type, a nonce of Nh bytes, the application usage for a
// resumption PSK (reinit and branch usages only in the first commit of a
// new group), and, if the policy can tell, a value the validator has.
func (s *publicState) checkPSKID(id *PreSharedKeyID, usage ResumptionPSKUsage, pol *groupPolicy) error {
	bad := func(format string, args ...any) error {
		return groupErrf("psk", ErrInvalidProposal, format, args...)
	}
	switch id.PSKType {
	case PSKTypeExternal:
	case PSKTypeResumption:
		if id.Usage != usage && !(s.ctx.Epoch == 0 && (id.Usage == ResumptionPSKUsageReinit || id.Usage == ResumptionPSKUsageBranch)) {
			return bad("resumption PSK usage %d", id.Usage)
		}
	default:
		return bad("PSK type %d", id.PSKType)
	}
	if len(id.PSKNonce) != s.cs.Nh() {
		return bad("psk_nonce of %d bytes", len(id.PSKNonce))
	}
	if pol.hasPSK != nil && !pol.hasPSK(id) {
		return groupErr("psk", ErrUnknownPSK)
	}
	return nil
}

// pskSecret computes psk_secret for ids (nil for none).
func (g *Group) pskSecret(ids []PreSharedKeyID) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	psks := make([]PSKWithSecret, len(ids))
	for i := range ids {
		v, ok := g.lookupPSK(&ids[i])
		if !ok {
			return nil, groupErr("psk", ErrUnknownPSK)
		}
		psks[i] = PSKWithSecret{ID: ids[i], PSK: v}
	}
	return g.cs.PSKSecret(psks)
}

// ResumptionPSKLookup returns a [PSKLookup] answering this group's
// resumption PSKs of the epochs it remembers, for the Config of a branch or
// reinitialized group (RFC 9420, Sections 11.2 and 11.3).
func (g *Group) ResumptionPSKLookup() PSKLookup {
	groupID := slices.Clone(g.ctx.GroupID)
	res := slices.Clone(g.resumption)
	return func(id *PreSharedKeyID) ([]byte, bool) {
		if id.PSKType != PSKTypeResumption || !bytes.Equal(id.PSKGroupID, groupID) {
			return nil, false
		}
		for _, r := range res {
			if r.epoch == id.PSKEpoch {
				return r.psk, true
			}
		}
		return nil, false
	}
}

// NewPSKID returns a PreSharedKeyID with a fresh nonce from rand.
func NewPSKID(rand io.Reader, cs CipherSuite, id PreSharedKeyID) (PreSharedKeyID, error) {
	nonce, err := randomSecret(cs, rand)
	if err != nil {
		return id, err
	}
	id.PSKNonce = nonce
	return id, nil
}

// ResumeOptions parameterise [Group.Branch] and [Group.ReInit].
type ResumeOptions struct {
	// Config is the new group's local policy; its PSKs lookup is chained
	// after this group's resumption PSKs.
	Config GroupConfig
	// Extensions are the new group's GroupContext extensions (Branch only;
	// ReInit takes them from the ReInit proposal).
	Extensions Extensions
	// Now is the time for KeyPackage lifetime checks.
	Now time.Time
	// SigningKey is this member's signature key in the new group; required
	// when a reinit changes the cipher suite, else this group's key.
	SigningKey SignaturePrivateKey
}

// Branch starts a new group with groupID from this group's current epoch
// (RFC 9420, Section 11.3): a one-member group of this member that commits
// Adds of the KeyPackages kps and a resumption PSK of usage branch. It
// returns the new group, already in epoch 1, and the Welcome.
func (g *Group) Branch(rand io.Reader, groupID []byte, kps []*KeyPackage, opts *ResumeOptions) (*Group, *Welcome, error) {
	if opts == nil {
		opts = &ResumeOptions{}
	}
	if g.inactive {
		return nil, nil, ErrGroupInactive
	}
	return g.resume(rand, g.cs, groupID, ResumptionPSKUsageBranch, g.ctx.Epoch, opts.Extensions, kps, opts)
}

// ReInit creates the group that replaces this one after a committed ReInit
// proposal (RFC 9420, Section 11.2): the proposal's group ID, version,
// suite and extensions, this member with a fresh leaf in the new suite, the
// KeyPackages kps (of the new suite) added, and a resumption PSK of usage
// reinit from this group's last epoch.
func (g *Group) ReInit(rand io.Reader, kps []*KeyPackage, opts *ResumeOptions) (*Group, *Welcome, error) {
	if opts == nil {
		opts = &ResumeOptions{}
	}
	if g.reinit == nil {
		return nil, nil, fmt.Errorf("%w: no committed reinit", ErrInvalidProposal)
	}
	ri := g.reinit
	return g.resume(rand, ri.CipherSuite, ri.GroupID, ResumptionPSKUsageReinit, g.ctx.Epoch, ri.Extensions, kps, opts)
}

func (g *Group) resume(rand io.Reader, cs CipherSuite, groupID []byte, usage ResumptionPSKUsage, epoch uint64,
	exts Extensions, kps []*KeyPackage, opts *ResumeOptions) (*Group, *Welcome, error) {
	cfg := opts.Config
	own, outer := g.ResumptionPSKLookup(), cfg.PSKs
	cfg.PSKs = func(id *PreSharedKeyID) ([]byte, bool) {
		if v, ok := own(id); ok {
			return v, true
		}
		if outer != nil {
			return outer(id)
		}
		return nil, false
	}
	cur, ok := g.tree.Leaf(g.me)
	if !ok {
		return nil, nil, ErrBlankLeaf
	}
	sig := g.sig
	if opts.SigningKey.Valid() {
		sig = opts.SigningKey
	} else if cs != g.cs {
		return nil, nil, fmt.Errorf("%w: a reinit to another suite needs ResumeOptions.SigningKey", ErrInvalidProposal)
	}
	kb, err := NewKeyPackage(rand, cs, sig, cur.Credential, &KeyPackageOptions{NotBefore: opts.Now,
		Capabilities: cur.Capabilities, LeafExtensions: cur.Extensions})
	if err != nil {
		return nil, nil, err
	}
	ng, err := createGroupWithLeaf(rand, cs, groupID, kb, exts, cfg)
	if err != nil {
		return nil, nil, err
	}
	id, err := NewPSKID(rand, cs, PreSharedKeyID{PSKType: PSKTypeResumption, Usage: usage,
		PSKGroupID: slices.Clone(g.ctx.GroupID), PSKEpoch: epoch})
	if err != nil {
		return nil, nil, err
	}
	props := []Proposal{&PreSharedKeyProposal{PSK: id}}
	for _, kp := range kps {
		props = append(props, &AddProposal{KeyPackage: *kp})
	}
	pc, err := ng.Commit(rand, &CommitOptions{Proposals: props, Now: opts.Now})
	if err != nil {
		return nil, nil, err
	}
	if err := ng.MergeCommit(pc, nil, opts.Now); err != nil {
		return nil, nil, err
	}
	return ng, pc.Welcome, nil
}
