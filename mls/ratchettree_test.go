package mls

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// naiveResolution is the definition of RFC 9420, Section 4.1.1 over a wire
// node array, as an oracle for the count-pruned Tree.Resolution.
func naiveResolution(nodes RatchetTree, nLeaves uint32, x NodeIndex) []NodeIndex {
	var n *Node
	if int(x) < len(nodes) {
		n = nodes[x]
	}
	switch {
	case n != nil && n.Parent != nil:
		out := []NodeIndex{x}
		for _, l := range n.Parent.UnmergedLeaves {
			out = append(out, l.NodeIndex())
		}
		return out
	case n != nil:
		return []NodeIndex{x}
	case x.IsLeaf():
		return nil
	}
	r, _ := Right(x, nLeaves)
	return append(naiveResolution(nodes, nLeaves, rtLeft(x)), naiveResolution(nodes, nLeaves, r)...)
}

func TestGeneratedTreesValidate(t *testing.T) {
	t.Parallel()
	for _, cs := range []CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128DHKEMP256AES128GCMSHA256P256} {
		for _, members := range []int{1, 2, 3, 5, 8, 33} {
			t.Run(fmt.Sprintf("%v/members=%d", cs, members), func(t *testing.T) {
				g := newTestTree(t, cs, members, "valid")
				if got := g.tree.MemberCount(); got != members {
					t.Fatalf("MemberCount = %d, want %d", got, members)
				}
				th, err := g.tree.TreeHash()
				if err != nil {
					t.Fatal(err)
				}
				if err := g.tree.Validate(&ValidationOptions{GroupID: g.groupID, TreeHash: th}); err != nil {
					t.Fatalf("generated tree invalid: %v", err)
				}
				enc, err := g.tree.Encode()
				if err != nil {
					t.Fatal(err)
				}
				if wire, err := g.tree.Nodes().Marshal(); err != nil || string(wire) != string(enc) {
					t.Fatalf("Nodes().Marshal() differs from Encode(): %v", err)
				}
				dec, err := DecodeTree(cs, enc)
				if err != nil {
					t.Fatal(err)
				}
				fromNodes, err := NewTreeFromNodes(cs, g.tree.Nodes())
				if err != nil {
					t.Fatal(err)
				}
				if fh, _ := fromNodes.TreeHash(); string(fh) != string(th) {
					t.Fatal("NewTreeFromNodes tree hashes differently")
				}
				if dh, _ := dec.TreeHash(); string(dh) != string(th) {
					t.Fatal("decoded tree hashes differently")
				}
				if err := dec.Validate(&ValidationOptions{GroupID: g.groupID, TreeHash: th}); err != nil {
					t.Fatalf("decoded tree invalid: %v", err)
				}
				if err := dec.Validate(&ValidationOptions{GroupID: []byte("other group")}); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("validation under another group ID: %v, want ErrBadSignature", err)
				}
			})
		}
	}
}

// mutateTree decodes enc to wire form, applies f and re-encodes.
func mutateTree(t *testing.T, enc []byte, f func(nodes RatchetTree)) []byte {
	t.Helper()
	nodes, err := UnmarshalRatchetTree(enc)
	if err != nil {
		t.Fatal(err)
	}
	f(nodes)
	out, err := nodes.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// resign replaces leaf l by a copy edited by f and signed again with l's key.
func (g *testTree) resign(t *testing.T, nodes RatchetTree, l LeafIndex, f func(ln *LeafNode)) {
	ln := *nodes[l.NodeIndex()].Leaf
	ln.raw = nil
	f(&ln)
	if err := ln.Sign(g.cs, g.sigKey(t, l), g.groupID, l); err != nil {
		t.Fatal(err)
	}
	nodes[l.NodeIndex()].Leaf = &ln
}

func TestInvalidTreesRejected(t *testing.T) {
	t.Parallel()
	g := newTestTree(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 6, "invalid")
	enc, err := g.tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	th, _ := g.tree.TreeHash()
	tests := []struct {
		name     string
		mutate   func(nodes RatchetTree)
		treeHash []byte
		want     error
		reason   Reason
		leafOnly bool // a changed leaf also breaks parent hashes above it
	}{
		{"bad parent hash", func(n RatchetTree) {
			p := *n[3].Parent
			p.ParentHash = slices.Clone(p.ParentHash)
			p.ParentHash[0] ^= 1
			n[3].Parent = &p
		}, nil, ErrBadParentHash, ReasonInvalid, false},
		{"bad parent key", func(n RatchetTree) {
			p := *n[1].Parent
			p.EncryptionKey = n[5].Parent.EncryptionKey
			n[1].Parent = &p
		}, nil, ErrDuplicateKey, ReasonInvalid, false},
		{"bad leaf signature", func(n RatchetTree) {
			ln := *n[4].Leaf
			ln.raw = nil
			ln.Signature = slices.Clone(ln.Signature)
			ln.Signature[0] ^= 1
			n[4].Leaf = &ln
		}, nil, ErrBadSignature, ReasonBadSignature, true},
		{"duplicate leaf encryption key", func(n RatchetTree) {
			g.resign(t, n, 0, func(ln *LeafNode) { ln.EncryptionKey = n[2].Leaf.EncryptionKey })
		}, nil, ErrDuplicateKey, ReasonInvalid, true},
		{"duplicate signature key", func(n RatchetTree) {
			// Leaf 1 signs with leaf 0's key: its signature verifies, but
			// the key is no longer unique.
			ln := *n[2].Leaf
			ln.raw = nil
			ln.SignatureKey = n[0].Leaf.SignatureKey
			if err := ln.Sign(g.cs, g.sigKey(t, 0), g.groupID, 1); err != nil {
				t.Fatal(err)
			}
			n[2].Leaf = &ln
		}, nil, ErrDuplicateKey, ReasonInvalid, true},
		{"wrong tree hash", func(RatchetTree) {}, append(slices.Clone(th[1:]), th[0]), ErrBadTreeHash, ReasonInvalid, false},
		{"unmerged leaf not below", func(n RatchetTree) {
			p := *n[1].Parent
			p.UnmergedLeaves = []LeafIndex{3}
			n[1].Parent = &p
		}, nil, ErrBadUnmergedLeaves, ReasonInvalid, false},
		{"credential type unsupported", func(n RatchetTree) {
			g.resign(t, n, 2, func(ln *LeafNode) { ln.Capabilities.Credentials = []CredentialType{CredentialTypeX509} })
		}, nil, ErrInvalidLeafNode, ReasonInvalid, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := mutateTree(t, enc, tt.mutate)
			tree, err := DecodeTree(g.cs, bad)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			opts := &ValidationOptions{GroupID: g.groupID, TreeHash: tt.treeHash}
			err = tree.Validate(opts)
			if tt.leafOnly {
				var te *TreeError
				if !errors.As(err, &te) {
					t.Fatalf("Validate = %v, want a *TreeError", err)
				}
				err = tree.ValidateLeaves(0, LeafIndex(tree.LeafCount()), opts)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
			var te *TreeError
			if !errors.As(err, &te) {
				t.Errorf("error %T is not a *TreeError", err)
			}
			if r := RejectReason(err); r != tt.reason {
				t.Errorf("RejectReason = %v, want %v", r, tt.reason)
			}
		})
	}
}

func TestDecodeTreeRejects(t *testing.T) {
	t.Parallel()
	g := newTestTree(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 3, "decode")
	enc, _ := g.tree.Encode()
	nodes, _ := UnmarshalRatchetTree(enc)
	swapped := slices.Clone(nodes)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	bad, err := swapped.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", []byte{0}},
		{"trailing blank", append([]byte{byte(len(enc[1:]) + 1)}, append(slices.Clone(enc[1:]), 0)...)},
		{"node type swapped", bad},
		{"trailing bytes", append(slices.Clone(enc), 0)},
		{"truncated", enc[:len(enc)-1]},
	}
	for _, tt := range tests {
		if _, err := DecodeTree(g.cs, tt.data); err == nil {
			t.Errorf("%s: decoded", tt.name)
		} else if RejectReason(err) != ReasonMalformed {
			t.Errorf("%s: RejectReason(%v) = %v, want malformed", tt.name, err, RejectReason(err))
		}
	}
}

// TestTreeOperationsAgainstFreshDecode applies random adds, updates and
// removes and checks after each step that the incrementally maintained
// hashes, counts, resolutions and key index agree with a tree decoded from
// scratch and with the naive resolution.
func TestTreeOperationsAgainstFreshDecode(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	g := newTestTree(t, cs, 5, "ops")
	tree := g.tree
	rng := rand.New(rand.NewPCG(1, 2))
	next := 100
	newLeaf := func(src LeafNodeSource) *LeafNode {
		next++
		sk, _, _ := cs.GenerateSignatureKeyPair(&seedReader{seed: fmt.Appendf(nil, "sig%d", next)})
		_, pub, _ := nodeKeyPair(cs, g.testSecret("extra", NodeIndex(next)))
		ln := &LeafNode{EncryptionKey: pub, SignatureKey: sk.PublicKey(), Credential: NewBasicCredential([]byte("x")),
			Capabilities: Capabilities{Versions: []ProtocolVersion{1}, CipherSuites: []CipherSuite{cs}, Credentials: []CredentialType{1}},
			Source:       src, Lifetime: Lifetime{NotAfter: 1 << 62}, Extensions: Extensions{}}
		if err := ln.Sign(cs, sk, nil, 0); err != nil {
			t.Fatal(err)
		}
		return ln
	}
	type snapshot struct {
		tree *Tree
		enc  []byte
	}
	var snaps []snapshot
	for step := range 60 {
		if step%7 == 3 {
			// Snapshot a clone; later writes to either side must not leak.
			enc, _ := tree.Encode()
			if rng.IntN(2) == 0 {
				snaps = append(snaps, snapshot{tree.Clone(), enc})
			} else {
				old := tree
				tree = tree.Clone()
				snaps = append(snaps, snapshot{old, enc})
			}
		}
		members := slices.Collect(tree.Members())
		var op string
		switch r := rng.IntN(10); {
		case r < 5 || len(members) < 2:
			op = "add"
			if _, err := tree.AddLeaf(newLeaf(LeafNodeSourceKeyPackage)); err != nil {
				t.Fatal(err)
			}
		case r < 7:
			op = "update"
			if err := tree.UpdateLeaf(members[rng.IntN(len(members))], newLeaf(LeafNodeSourceUpdate)); err != nil {
				t.Fatal(err)
			}
		default:
			op = "remove"
			if err := tree.RemoveLeaf(members[rng.IntN(len(members))]); err != nil {
				t.Fatal(err)
			}
		}
		checkTreeAgainstDecode(t, fmt.Sprintf("step %d (%s)", step, op), tree)
	}
	for i, s := range snaps {
		if enc, _ := s.tree.Encode(); string(enc) != string(s.enc) {
			t.Fatalf("snapshot %d changed after later writes", i)
		}
		checkTreeAgainstDecode(t, fmt.Sprintf("snapshot %d", i), s.tree)
	}
}

func checkTreeAgainstDecode(t *testing.T, what string, tree *Tree) {
	t.Helper()
	enc, err := tree.Encode()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	fresh, err := DecodeTree(tree.cs, enc)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if fresh.LeafCount() != tree.LeafCount() {
		t.Fatalf("%s: leaf count %d, fresh %d (truncation)", what, tree.LeafCount(), fresh.LeafCount())
	}
	h1, _ := tree.TreeHash()
	h2, _ := fresh.TreeHash()
	if string(h1) != string(h2) {
		t.Fatalf("%s: incremental tree hash differs from a fresh computation", what)
	}
	nodes := fresh.Nodes()
	// Received trees may repeat keys (Validate rejects that), so the index
	// is checked against a naive count rather than for uniqueness.
	keyCount := map[string]int{}
	for _, n := range nodes {
		switch {
		case n != nil && n.Leaf != nil:
			keyCount[string(n.Leaf.EncryptionKey)]++
		case n != nil:
			keyCount[string(n.Parent.EncryptionKey)]++
		}
	}
	for x := range NodeWidth(tree.nLeaves) {
		got, _ := tree.Resolution(NodeIndex(x))
		want := naiveResolution(nodes, tree.nLeaves, NodeIndex(x))
		if !slices.Equal(got, want) {
			t.Fatalf("%s: resolution(%d) = %v, want %v", what, x, got, want)
		}
		if key, ok := tree.EncryptionKey(NodeIndex(x)); ok {
			holders := tree.enc.lookup(key, tree.encKeyOf)
			if !slices.Contains(holders, NodeIndex(x)) || len(holders) != keyCount[string(key)] {
				t.Fatalf("%s: index lookup for node %d = %v, want it among %d holders", what, x, holders, keyCount[string(key)])
			}
		}
	}
	if tree.MemberCount() != fresh.MemberCount() {
		t.Fatalf("%s: member count %d, fresh %d", what, tree.MemberCount(), fresh.MemberCount())
	}
}

func TestTreeCloneIsolation(t *testing.T) {
	t.Parallel()
	g := newTestTree(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 260, "clone")
	orig := g.tree
	before, _ := orig.Encode()
	beforeHash, _ := orig.TreeHash()
	c := orig.Clone()
	for l := LeafIndex(256); l < 260; l++ {
		if err := c.RemoveLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.RemoveLeaf(7); err != nil {
		t.Fatal(err)
	}
	if c.LeafCount() != 256 {
		t.Errorf("clone not truncated: %d leaves", c.LeafCount())
	}
	c2 := c.Clone()
	if err := c2.RemoveLeaf(8); err != nil {
		t.Fatal(err)
	}
	after, _ := orig.Encode()
	afterHash, _ := orig.TreeHash()
	if string(before) != string(after) || string(beforeHash) != string(afterHash) {
		t.Fatal("modifying a clone changed the original")
	}
	if _, ok := orig.EncryptionKeyHolder(mustKey(t, orig, 7), ^NodeIndex(0)); !ok {
		t.Fatal("original lost a key from its index")
	}
	if _, ok := c.EncryptionKeyHolder(mustKey(t, orig, 7), ^NodeIndex(0)); ok {
		t.Fatal("clone still indexes a removed key")
	}
	if _, ok := c.Leaf(8); !ok {
		t.Fatal("second-level clone changed the first clone")
	}
	checkTreeAgainstDecode(t, "clone", c)
	checkTreeAgainstDecode(t, "clone of clone", c2)
	checkTreeAgainstDecode(t, "original", orig)
}

func mustKey(t *testing.T, tree *Tree, l LeafIndex) []byte {
	k, ok := tree.LeafEncryptionKey(l)
	if !ok {
		t.Fatalf("leaf %d blank", l)
	}
	return k
}
