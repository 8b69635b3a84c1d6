package mls

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

// testTree is a valid, fully populated ratchet tree generated from a seed,
// as if its members had joined and then committed once each, from left to
// right: every parent holds a key, parent hashes chain correctly, leaves are
// signed. Keys are derived from the seed, so any member's private state can
// be rebuilt on demand, and generation costs O(n) key derivations and
// signatures instead of n sequential commits.
type testTree struct {
	cs      CipherSuite
	groupID []byte
	seed    string
	members int
	tree    *Tree
}

// testSecret derives a per-node secret of Nh bytes from the seed.
func (g *testTree) testSecret(label string, x NodeIndex) []byte {
	var out []byte
	for ctr := byte(0); len(out) < g.cs.Nh(); ctr++ {
		h := sha256.New()
		fmt.Fprintf(h, "%s|%s|%d|%d", g.seed, label, x, ctr)
		out = h.Sum(out)
	}
	return out[:g.cs.Nh()]
}

// sigKey returns the signature key of leaf l.
func (g *testTree) sigKey(tb testing.TB, l LeafIndex) SignaturePrivateKey {
	k, _, err := g.cs.GenerateSignatureKeyPair(&seedReader{seed: g.testSecret("sig", l.NodeIndex())})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// keysFor returns the private state of member l: its leaf key and the keys
// of its non-blank ancestors.
func (g *testTree) keysFor(tb testing.TB, t *Tree, l LeafIndex) *TreePrivateKeys {
	priv, _, err := nodeKeyPair(g.cs, g.testSecret("node", l.NodeIndex()))
	if err != nil {
		tb.Fatal(err)
	}
	k, err := NewTreePrivateKeys(g.cs, l, priv)
	if err != nil {
		tb.Fatal(err)
	}
	root := t.root()
	for x := l.NodeIndex(); x != root; {
		x = parentStep(x)
		if t.parent(x) != nil {
			if err := k.SetPathSecret(t, x, g.testSecret("node", x)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return k
}

// newTestTree generates a tree of the given number of members.
func newTestTree(tb testing.TB, cs CipherSuite, members int, seed string) *testTree {
	tb.Helper()
	t, err := NewTree(cs)
	if err != nil {
		tb.Fatal(err)
	}
	for t.nLeaves < uint32(members) {
		if err := t.extend(); err != nil {
			tb.Fatal(err)
		}
	}
	g := &testTree{cs: cs, groupID: []byte("group " + seed), seed: seed, members: members, tree: t}
	g.build(tb, t.root(), []byte{})
	return g
}

// hasMembers reports whether x's subtree holds one of the first g.members
// leaves.
func (g *testTree) hasMembers(x NodeIndex) bool {
	lo, _ := rtLeafSpan(x)
	return int(lo) < g.members
}

// build fills the subtree at x; ph is the parent_hash its topmost non-blank
// node must carry.
func (g *testTree) build(tb testing.TB, x NodeIndex, ph []byte) {
	t := g.tree
	if !g.hasMembers(x) {
		return
	}
	if l, ok := x.LeafIndex(); ok {
		g.setLeaf(tb, l, ph)
		return
	}
	left, right := rtLeft(x), rtRight(x)
	if !g.hasMembers(right) {
		// A commit from the left half leaves x blank (its copath child has
		// an empty resolution).
		g.build(tb, left, ph)
		return
	}
	_, pub, err := nodeKeyPair(g.cs, g.testSecret("node", x))
	if err != nil {
		tb.Fatal(err)
	}
	t.setParent(x, &ParentNode{EncryptionKey: pub, ParentHash: ph})
	// The left half was last set by commits whose parent hashes at x were
	// overwritten later: any value works for it ("ghost" hashes).
	g.build(tb, left, g.testSecret("ghost", left))
	hs := t.newHasher()
	sib := t.treeHash(left, hs)
	g.build(tb, right, parentHash(hs, pub, ph, sib))
}

func (g *testTree) setLeaf(tb testing.TB, l LeafIndex, ph []byte) {
	_, pub, err := nodeKeyPair(g.cs, g.testSecret("node", l.NodeIndex()))
	if err != nil {
		tb.Fatal(err)
	}
	sk := g.sigKey(tb, l)
	ln := LeafNode{
		EncryptionKey: pub,
		SignatureKey:  sk.PublicKey(),
		Credential:    NewBasicCredential(fmt.Appendf(nil, "member-%d", l)),
		Capabilities: Capabilities{
			Versions:     []ProtocolVersion{ProtocolVersionMLS10},
			CipherSuites: []CipherSuite{g.cs},
			Credentials:  []CredentialType{CredentialTypeBasic},
		},
		Source:     LeafNodeSourceCommit,
		ParentHash: ph,
		Extensions: Extensions{},
	}
	if err := ln.Sign(g.cs, sk, g.groupID, l); err != nil {
		tb.Fatal(err)
	}
	raw, dec, err := prepareLeaf(&ln)
	if err != nil {
		tb.Fatal(err)
	}
	g.tree.setLeaf(l, raw, dec)
}

// seedReader is a deterministic byte stream (SHA-256 in counter mode).
type seedReader struct {
	seed []byte
	ctr  uint64
	buf  []byte
}

func (r *seedReader) Read(p []byte) (int, error) {
	for n := 0; n < len(p); {
		if len(r.buf) == 0 {
			h := sha256.New()
			h.Write(r.seed)
			h.Write(binary.BigEndian.AppendUint64(nil, r.ctr))
			r.ctr++
			r.buf = h.Sum(nil)
		}
		k := copy(p[n:], r.buf)
		r.buf = r.buf[k:]
		n += k
	}
	return len(p), nil
}
