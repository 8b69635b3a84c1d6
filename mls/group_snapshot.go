package mls

import (
	"bytes"
	"fmt"

	"slices"
	"time"
)

// Fork support for the ordering layer: snapshots of a group state, and
// past or branch epochs retained for decryption until a deadline, after
// which their secrets are erased (forward secrecy, RFC 9420, Section 9.2).
// Nothing here decides which branch of a fork wins.

// retainedEpoch is an epoch kept only to decrypt late application
// messages.
type retainedEpoch struct {
	id       []byte
	ctx      GroupContext
	tree     *Tree
	prot     *MessageProtector
	deadline time.Time
}

func (r *retainedEpoch) erase() {
	eraseProtector(r.prot)
	r.prot, r.tree = nil, nil
}

// Snapshot is an immutable copy of a group state, identified by the ID of
// the commit that created its epoch. Restore it any number of times.
type Snapshot struct {
	id []byte
	g  *Group
}

// Snapshot returns a copy of the current state that later operations on g
// do not affect.
func (g *Group) Snapshot() *Snapshot {
	return &Snapshot{id: slices.Clone(g.epochID), g: g.deepCopy()}
}

// ID returns the ID of the commit that created the snapshot's epoch.
func (s *Snapshot) ID() []byte { return slices.Clone(s.id) }

// Epoch returns the snapshot's epoch number.
func (s *Snapshot) Epoch() uint64 { return s.g.ctx.Epoch }

// Restore returns a new, independent group state equal to the snapshot.
func (s *Snapshot) Restore() (*Group, error) {
	if s.g == nil {
		return nil, fmt.Errorf("%w: snapshot was erased", ErrGroupInactive)
	}
	return s.g.deepCopy(), nil
}

// Erase overwrites the snapshot's secrets; Restore fails afterwards.
func (s *Snapshot) Erase() {
	if s.g != nil {
		s.g.erase()
		s.g = nil
	}
}

// deepCopy copies every mutable part of g, including secrets and the
// secret tree, so that erasing or ratcheting one copy leaves the other
// intact.
func (g *Group) deepCopy() *Group {
	n := g.clone()
	n.secrets = copyEpochSecrets(g.secrets)
	n.prot = copyProtector(g.prot, n.secrets)
	n.retained = make([]*retainedEpoch, len(g.retained))
	for i, r := range g.retained {
		c := *r
		c.tree = r.tree.Clone()
		c.prot = copyProtector(r.prot, nil)
		n.retained[i] = &c
	}
	return n
}

func copyEpochSecrets(e *EpochSecrets) *EpochSecrets {
	c := &EpochSecrets{Suite: e.Suite}
	c.JoinerSecret = slices.Clone(e.JoinerSecret)
	c.WelcomeSecret = slices.Clone(e.WelcomeSecret)
	src, dst := e.derivedFields(), c.derivedFields()
	for i := range src {
		*dst[i].dst = slices.Clone(*src[i].dst)
	}
	return c
}

// copyProtector copies p with its own secret tree; es, if set, supplies
// the secrets it refers to.
func copyProtector(p *MessageProtector, es *EpochSecrets) *MessageProtector {
	if p == nil {
		return nil
	}
	c := *p
	c.tree = copySecretTree(p.tree)
	if es != nil {
		c.senderDataSecret, c.membershipKey = es.SenderDataSecret, es.MembershipKey
	} else {
		c.senderDataSecret, c.membershipKey = slices.Clone(p.senderDataSecret), slices.Clone(p.membershipKey)
	}
	return &c
}

func copySecretTree(st *SecretTree) *SecretTree {
	c := *st
	c.nodes = make(map[NodeIndex][]byte, len(st.nodes))
	for k, v := range st.nodes {
		c.nodes[k] = slices.Clone(v)
	}
	c.leaves = make(map[LeafIndex]*leafRatchets, len(st.leaves))
	for k, v := range st.leaves {
		lr := &leafRatchets{handshake: copyRatchet(v.handshake), application: copyRatchet(v.application)}
		c.leaves[k] = lr
	}
	return &c
}

func copyRatchet(r hashRatchet) hashRatchet {
	c := hashRatchet{head: r.head, secret: slices.Clone(r.secret)}
	if r.skipped != nil {
		c.skipped = make(map[uint32]keyNonce, len(r.skipped))
		for k, v := range r.skipped {
			c.skipped[k] = keyNonce{key: slices.Clone(v.key), nonce: slices.Clone(v.nonce)}
		}
	}
	return c
}

// eraseProtector overwrites every secret of p and its secret tree.
func eraseProtector(p *MessageProtector) {
	if p == nil {
		return
	}
	clear(p.senderDataSecret)
	clear(p.membershipKey)
	if st := p.tree; st != nil {
		for _, v := range st.nodes {
			clear(v)
		}
		for _, lr := range st.leaves {
			for _, r := range []*hashRatchet{&lr.handshake, &lr.application} {
				clear(r.secret)
				for _, kn := range r.skipped {
					clear(kn.key)
					clear(kn.nonce)
				}
			}
		}
		clear(st.nodes)
		clear(st.leaves)
	}
}

// erase overwrites every secret g holds.
func (g *Group) erase() {
	eraseProtector(g.prot)
	if g.secrets != nil {
		g.secrets.Erase()
	}
	for _, r := range g.retained {
		r.erase()
	}
	g.retained = nil
	for _, r := range g.resumption {
		clear(r.psk)
	}
}

// advanceTo replaces g's state by n, the next epoch, whose ID is id. The
// epoch being left is retained for decryption until now + RetainFor if
// both are set, else its secrets are erased; the secrets of the key
// schedule other than those protecting messages are erased at once.
func (g *Group) advanceTo(n *Group, id []byte, now time.Time) {
	old := g.secrets
	if old != nil {
		// The resumption PSK stays in g.resumption; the protector keeps
		// sender data secret and membership key until it is erased.
		for _, s := range [][]byte{old.JoinerSecret, old.WelcomeSecret, old.EncryptionSecret, old.ExporterSecret,
			old.ExternalSecret, old.ConfirmationKey, old.EpochAuthenticator, old.InitSecret} {
			clear(s)
		}
	}
	if g.cfg.RetainFor > 0 && !now.IsZero() && g.prot != nil {
		r := &retainedEpoch{id: g.epochID, ctx: g.ctx, tree: g.tree, prot: g.prot, deadline: now.Add(g.cfg.RetainFor)}
		n.retained = append(slices.Clone(n.retained), r)
		if k := g.cfg.retainedMax(); len(n.retained) > k {
			for _, x := range n.retained[:len(n.retained)-k] {
				x.erase()
			}
			n.retained = slices.Delete(n.retained, 0, len(n.retained)-k)
		}
	} else if g.prot != n.prot {
		eraseProtector(g.prot)
	}
	*g = *n
	g.epochID = slices.Clone(id)
}

// RetainEpoch keeps the current epoch of other (e.g. the losing branch of
// a fork, or an epoch restored from a snapshot) for decrypting its late
// application messages until deadline. At most
// [GroupConfig.RetainedEpochs] epochs are kept; the oldest is erased first.
func (g *Group) RetainEpoch(other *Group, deadline time.Time) error {
	if !bytes.Equal(other.ctx.GroupID, g.ctx.GroupID) {
		return ErrWrongGroup
	}
	c := other.deepCopy()
	g.retained = append(g.retained, &retainedEpoch{id: c.epochID, ctx: c.ctx, tree: c.tree, prot: c.prot, deadline: deadline})
	if k := g.cfg.retainedMax(); len(g.retained) > k {
		for _, x := range g.retained[:len(g.retained)-k] {
			x.erase()
		}
		g.retained = slices.Delete(g.retained, 0, len(g.retained)-k)
	}
	return nil
}

// RetainedEpochs returns the IDs of the retained epochs, oldest first.
func (g *Group) RetainedEpochs() [][]byte {
	out := make([][]byte, len(g.retained))
	for i, r := range g.retained {
		out[i] = slices.Clone(r.id)
	}
	return out
}

// Expire erases the retained epochs whose deadline is before now; their
// messages can no longer be decrypted.
func (g *Group) Expire(now time.Time) {
	g.retained = slices.DeleteFunc(g.retained, func(r *retainedEpoch) bool {
		if r.deadline.Before(now) {
			r.erase()
			return true
		}
		return false
	})
}

// hasRetained reports whether an epoch numbered epoch is retained.
func (g *Group) hasRetained(epoch uint64) bool {
	for _, r := range g.retained {
		if r.ctx.Epoch == epoch {
			return true
		}
	}
	return false
}

// processRetained decrypts an application message of a retained epoch.
func (g *Group) processRetained(pm *PrivateMessage) (*ProcessedMessage, error) {
	var firstErr error
	for _, r := range g.retained {
		if r.ctx.Epoch != pm.Epoch || !bytes.Equal(r.ctx.GroupID, pm.GroupID) {
			continue
		}
		ac, err := r.prot.UnprotectPrivate(pm, func(s Sender) ([]byte, error) { return signerKeyIn(r.tree, &r.ctx, s) })
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return &ProcessedMessage{ContentType: ac.Content.ContentType, Sender: ac.Content.Sender, Epoch: pm.Epoch,
			AuthenticatedData: ac.Content.AuthenticatedData, ApplicationData: ac.Content.ApplicationData}, nil
	}
	if firstErr != nil {
		return nil, groupErr("unprotect", firstErr)
	}
	return nil, groupErr("message", fmt.Errorf("%w: epoch %d is neither current nor retained", ErrWrongEpoch, pm.Epoch))
}
