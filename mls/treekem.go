package mls

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// TreeKEM: creating and processing UpdatePaths (RFC 9420, Sections 7.4-7.6,
// 12.4.1 and 12.4.2).

// labelUpdatePathNode is the EncryptWithLabel label of path secrets.
const labelUpdatePathNode = "UpdatePathNode"

// ErrBadUpdatePath reports an UpdatePath that does not fit the tree: a
// wrong number of nodes or ciphertexts, a leaf of the wrong source, or a
// decrypted path secret that does not yield the advertised public keys.
var ErrBadUpdatePath = errors.New("mls: invalid update path")

// UpdatePathParams are the inputs of [Tree.CreateUpdatePath].
type UpdatePathParams struct {
	// Leaf is the committer's new leaf as a template: its SignatureKey,
	// Credential, Capabilities and Extensions are kept; EncryptionKey,
	// Source (commit), ParentHash and Signature are set.
	Leaf LeafNode
	// SigningKey signs the new leaf.
	SigningKey SignaturePrivateKey
	// GroupContext is the provisional GroupContext (RFC 9420, Section
	// 12.4.1): new epoch and extensions, old confirmed transcript hash. Its
	// TreeHash is replaced by the hash of the updated tree.
	GroupContext GroupContext
	// Exclude lists the leaves added by the same commit: path secrets are
	// not encrypted to them (they receive theirs in the Welcome).
	Exclude []LeafIndex
}

// UpdatePathResult is what [Tree.CreateUpdatePath] produces.
type UpdatePathResult struct {
	// Path is the UpdatePath for the Commit.
	Path *UpdatePath
	// CommitSecret is the commit_secret for the key schedule.
	CommitSecret []byte
	// Keys is the committer's private state in the updated tree.
	Keys *TreePrivateKeys
	// GroupContext is the provisional GroupContext with the new tree hash.
	GroupContext GroupContext

	from    LeafIndex
	secrets []rtPrivKey // node and path secret (in priv) per filtered path node
}

// PathSecretFor returns the path secret a new member at leaf must receive
// in its GroupSecrets: the one of the lowest common ancestor of its leaf and
// the committer's (RFC 9420, Section 12.4.1).
func (r *UpdatePathResult) PathSecretFor(leaf LeafIndex) ([]byte, bool) {
	ca := CommonAncestor(r.from.NodeIndex(), leaf.NodeIndex())
	for _, s := range r.secrets {
		if s.node == ca {
			return s.priv, true
		}
	}
	return nil, false
}

// randomSecret reads an Nh-byte secret from rand.
func randomSecret(cs CipherSuite, rand io.Reader) ([]byte, error) {
	if rand == nil {
		return nil, errors.New("mls: nil random source")
	}
	s := make([]byte, cs.Nh())
	if _, err := io.ReadFull(rand, s); err != nil {
		return nil, fmt.Errorf("mls: reading randomness: %w", err)
	}
	return s, nil
}

// CreateUpdatePath updates the direct path of leaf from (RFC 9420, Sections
// 7.4 and 7.5) in t, which must already reflect the commit's proposals (and,
// for an external commit, hold the joiner's reserved leaf, see
// [Tree.ReserveLeaf]). It draws a leaf secret from rand, derives the path
// secrets path_secret[0] = DeriveSecret(leaf_secret, "path") and onwards
// and the node keys, sets the new keys and parent hashes, signs the new
// leaf, and encrypts each path secret to the resolution of its copath child
// under the provisional GroupContext.
//
// Cost: O(log n) key derivations and hashes, plus one HPKE encryption per
// resolution node (one per level in a fully populated tree).
func (t *Tree) CreateUpdatePath(from LeafIndex, p *UpdatePathParams, rand io.Reader) (*UpdatePathResult, error) {
	cs := t.cs
	if p == nil {
		return nil, errors.New("mls: nil update path parameters")
	}
	if uint32(from) >= t.nLeaves {
		return nil, treeErr("leaf %d not in a tree of %d leaves", from, t.nLeaves)
	}
	steps, err := t.filteredPath(from)
	if err != nil {
		return nil, err
	}
	leafSecret, err := randomSecret(cs, rand)
	if err != nil {
		return nil, err
	}
	leafPriv, leafPub, err := nodeKeyPair(cs, leafSecret)
	if err != nil {
		return nil, err
	}
	res := &UpdatePathResult{from: from, Keys: &TreePrivateKeys{leaf: from}}
	pubs := make([][]byte, len(steps))
	ps := leafSecret
	for k, s := range steps {
		if ps, err = cs.DeriveSecret(ps, "path"); err != nil {
			return nil, err
		}
		priv, pub, err := nodeKeyPair(cs, ps)
		if err != nil {
			return nil, err
		}
		pubs[k] = pub
		res.secrets = append(res.secrets, rtPrivKey{node: s.node, pub: pub, priv: ps})
		res.Keys.set(s.node, pub, priv)
	}
	if res.CommitSecret, err = cs.DeriveSecret(ps, "path"); err != nil {
		return nil, err
	}
	res.Keys.set(from.NodeIndex(), leafPub, leafPriv)

	// Merge into the tree and sign the leaf over its parent hash.
	t.blankDirectPath(from)
	leaf := p.Leaf
	leaf.EncryptionKey = leafPub
	leaf.Source = LeafNodeSourceCommit
	leaf.Lifetime = Lifetime{}
	leaf.ParentHash = t.setPath(steps, pubs)
	if err := leaf.Sign(cs, p.SigningKey, p.GroupContext.GroupID, from); err != nil {
		return nil, err
	}
	raw, dec, err := prepareLeaf(&leaf)
	if err != nil {
		return nil, err
	}
	t.setLeaf(from, raw, dec)

	res.GroupContext = p.GroupContext
	if res.GroupContext.TreeHash, err = t.TreeHash(); err != nil {
		return nil, err
	}
	ctx, err := res.GroupContext.Marshal()
	if err != nil {
		return nil, err
	}
	exclude := slices.Sorted(slices.Values(p.Exclude))
	path := &UpdatePath{LeafNode: *dec, Nodes: make([]UpdatePathNode, len(steps))}
	var targets []NodeIndex
	for k, s := range steps {
		targets = t.appendResolution(targets[:0], s.copath, exclude)
		n := UpdatePathNode{EncryptionKey: pubs[k], EncryptedPathSecret: make([]HPKECiphertext, len(targets))}
		for j, r := range targets {
			pub, _ := t.EncryptionKey(r)
			kem, ct, err := cs.EncryptWithLabel(pub, labelUpdatePathNode, ctx, res.secrets[k].priv, rand)
			if err != nil {
				return nil, fmt.Errorf("mls: encrypt path secret to node %d: %w", r, err)
			}
			n.EncryptedPathSecret[j] = HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		}
		path.Nodes[k] = n
	}
	res.Path = path
	return res, nil
}

// ProcessedPath is what [Tree.ProcessUpdatePath] produces.
type ProcessedPath struct {
	// CommitSecret is the commit_secret for the key schedule.
	CommitSecret []byte
	// Keys is the receiver's private state in the updated tree; the state
	// passed in is left unchanged.
	Keys *TreePrivateKeys
	// Node is the node whose path secret the receiver decrypted (the lowest
	// common ancestor of sender and receiver), and PathSecret that secret.
	Node       NodeIndex
	PathSecret []byte
	// GroupContext is the provisional GroupContext with the new tree hash.
	GroupContext GroupContext
}

// ProcessUpdatePath verifies the UpdatePath of a commit from leaf sender,
// merges it into t and decrypts the receiver's path secret (RFC 9420,
// Sections 7.5 and 12.4.2). t must already reflect the commit's proposals;
// exclude lists the leaves they added. It checks the leaf's source and
// signature, that no key of the path is already in the tree, that the path
// matches the sender's filtered direct path and every node carries one
// ciphertext per member of its copath resolution, the parent hash of the
// new leaf, and that the decrypted secrets yield the advertised public
// keys.
//
// Cost: O(log n) hashes and key derivations, one HPKE decryption and one
// signature verification. On error t may be partly updated: apply commits
// to a [Tree.Clone] and drop it on failure. keys is never modified.
//
// Policy checks of the new leaf that do not depend on the path
// (capabilities, credential) are [Tree.CheckLeafNode]'s, with
// [LeafNodeInCommit], called before this function.
func (t *Tree) ProcessUpdatePath(sender LeafIndex, path *UpdatePath, keys *TreePrivateKeys, ctx GroupContext, exclude []LeafIndex) (*ProcessedPath, error) {
	if path == nil {
		return nil, fmt.Errorf("%w: no update path", ErrBadUpdatePath)
	}
	if keys == nil || keys.leaf == sender {
		return nil, fmt.Errorf("%w: the receiver is the sender", ErrBadUpdatePath)
	}
	if uint32(sender) >= t.nLeaves {
		return nil, treeErr("sender leaf %d not in a tree of %d leaves", sender, t.nLeaves)
	}
	if path.LeafNode.Source == LeafNodeSourceCommit {
		if err := path.LeafNode.Verify(t.cs, ctx.GroupID, sender); err != nil {
			return nil, &TreeError{Node: sender.NodeIndex(), Err: err}
		}
	}
	mp, err := t.mergeUpdatePath(sender, path, ctx, exclude)
	if err != nil {
		return nil, err
	}
	return t.decryptPath(mp, keys)
}

// mergedPath is an UpdatePath verified against and merged into a tree by
// [Tree.mergeUpdatePath]: what a receiver needs to decrypt its secret.
type mergedPath struct {
	sender  LeafIndex
	path    *UpdatePath
	steps   []pathStep
	targets [][]NodeIndex // per step: the copath resolution the secret is encrypted to
	// ctx is the provisional GroupContext with the new tree hash, and
	// ctxBytes its encoding (the HPKE context of the path secrets).
	ctx      GroupContext
	ctxBytes []byte
}

// mergeUpdatePath runs the checks of an UpdatePath that need no private
// key and merges it into t (RFC 9420, Sections 7.5, 7.9.2 and 12.4.2): the
// leaf's source (its signature and the other leaf rules are
// [Tree.CheckLeafNode]'s), one path node per node of the sender's filtered
// direct path, one ciphertext per member of each copath resolution (minus
// the leaves in exclude, which get their secrets in the Welcome), no key
// already in the tree or repeated, and the parent hash the new leaf
// carries. ctx is the provisional GroupContext; its tree hash is replaced
// by the merged tree's. On error t may be partly updated.
func (t *Tree) mergeUpdatePath(sender LeafIndex, path *UpdatePath, ctx GroupContext, exclude []LeafIndex) (*mergedPath, error) {
	if uint32(sender) >= t.nLeaves {
		return nil, treeErr("sender leaf %d not in a tree of %d leaves", sender, t.nLeaves)
	}
	bad := func(format string, args ...any) error {
		return &TreeError{Node: sender.NodeIndex(), Err: fmt.Errorf("%w: "+format, append([]any{ErrBadUpdatePath}, args...)...)}
	}
	if path == nil {
		return nil, fmt.Errorf("%w: no update path", ErrBadUpdatePath)
	}
	leaf := &path.LeafNode
	if leaf.Source != LeafNodeSourceCommit {
		return nil, bad("leaf_node_source %d, want commit", leaf.Source)
	}
	steps, err := t.filteredPath(sender)
	if err != nil {
		return nil, err
	}
	if len(path.Nodes) != len(steps) {
		return nil, bad("%d nodes for a filtered direct path of %d", len(path.Nodes), len(steps))
	}
	if err := t.checkPathKeys(sender, path); err != nil {
		return nil, err
	}
	// The copath resolutions, before the merge (it changes nothing in the
	// copath subtrees).
	sorted := slices.Sorted(slices.Values(exclude))
	mp := &mergedPath{sender: sender, path: path, steps: steps, targets: make([][]NodeIndex, len(steps))}
	for k, s := range steps {
		mp.targets[k] = t.appendResolution(nil, s.copath, sorted)
		if n := len(path.Nodes[k].EncryptedPathSecret); n != len(mp.targets[k]) {
			return nil, bad("%d ciphertexts for a resolution of %d at node %d", n, len(mp.targets[k]), s.node)
		}
	}

	// Merge (Section 7.5): blank the direct path, set the path's keys and
	// parent hashes, check the leaf's parent hash, set the leaf.
	raw, dec, err := prepareLeaf(leaf)
	if err != nil {
		return nil, err
	}
	pubs := make([][]byte, len(steps))
	for i := range steps {
		pubs[i] = path.Nodes[i].EncryptionKey
	}
	t.blankDirectPath(sender)
	if ph := t.setPath(steps, pubs); string(ph) != string(leaf.ParentHash) {
		return nil, &TreeError{Node: sender.NodeIndex(), Err: ErrBadParentHash}
	}
	t.setLeaf(sender, raw, dec)

	mp.ctx = ctx
	if mp.ctx.TreeHash, err = t.TreeHash(); err != nil {
		return nil, err
	}
	if mp.ctxBytes, err = mp.ctx.Marshal(); err != nil {
		return nil, err
	}
	return mp, nil
}

// decryptPath decrypts the receiver's path secret of a merged UpdatePath
// (t is the merged tree) and derives the keys above it (RFC 9420, Section
// 12.4.2): it checks that the secrets yield the path's public keys.
func (t *Tree) decryptPath(mp *mergedPath, keys *TreePrivateKeys) (*ProcessedPath, error) {
	cs := t.cs
	if keys == nil || keys.leaf == mp.sender {
		return nil, fmt.Errorf("%w: the receiver is the sender", ErrBadUpdatePath)
	}
	me := keys.leaf.NodeIndex()
	k := slices.IndexFunc(mp.steps, func(s pathStep) bool { return rtInSubtree(me, s.copath) })
	if k < 0 || uint32(keys.leaf) >= t.nLeaves {
		return nil, fmt.Errorf("%w: receiver leaf %d is not under the sender's path", ErrNoPrivateKey, keys.leaf)
	}
	targets := mp.targets[k]
	cts := mp.path.Nodes[k].EncryptedPathSecret
	j, priv := -1, []byte(nil)
	for i, r := range targets {
		if p, ok := keys.PrivateKey(t, r); ok {
			j, priv = i, p
			break
		}
	}
	if j < 0 {
		return nil, fmt.Errorf("%w: no key for the resolution of node %d", ErrNoPrivateKey, mp.steps[k].copath)
	}
	ps, err := cs.DecryptWithLabel(priv, labelUpdatePathNode, mp.ctxBytes, cts[j].KEMOutput, cts[j].Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: path secret for node %d: %w", ErrDecrypt, mp.steps[k].node, err)
	}
	if len(ps) != cs.Nh() {
		return nil, &TreeError{Node: mp.sender.NodeIndex(), Err: fmt.Errorf("%w: path secret of %d bytes", ErrBadUpdatePath, len(ps))}
	}
	out := &ProcessedPath{GroupContext: mp.ctx, Node: mp.steps[k].node, PathSecret: ps, Keys: keys.Clone()}
	for m := k; m < len(mp.steps); m++ {
		priv, pub, err := nodeKeyPair(cs, ps)
		if err != nil {
			return nil, err
		}
		if string(pub) != string(mp.path.Nodes[m].EncryptionKey) {
			return nil, &TreeError{Node: mp.steps[m].node, Err: fmt.Errorf("%w: path secret does not yield the node's public key", ErrBadUpdatePath)}
		}
		out.Keys.set(mp.steps[m].node, pub, priv)
		if ps, err = cs.DeriveSecret(ps, "path"); err != nil {
			return nil, err
		}
	}
	out.CommitSecret = ps
	out.Keys.Prune(t)
	return out, nil
}

// checkPathKeys checks that no public key of path is already in the tree
// (RFC 9420, Section 12.4.2) or repeated within the path, and that the
// leaf's signature key belongs to no other member (Section 7.3).
func (t *Tree) checkPathKeys(sender LeafIndex, path *UpdatePath) error {
	seen := make(map[string]bool, len(path.Nodes)+1)
	keys := [][]byte{path.LeafNode.EncryptionKey}
	for i := range path.Nodes {
		keys = append(keys, path.Nodes[i].EncryptionKey)
	}
	for _, key := range keys {
		if seen[string(key)] {
			return &TreeError{Node: sender.NodeIndex(), Err: fmt.Errorf("%w: key repeated within the update path", ErrDuplicateKey)}
		}
		seen[string(key)] = true
		if x, ok := t.EncryptionKeyHolder(key, ^NodeIndex(0)); ok {
			return &TreeError{Node: x, Err: fmt.Errorf("%w: update path key already in the tree", ErrDuplicateKey)}
		}
	}
	if l, ok := t.SignatureKeyHolder(path.LeafNode.SignatureKey, sender); ok {
		return &TreeError{Node: l.NodeIndex(), Err: fmt.Errorf("%w: signature key of the update path leaf", ErrDuplicateKey)}
	}
	return nil
}
