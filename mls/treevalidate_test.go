package mls

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestCheckLeafNode(t *testing.T) {
	t.Parallel()
	g := newTestTree(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 4, "check")
	cs := g.cs
	newKey := func(label string) []byte {
		_, pub, err := nodeKeyPair(cs, g.testSecret(label, 0))
		if err != nil {
			t.Fatal(err)
		}
		return pub
	}
	// leaf builds a leaf for position at, edited by f, signed by at's key
	// (or by a fresh key for a KeyPackage leaf).
	leaf := func(src LeafNodeSource, at LeafIndex, f func(ln *LeafNode)) *LeafNode {
		sk := g.sigKey(t, at)
		if src == LeafNodeSourceKeyPackage {
			sk, _, _ = cs.GenerateSignatureKeyPair(&seedReader{seed: []byte("kp")})
		}
		ln := &LeafNode{
			EncryptionKey: newKey("fresh"), SignatureKey: sk.PublicKey(),
			Credential: NewBasicCredential([]byte("someone")),
			Capabilities: Capabilities{Versions: []ProtocolVersion{ProtocolVersionMLS10}, CipherSuites: []CipherSuite{cs},
				Credentials: []CredentialType{CredentialTypeBasic}, Extensions: []ExtensionType{0x0a0a}},
			Source: src, Lifetime: Lifetime{NotBefore: 1000, NotAfter: 2000}, Extensions: Extensions{},
		}
		if f != nil {
			f(ln)
		}
		if err := ln.Sign(cs, sk, g.groupID, at); err != nil {
			t.Fatal(err)
		}
		return ln
	}
	at1500 := time.Unix(1500, 0)
	otherEnc, _ := g.tree.LeafEncryptionKey(2)
	otherSig, _ := g.tree.LeafSignatureKey(2)
	curEnc, _ := g.tree.LeafEncryptionKey(1)
	tests := []struct {
		name string
		ln   *LeafNode
		at   LeafIndex
		use  LeafNodeUse
		opts ValidationOptions
		want error
	}{
		{"valid key package", leaf(LeafNodeSourceKeyPackage, 9, nil), 9, LeafNodeInKeyPackage, ValidationOptions{Now: at1500}, nil},
		{"valid update", leaf(LeafNodeSourceUpdate, 1, nil), 1, LeafNodeInUpdate, ValidationOptions{}, nil},
		{"valid commit", leaf(LeafNodeSourceCommit, 1, nil), 1, LeafNodeInCommit, ValidationOptions{}, nil},
		{"expired", leaf(LeafNodeSourceKeyPackage, 9, nil), 9, LeafNodeInKeyPackage, ValidationOptions{Now: time.Unix(2001, 0)}, ErrInvalidLeafNode},
		{"not yet valid", leaf(LeafNodeSourceKeyPackage, 9, nil), 9, LeafNodeInKeyPackage, ValidationOptions{Now: time.Unix(999, 0)}, ErrInvalidLeafNode},
		{"wrong source", leaf(LeafNodeSourceKeyPackage, 1, nil), 1, LeafNodeInUpdate, ValidationOptions{}, ErrInvalidLeafNode},
		{"signed for another leaf", leaf(LeafNodeSourceUpdate, 1, nil), 3, LeafNodeInUpdate, ValidationOptions{}, ErrBadSignature},
		{"required extension missing", leaf(LeafNodeSourceUpdate, 1, nil), 1, LeafNodeInUpdate,
			ValidationOptions{RequiredCapabilities: &RequiredCapabilities{ExtensionTypes: []ExtensionType{0x0b0b}}}, ErrInvalidLeafNode},
		{"required extension present", leaf(LeafNodeSourceUpdate, 1, nil), 1, LeafNodeInUpdate,
			ValidationOptions{RequiredCapabilities: &RequiredCapabilities{ExtensionTypes: []ExtensionType{0x0a0a, ExtensionTypeExternalSenders}}}, nil},
		{"required credential missing", leaf(LeafNodeSourceUpdate, 1, nil), 1, LeafNodeInUpdate,
			ValidationOptions{RequiredCapabilities: &RequiredCapabilities{CredentialTypes: []CredentialType{CredentialTypeX509}}}, ErrInvalidLeafNode},
		{"unlisted extension", leaf(LeafNodeSourceUpdate, 1, func(ln *LeafNode) {
			ln.Extensions = Extensions{{ExtensionType: 0x0c0c}}
		}), 1, LeafNodeInUpdate, ValidationOptions{}, ErrInvalidLeafNode},
		{"default extension needs no listing", leaf(LeafNodeSourceUpdate, 1, func(ln *LeafNode) {
			ln.Extensions = Extensions{{ExtensionType: ExtensionTypeApplicationID, ExtensionData: []byte("id")}}
		}), 1, LeafNodeInUpdate, ValidationOptions{}, nil},
		{"credential type unsupported by others", leaf(LeafNodeSourceUpdate, 1, func(ln *LeafNode) {
			ln.Credential = Credential{CredentialType: CredentialTypeX509, Certificates: [][]byte{{1}}}
			ln.Capabilities.Credentials = []CredentialType{CredentialTypeBasic, CredentialTypeX509}
		}), 1, LeafNodeInUpdate, ValidationOptions{}, ErrInvalidLeafNode},
		{"cipher suite missing", leaf(LeafNodeSourceUpdate, 1, func(ln *LeafNode) {
			ln.Capabilities.CipherSuites = []CipherSuite{MLS128DHKEMP256AES128GCMSHA256P256}
		}), 1, LeafNodeInUpdate, ValidationOptions{}, ErrInvalidLeafNode},
		{"encryption key of another member", leaf(LeafNodeSourceUpdate, 1, func(ln *LeafNode) { ln.EncryptionKey = otherEnc }),
			1, LeafNodeInUpdate, ValidationOptions{}, ErrDuplicateKey},
		{"encryption key unchanged", leaf(LeafNodeSourceUpdate, 1, func(ln *LeafNode) { ln.EncryptionKey = curEnc }),
			1, LeafNodeInUpdate, ValidationOptions{}, ErrDuplicateKey},
		{"key package reusing a member's key", leaf(LeafNodeSourceKeyPackage, 9, func(ln *LeafNode) { ln.EncryptionKey = curEnc }),
			9, LeafNodeInKeyPackage, ValidationOptions{}, ErrDuplicateKey},
		{"credential rejected", leaf(LeafNodeSourceUpdate, 1, nil), 1, LeafNodeInUpdate,
			ValidationOptions{ValidateCredential: func(*Credential, []byte) error { return errors.New("revoked") }}, ErrInvalidLeafNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.GroupID = g.groupID
			err := g.tree.CheckLeafNode(tt.ln, tt.at, tt.use, &opts)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckLeafNode = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("signature key of another member", func(t *testing.T) {
		ln := leaf(LeafNodeSourceUpdate, 1, nil)
		ln.raw, ln.SignatureKey = nil, otherSig
		if err := ln.Sign(cs, g.sigKey(t, 2), g.groupID, 1); err != nil {
			t.Fatal(err)
		}
		if err := g.tree.CheckLeafNode(ln, 1, LeafNodeInUpdate, &ValidationOptions{GroupID: g.groupID}); !errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("CheckLeafNode = %v, want ErrDuplicateKey", err)
		}
	})
}

func TestSupportedByAll(t *testing.T) {
	t.Parallel()
	g := newTestTree(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 3, "caps")
	tree := g.tree.Clone()
	if !tree.SupportedByAll([]ExtensionType{ExtensionTypeRequiredCapabilities}, []ProposalType{ProposalTypeRemove}, []CredentialType{CredentialTypeBasic}) {
		t.Fatal("default types and the common credential type must count as supported")
	}
	if tree.SupportedByAll(nil, []ProposalType{ProposalTypeSelfRemove}, nil) {
		t.Fatal("self_remove is listed by no member")
	}
	// Give every member support for self_remove, one by one.
	for l := range LeafIndex(3) {
		if tree.SupportedByAll(nil, []ProposalType{ProposalTypeSelfRemove}, nil) {
			t.Fatalf("supported by all after %d of 3 members", l)
		}
		ln, _ := tree.Leaf(l)
		ln.raw = nil
		ln.Source = LeafNodeSourceUpdate
		ln.Capabilities.Proposals = []ProposalType{ProposalTypeSelfRemove, ProposalTypeSelfRemove}
		if err := ln.Sign(g.cs, g.sigKey(t, l), g.groupID, l); err != nil {
			t.Fatal(err)
		}
		if err := tree.UpdateLeaf(l, ln); err != nil {
			t.Fatal(err)
		}
	}
	if !tree.SupportedByAll(nil, []ProposalType{ProposalTypeSelfRemove}, nil) {
		t.Fatal("self_remove supported by every member after the updates")
	}
	if err := tree.RemoveLeaf(2); err != nil {
		t.Fatal(err)
	}
	if !tree.SupportedByAll(nil, []ProposalType{ProposalTypeSelfRemove}, nil) {
		t.Fatal("removal broke the counts")
	}
	if g.tree.SupportedByAll(nil, []ProposalType{ProposalTypeSelfRemove}, nil) {
		t.Fatal("updates to a clone changed the original's counts")
	}
	if got := tree.CredentialTypesInUse(); !slices.Equal(got, []CredentialType{CredentialTypeBasic}) {
		t.Fatalf("CredentialTypesInUse = %v", got)
	}
}

func TestNewGroupTree(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	tree, err := NewTree(cs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.TreeHash(); !errors.Is(err, ErrEmptyTree) {
		t.Fatalf("TreeHash of an empty tree = %v", err)
	}
	g := newTestTree(t, cs, 1, "creator")
	creator, _ := g.tree.Leaf(0)
	l, err := tree.AddLeaf(creator)
	if err != nil || l != 0 {
		t.Fatalf("AddLeaf = %d, %v", l, err)
	}
	want, _ := g.tree.TreeHash()
	if got, _ := tree.TreeHash(); string(got) != string(want) {
		t.Fatal("one-member tree hashes differently from its decoded form")
	}
	if idx, ok := tree.FindLeaf(creator); !ok || idx != 0 {
		t.Fatalf("FindLeaf = %d, %v", idx, ok)
	}
	if _, err := NewTree(0x0bad); !errors.Is(err, ErrUnsupportedCipherSuite) {
		t.Fatalf("NewTree(0x0bad) = %v", err)
	}
	if err := tree.RemoveLeaf(1); err == nil {
		t.Fatal("removed a leaf outside the tree")
	}
	if err := tree.UpdateLeaf(5, creator); !errors.Is(err, ErrBlankLeaf) {
		t.Fatalf("UpdateLeaf outside the tree = %v", err)
	}
}

// TestValidateLeavesConcurrent runs the per-leaf checks of one tree on
// several goroutines, as a caller spreading a join over cores does; under
// -race it shows that ValidateLeaves only reads the tree.
func TestValidateLeavesConcurrent(t *testing.T) {
	t.Parallel()
	g := newTestTree(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519, 40, "concurrent")
	tree := g.tree.Clone()
	if err := tree.ValidateStructure(&ValidationOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := &ValidationOptions{GroupID: g.groupID, Now: time.Unix(1<<30, 0)}
	if err := validateLeavesParallel(tree, opts, 4); err != nil {
		t.Fatal(err)
	}
	opts.GroupID = []byte("wrong")
	if err := validateLeavesParallel(tree, opts, 4); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("parallel validation under a wrong group ID = %v", err)
	}
}
