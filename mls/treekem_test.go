package mls

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// testCommit is a commit with two Adds and an UpdatePath from sender, built
// on a clone of a generated tree.
type testCommit struct {
	g       *testTree
	sender  LeafIndex
	added   []LeafIndex
	addPriv [][]byte
	ctx     GroupContext
	tree    *Tree // the committer's tree after the commit
	res     *UpdatePathResult
}

// applyAdds adds the commit's new members to t.
func (c *testCommit) applyAdds(tb testing.TB, t *Tree) []LeafIndex {
	var out []LeafIndex
	for i := range c.addPriv {
		pub, err := c.g.cs.HPKEPublicKeyFromPrivate(c.addPriv[i])
		if err != nil {
			tb.Fatal(err)
		}
		sk, _, _ := c.g.cs.GenerateSignatureKeyPair(&seedReader{seed: fmt.Appendf(nil, "new%d", i)})
		ln := &LeafNode{EncryptionKey: pub, SignatureKey: sk.PublicKey(), Credential: NewBasicCredential([]byte("new")),
			Capabilities: Capabilities{Versions: []ProtocolVersion{1}, CipherSuites: []CipherSuite{c.g.cs}, Credentials: []CredentialType{1}},
			Source:       LeafNodeSourceKeyPackage, Lifetime: Lifetime{NotAfter: 1 << 40}, Extensions: Extensions{}}
		if err := ln.Sign(c.g.cs, sk, nil, 0); err != nil {
			tb.Fatal(err)
		}
		l, err := t.AddLeaf(ln)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func newTestCommit(tb testing.TB, g *testTree, sender LeafIndex, adds int) *testCommit {
	c := &testCommit{g: g, sender: sender}
	for i := range adds {
		priv, _, err := nodeKeyPair(g.cs, g.testSecret("joiner", NodeIndex(i)))
		if err != nil {
			tb.Fatal(err)
		}
		c.addPriv = append(c.addPriv, priv)
	}
	c.tree = g.tree.Clone()
	c.added = c.applyAdds(tb, c.tree)
	c.ctx = GroupContext{Version: ProtocolVersionMLS10, CipherSuite: g.cs, GroupID: g.groupID, Epoch: 8,
		ConfirmedTranscriptHash: []byte("cth"), Extensions: Extensions{}}
	tmpl, ok := c.tree.Leaf(sender)
	if !ok {
		tb.Fatalf("sender %d blank", sender)
	}
	var err error
	c.res, err = c.tree.CreateUpdatePath(sender, &UpdatePathParams{
		Leaf: *tmpl, SigningKey: g.sigKey(tb, sender), GroupContext: c.ctx, Exclude: c.added,
	}, &seedReader{seed: []byte("commit")})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// receive processes the commit at member m on a fresh copy of the tree.
func (c *testCommit) receive(tb testing.TB, m LeafIndex, path *UpdatePath) (*Tree, *ProcessedPath, error) {
	t := c.g.tree.Clone()
	c.applyAdds(tb, t)
	pp, err := t.ProcessUpdatePath(c.sender, path, c.g.keysFor(tb, c.g.tree, m), c.ctx, c.added)
	return t, pp, err
}

func TestUpdatePathAllMembersAgree(t *testing.T) {
	t.Parallel()
	suites := []CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128DHKEMP256AES128GCMSHA256P256, MLS256DHKEMP384AES256GCMSHA384P384}
	for _, cs := range suites {
		for _, tc := range []struct{ members, sender int }{{2, 0}, {7, 3}, {12, 11}} {
			t.Run(fmt.Sprintf("%v/members=%d/sender=%d", cs, tc.members, tc.sender), func(t *testing.T) {
				g := newTestTree(t, cs, tc.members, "agree")
				c := newTestCommit(t, g, LeafIndex(tc.sender), 2)
				if err := c.tree.VerifyParentHashes(); err != nil {
					t.Fatalf("committer's tree: %v", err)
				}
				want, _ := c.tree.Encode()
				// Path secrets are encrypted to the copath resolutions minus
				// the new members.
				steps, _ := c.tree.filteredPath(c.sender)
				if len(steps) != len(c.res.Path.Nodes) {
					t.Fatalf("%d path nodes for %d filtered path nodes", len(c.res.Path.Nodes), len(steps))
				}
				for k, s := range steps {
					res, _ := c.tree.Resolution(s.copath)
					res = slices.DeleteFunc(res, func(x NodeIndex) bool {
						l, ok := x.LeafIndex()
						return ok && slices.Contains(c.added, l)
					})
					if n := len(c.res.Path.Nodes[k].EncryptedPathSecret); n != len(res) {
						t.Fatalf("node %d: %d ciphertexts for resolution %v", s.node, n, res)
					}
				}
				for m := range LeafIndex(tc.members) {
					if m == c.sender {
						continue
					}
					tr, pp, err := c.receive(t, m, c.res.Path)
					if err != nil {
						t.Fatalf("member %d: %v", m, err)
					}
					if string(pp.CommitSecret) != string(c.res.CommitSecret) {
						t.Fatalf("member %d: commit secret differs", m)
					}
					if got, _ := tr.Encode(); string(got) != string(want) {
						t.Fatalf("member %d: tree differs from the committer's", m)
					}
					// The new state holds keys for the whole path above m.
					for _, x := range pp.Keys.Nodes(tr) {
						if _, ok := tr.EncryptionKey(x); !ok {
							t.Fatalf("member %d: key for blank node %d", m, x)
						}
					}
					if len(pp.Keys.Nodes(tr)) < 2 {
						t.Fatalf("member %d: only %d keys after the commit", m, len(pp.Keys.Nodes(tr)))
					}
				}
				// New members get their path secret in the Welcome.
				for i, l := range c.added {
					ps, ok := c.res.PathSecretFor(l)
					if !ok {
						t.Fatalf("no path secret for new member %d", l)
					}
					keys, err := NewTreePrivateKeys(cs, l, c.addPriv[i])
					if err != nil {
						t.Fatal(err)
					}
					got, err := keys.ImplantPathSecret(c.tree, CommonAncestor(c.sender.NodeIndex(), l.NodeIndex()), ps)
					if err != nil {
						t.Fatalf("new member %d: %v", l, err)
					}
					if string(got) != string(c.res.CommitSecret) {
						t.Fatalf("new member %d: commit secret differs", l)
					}
				}
			})
		}
	}
}

func TestProcessUpdatePathRejects(t *testing.T) {
	t.Parallel()
	g := newTestTree(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 6, "reject")
	c := newTestCommit(t, g, 1, 1)
	const receiver = LeafIndex(4)
	clonePath := func() *UpdatePath {
		enc, err := c.res.Path.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p, err := UnmarshalUpdatePath(enc)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	resign := func(p *UpdatePath, f func(ln *LeafNode)) {
		ln := p.LeafNode
		ln.raw = nil
		f(&ln)
		if err := ln.Sign(g.cs, g.sigKey(t, c.sender), g.groupID, c.sender); err != nil {
			t.Fatal(err)
		}
		p.LeafNode = ln
	}
	otherKey, _ := g.tree.EncryptionKey(5)
	tests := []struct {
		name   string
		edit   func(p *UpdatePath)
		want   error
		reason Reason
	}{
		{"ciphertext", func(p *UpdatePath) {
			ct := &p.Nodes[len(p.Nodes)-1].EncryptedPathSecret[0]
			ct.Ciphertext = slices.Clone(ct.Ciphertext)
			ct.Ciphertext[0] ^= 1
		}, ErrDecrypt, ReasonDecrypt},
		{"missing node", func(p *UpdatePath) { p.Nodes = p.Nodes[:len(p.Nodes)-1] }, ErrBadUpdatePath, ReasonInvalid},
		{"extra ciphertext", func(p *UpdatePath) {
			n := &p.Nodes[len(p.Nodes)-1]
			n.EncryptedPathSecret = append(n.EncryptedPathSecret, n.EncryptedPathSecret[0])
		}, ErrBadUpdatePath, ReasonInvalid},
		{"leaf parent hash", func(p *UpdatePath) {
			resign(p, func(ln *LeafNode) { ln.ParentHash = slices.Clone(ln.ParentHash); ln.ParentHash[0] ^= 1 })
		}, ErrBadParentHash, ReasonInvalid},
		{"leaf signature", func(p *UpdatePath) {
			ln := p.LeafNode
			ln.raw = nil
			ln.Signature = slices.Clone(ln.Signature)
			ln.Signature[1] ^= 1
			p.LeafNode = ln
		}, ErrBadSignature, ReasonBadSignature},
		{"leaf source", func(p *UpdatePath) {
			resign(p, func(ln *LeafNode) { ln.Source = LeafNodeSourceUpdate })
		}, ErrBadUpdatePath, ReasonInvalid},
		{"reused tree key", func(p *UpdatePath) { p.Nodes[0].EncryptionKey = otherKey }, ErrDuplicateKey, ReasonInvalid},
		{"repeated key", func(p *UpdatePath) { p.Nodes[1].EncryptionKey = p.Nodes[0].EncryptionKey }, ErrDuplicateKey, ReasonInvalid},
	}
	if _, _, err := c.receive(t, receiver, clonePath()); err != nil {
		t.Fatalf("unmodified path rejected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := clonePath()
			tt.edit(p)
			_, _, err := c.receive(t, receiver, p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ProcessUpdatePath = %v, want %v", err, tt.want)
			}
			if tt.reason != ReasonNone && RejectReason(err) != tt.reason {
				t.Errorf("RejectReason = %v, want %v", RejectReason(err), tt.reason)
			}
		})
	}
	t.Run("wrong group context", func(t *testing.T) {
		tr := g.tree.Clone()
		c.applyAdds(t, tr)
		ctx := c.ctx
		ctx.Epoch++
		if _, err := tr.ProcessUpdatePath(c.sender, clonePath(), g.keysFor(t, g.tree, receiver), ctx, c.added); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("ProcessUpdatePath = %v, want ErrDecrypt", err)
		}
	})
	t.Run("receiver is sender", func(t *testing.T) {
		tr := g.tree.Clone()
		c.applyAdds(t, tr)
		if _, err := tr.ProcessUpdatePath(c.sender, clonePath(), g.keysFor(t, g.tree, c.sender), c.ctx, c.added); !errors.Is(err, ErrBadUpdatePath) {
			t.Fatalf("ProcessUpdatePath = %v, want ErrBadUpdatePath", err)
		}
	})
}

func TestTreePrivateKeysPrune(t *testing.T) {
	t.Parallel()
	g := newTestTree(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 4, "prune")
	keys := g.keysFor(t, g.tree, 0)
	before := keys.Nodes(g.tree)
	if !slices.Equal(before, []NodeIndex{0, 1, 3}) {
		t.Fatalf("keys for %v, want [0 1 3]", before)
	}
	tr := g.tree.Clone()
	if err := tr.RemoveLeaf(3); err != nil { // blanks nodes 5 and 3
		t.Fatal(err)
	}
	if got := keys.Nodes(tr); !slices.Equal(got, []NodeIndex{0, 1}) {
		t.Fatalf("keys valid after removal: %v, want [0 1]", got)
	}
	if _, ok := keys.PrivateKey(tr, 3); ok {
		t.Fatal("stale key for blanked node 3 still usable")
	}
	keys.Prune(tr)
	if len(keys.keys) != 2 {
		t.Fatalf("prune kept %d keys, want 2", len(keys.keys))
	}
}

// TestTreeKEMEpochs runs a sequence of commits with random adds and
// removes, each with an UpdatePath from a random member, and checks that
// every member (existing ones by processing the path, new ones from their
// Welcome path secret) derives the same commit secret and tree, carrying
// its private state from epoch to epoch.
func TestTreeKEMEpochs(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	g := newTestTree(t, cs, 5, "epochs")
	cur := g.tree.Clone()
	keys := map[LeafIndex]*TreePrivateKeys{}
	sigs := map[LeafIndex]SignaturePrivateKey{}
	for l := range LeafIndex(5) {
		keys[l], sigs[l] = g.keysFor(t, g.tree, l), g.sigKey(t, l)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	next := 0
	for epoch := range 14 {
		ctx := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: g.groupID, Epoch: uint64(epoch + 1), Extensions: Extensions{}}
		members := slices.Collect(cur.Members())
		committer := members[rng.IntN(len(members))]
		base := cur.Clone()
		// Proposals: remove someone other than the committer, add up to two.
		if len(members) > 2 && rng.IntN(2) == 0 {
			victim := members[rng.IntN(len(members))]
			if victim != committer {
				if err := base.RemoveLeaf(victim); err != nil {
					t.Fatal(err)
				}
				delete(keys, victim)
				delete(sigs, victim)
			}
		}
		var added []LeafIndex
		newPriv := map[LeafIndex][]byte{}
		for range rng.IntN(3) {
			next++
			priv, pub, err := nodeKeyPair(cs, g.testSecret("epoch-joiner", NodeIndex(next)))
			if err != nil {
				t.Fatal(err)
			}
			sk, _, _ := cs.GenerateSignatureKeyPair(&seedReader{seed: fmt.Appendf(nil, "epoch-sig-%d", next)})
			ln := &LeafNode{EncryptionKey: pub, SignatureKey: sk.PublicKey(), Credential: NewBasicCredential([]byte("j")),
				Capabilities: Capabilities{Versions: []ProtocolVersion{1}, CipherSuites: []CipherSuite{cs}, Credentials: []CredentialType{1}},
				Source:       LeafNodeSourceKeyPackage, Lifetime: Lifetime{NotAfter: 1 << 40}, Extensions: Extensions{}}
			if err := ln.Sign(cs, sk, nil, 0); err != nil {
				t.Fatal(err)
			}
			l, err := base.AddLeaf(ln)
			if err != nil {
				t.Fatal(err)
			}
			added, newPriv[l], sigs[l] = append(added, l), priv, sk
		}
		// The commit.
		mine := base.Clone()
		tmpl, _ := mine.Leaf(committer)
		res, err := mine.CreateUpdatePath(committer, &UpdatePathParams{Leaf: *tmpl, SigningKey: sigs[committer], GroupContext: ctx, Exclude: added},
			&seedReader{seed: fmt.Appendf(nil, "epoch-%d", epoch)})
		if err != nil {
			t.Fatalf("epoch %d: create: %v", epoch, err)
		}
		want, _ := mine.Encode()
		for l, k := range keys {
			if l == committer {
				continue
			}
			theirs := base.Clone()
			pp, err := theirs.ProcessUpdatePath(committer, res.Path, k, ctx, added)
			if err != nil {
				t.Fatalf("epoch %d: member %d processing %d's path: %v", epoch, l, committer, err)
			}
			if string(pp.CommitSecret) != string(res.CommitSecret) {
				t.Fatalf("epoch %d: member %d: commit secret differs", epoch, l)
			}
			if got, _ := theirs.Encode(); string(got) != string(want) {
				t.Fatalf("epoch %d: member %d: tree differs", epoch, l)
			}
			keys[l] = pp.Keys
		}
		keys[committer] = res.Keys
		for _, l := range added {
			k, err := NewTreePrivateKeys(cs, l, newPriv[l])
			if err != nil {
				t.Fatal(err)
			}
			ps, ok := res.PathSecretFor(l)
			if !ok {
				t.Fatalf("epoch %d: no path secret for joiner %d", epoch, l)
			}
			cs2, err := k.ImplantPathSecret(mine, CommonAncestor(committer.NodeIndex(), l.NodeIndex()), ps)
			if err != nil || string(cs2) != string(res.CommitSecret) {
				t.Fatalf("epoch %d: joiner %d: %v", epoch, l, err)
			}
			keys[l] = k
		}
		if err := mine.Validate(&ValidationOptions{GroupID: g.groupID}); err != nil {
			t.Fatalf("epoch %d: tree invalid after the commit: %v", epoch, err)
		}
		cur = mine
	}
}
