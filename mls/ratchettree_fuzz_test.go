package mls

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// vectorTrees returns the suite-1 trees of tree-validation.json as seeds.
func vectorTrees(f *testing.F) [][]byte {
	data, err := os.ReadFile(filepath.Join("testdata", "mlswg", "tree-validation.json"))
	if err != nil {
		f.Fatal(err)
	}
	var cases []struct {
		CipherSuite uint16 `json:"cipher_suite"`
		Tree        string `json:"tree"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, c := range cases {
		if c.CipherSuite != uint16(MLS128DHKEMX25519AES128GCMSHA256Ed25519) {
			continue
		}
		b, err := hex.DecodeString(c.Tree)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		f.Fatal("no suite-1 trees in tree-validation.json")
	}
	return out
}

// FuzzRatchetTreeValidate decodes a received ratchet tree and runs every
// check a joiner runs. Decoding then encoding must give the input back, and
// nothing may panic, whatever the bytes.
func FuzzRatchetTreeValidate(f *testing.F) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	for _, tree := range vectorTrees(f) {
		f.Add(tree)
	}
	g := newTestTree(f, cs, 5, "fuzz")
	enc, err := g.tree.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := DecodeTree(cs, data)
		if err != nil {
			if RejectReason(err) != ReasonMalformed {
				t.Fatalf("decode error %v is not malformed", err)
			}
			return
		}
		out, err := tree.Encode()
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		if string(out) != string(data) {
			t.Fatalf("decode then encode changed the bytes")
		}
		if _, err := tree.TreeHash(); err != nil {
			t.Fatal(err)
		}
		if w := NodeWidth(tree.LeafCount()); w <= 1<<12 {
			for x := range w {
				if _, err := tree.Resolution(NodeIndex(x)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for l := range tree.Members() {
			if _, err := tree.FilteredDirectPath(l); err != nil {
				t.Fatal(err)
			}
		}
		if err := tree.Validate(&ValidationOptions{GroupID: g.groupID}); err != nil && RejectReason(err) == ReasonNone {
			t.Fatalf("validation error %v has no reject reason", err)
		}
		// Removing the first member from a clone keeps every cache in step
		// with a fresh decode and leaves the original alone.
		if first, ok := next(tree.Members()); ok && NodeWidth(tree.LeafCount()) <= 1<<12 {
			c := tree.Clone()
			if err := c.RemoveLeaf(first); err != nil {
				t.Fatal(err)
			}
			if c.MemberCount() > 0 {
				checkTreeAgainstDecode(t, "after removal", c)
			}
			if again, _ := tree.Encode(); string(again) != string(data) {
				t.Fatal("removal from a clone changed the original")
			}
		}
	})
}

// FuzzUpdatePathProcess feeds arbitrary UpdatePath bytes from an arbitrary
// sender to a member of a fixed tree. It must never panic, and whatever it
// accepts must leave a tree with valid parent hashes.
func FuzzUpdatePathProcess(f *testing.F) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	g := newTestTree(f, cs, 6, "fuzz-path")
	c := newTestCommit(f, g, 1, 1)
	enc, err := c.res.Path.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(1), enc)
	f.Add(uint8(2), enc)
	keys := g.keysFor(f, g.tree, 4)
	base := g.tree.Clone()
	c.applyAdds(f, base)
	f.Fuzz(func(t *testing.T, sender uint8, data []byte) {
		path, err := UnmarshalUpdatePath(data)
		if err != nil {
			return
		}
		tree := base.Clone()
		pp, err := tree.ProcessUpdatePath(LeafIndex(sender%8), path, keys, c.ctx, c.added)
		if err != nil {
			return
		}
		if len(pp.CommitSecret) != cs.Nh() {
			t.Fatalf("commit secret of %d bytes", len(pp.CommitSecret))
		}
		if err := tree.VerifyParentHashes(); err != nil {
			t.Fatalf("accepted path leaves invalid parent hashes: %v", err)
		}
	})
}

// next returns the first value of seq.
func next[V any](seq func(func(V) bool)) (V, bool) {
	for v := range seq {
		return v, true
	}
	var zero V
	return zero, false
}
