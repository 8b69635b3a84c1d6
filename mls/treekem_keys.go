package mls

import (
	"errors"
	"fmt"
	"slices"
)

// TreePrivateKeys holds one member's private HPKE keys in the ratchet tree:
// its leaf key and the keys of the parent nodes on its direct path that it
// knows (RFC 9420, Section 4.2, the tree invariant). Each key is stored with
// the public key it belongs to and is used only while the tree still holds
// that public key at that node, so keys made stale by a blanked or replaced
// node are never used, and [TreePrivateKeys.Prune] erases them.
type TreePrivateKeys struct {
	leaf LeafIndex
	keys []rtPrivKey // sorted by node
}

type rtPrivKey struct {
	node      NodeIndex
	pub, priv []byte
}

// ErrNoPrivateKey reports that a member holds no private key for any node
// an UpdatePath was encrypted to, or an inconsistent private state.
var ErrNoPrivateKey = errors.New("mls: no matching private tree key")

// NewTreePrivateKeys returns the private state of the member at leaf with
// leaf encryption private key encPriv (in SerializePrivateKey form).
func NewTreePrivateKeys(cs CipherSuite, leaf LeafIndex, encPriv []byte) (*TreePrivateKeys, error) {
	pub, err := cs.HPKEPublicKeyFromPrivate(encPriv)
	if err != nil {
		return nil, err
	}
	k := &TreePrivateKeys{leaf: leaf}
	k.set(leaf.NodeIndex(), pub, slices.Clone(encPriv))
	return k, nil
}

// Leaf returns the member's leaf index.
func (k *TreePrivateKeys) Leaf() LeafIndex { return k.leaf }

// Clone returns an independent copy (private keys are immutable and shared).
func (k *TreePrivateKeys) Clone() *TreePrivateKeys {
	return &TreePrivateKeys{leaf: k.leaf, keys: slices.Clone(k.keys)}
}

func (k *TreePrivateKeys) find(x NodeIndex) (int, bool) {
	return slices.BinarySearchFunc(k.keys, x, func(e rtPrivKey, x NodeIndex) int {
		return int(int64(e.node) - int64(x))
	})
}

func (k *TreePrivateKeys) set(x NodeIndex, pub, priv []byte) {
	i, ok := k.find(x)
	e := rtPrivKey{node: x, pub: pub, priv: priv}
	if ok {
		k.keys[i] = e
		return
	}
	k.keys = slices.Insert(k.keys, i, e)
}

// PrivateKey returns the private key for node x if the member holds the one
// matching the public key x has in t.
func (k *TreePrivateKeys) PrivateKey(t *Tree, x NodeIndex) ([]byte, bool) {
	i, ok := k.find(x)
	if !ok {
		return nil, false
	}
	pub, ok := t.EncryptionKey(x)
	if !ok || string(pub) != string(k.keys[i].pub) {
		return nil, false
	}
	return k.keys[i].priv, true
}

// Nodes returns the nodes for which the member holds a key valid in t.
func (k *TreePrivateKeys) Nodes(t *Tree) []NodeIndex {
	var out []NodeIndex
	for _, e := range k.keys {
		if _, ok := k.PrivateKey(t, e.node); ok {
			out = append(out, e.node)
		}
	}
	return out
}

// Prune erases the keys whose node no longer holds the matching public key
// in t (RFC 9420, Section 7.5: "delete outdated key material").
func (k *TreePrivateKeys) Prune(t *Tree) {
	k.keys = slices.DeleteFunc(k.keys, func(e rtPrivKey) bool {
		pub, ok := t.EncryptionKey(e.node)
		return !ok || string(pub) != string(e.pub)
	})
}

// nodeKeyPair derives the key pair of a node from its path secret (RFC
// 9420, Section 7.4): node_secret = DeriveSecret(path_secret, "node").
func nodeKeyPair(cs CipherSuite, pathSecret []byte) (priv, pub []byte, err error) {
	ns, err := cs.DeriveSecret(pathSecret, "node")
	if err != nil {
		return nil, nil, err
	}
	return cs.DeriveKeyPair(ns)
}

// SetPathSecret installs the key pair derived from the path secret of the
// single parent node x (node_secret = DeriveSecret(path_secret, "node")),
// after checking it against x's public key in t.
func (k *TreePrivateKeys) SetPathSecret(t *Tree, x NodeIndex, pathSecret []byte) error {
	p := t.parent(x)
	if p == nil {
		return fmt.Errorf("%w: node %d is not a non-blank parent", ErrNoPrivateKey, x)
	}
	priv, pub, err := nodeKeyPair(t.cs, pathSecret)
	if err != nil {
		return err
	}
	if string(pub) != string(p.EncryptionKey) {
		return fmt.Errorf("%w: path secret does not match the public key of node %d", ErrNoPrivateKey, x)
	}
	k.set(x, pub, priv)
	return nil
}

// ImplantPathSecret installs the path secret of node x, as a joiner does
// with the path_secret of its GroupSecrets (x is then the lowest common
// ancestor of its leaf and the committer's, RFC 9420, Section 12.4.3.1): it
// derives the keys of x and of each non-blank ancestor of x from the chain
// path_secret[n+1] = DeriveSecret(path_secret[n], "path"), checking each
// against the public key in t. It returns the secret that follows the last
// one used (the commit_secret).
func (k *TreePrivateKeys) ImplantPathSecret(t *Tree, x NodeIndex, pathSecret []byte) ([]byte, error) {
	if uint32(x) >= t.width() || x.IsLeaf() || t.parent(x) == nil {
		return nil, fmt.Errorf("%w: path secret for node %d, which is not a non-blank parent", ErrNoPrivateKey, x)
	}
	if !rtInSubtree(k.leaf.NodeIndex(), x) {
		return nil, fmt.Errorf("%w: node %d is not above leaf %d", ErrNoPrivateKey, x, k.leaf)
	}
	ps := pathSecret
	root := t.root()
	for y := x; ; y = parentStep(y) {
		if p := t.parent(y); p != nil {
			priv, pub, err := nodeKeyPair(t.cs, ps)
			if err != nil {
				return nil, err
			}
			if string(pub) != string(p.EncryptionKey) {
				return nil, fmt.Errorf("%w: path secret does not match the public key of node %d", ErrNoPrivateKey, y)
			}
			k.set(y, pub, priv)
			if ps, err = t.cs.DeriveSecret(ps, "path"); err != nil {
				return nil, err
			}
		}
		if y == root {
			return ps, nil
		}
	}
}
