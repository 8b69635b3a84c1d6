package conformance

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindTreeKEM, runTreeKEM) }

type treeKEMCase struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	RatchetTree             hexBytes `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          uint32   `json:"index"`
		EncryptionPriv hexBytes `json:"encryption_priv"`
		SignaturePriv  hexBytes `json:"signature_priv"`
		PathSecrets    []struct {
			Node       uint32   `json:"node"`
			PathSecret hexBytes `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        uint32     `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

func runTreeKEM(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *treeKEMCase) uint16 { return c.CipherSuite }, func(i int, cs mls.CipherSuite, c *treeKEMCase) error { return checkTreeKEM(cs, i, c) })
}

// checkTreeKEM follows test-vectors.md: private state consistency, every
// receiver processes every UpdatePath (path secret, commit_secret, tree hash
// after the merge), and a fresh UpdatePath from each private leaf is
// processed by all the others.
func checkTreeKEM(cs mls.CipherSuite, caseIndex int, c *treeKEMCase) error {
	tree, err := mls.DecodeTree(cs, c.RatchetTree)
	if err != nil {
		return fmt.Errorf("decode tree: %w", err)
	}
	ctx := mls.GroupContext{
		Version: mls.ProtocolVersionMLS10, CipherSuite: cs, GroupID: c.GroupID, Epoch: c.Epoch,
		ConfirmedTranscriptHash: c.ConfirmedTranscriptHash, Extensions: mls.Extensions{},
	}
	keys := map[mls.LeafIndex]*mls.TreePrivateKeys{}
	sigs := map[mls.LeafIndex]mls.SignaturePrivateKey{}
	for _, lp := range c.LeavesPrivate {
		leaf := mls.LeafIndex(lp.Index)
		k, err := mls.NewTreePrivateKeys(cs, leaf, lp.EncryptionPriv)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", leaf, err)
		}
		if nodes := k.Nodes(tree); len(nodes) != 1 || nodes[0] != leaf.NodeIndex() {
			return fmt.Errorf("leaf %d: encryption_priv does not match the leaf's key", leaf)
		}
		for _, ps := range lp.PathSecrets {
			if err := k.SetPathSecret(tree, mls.NodeIndex(ps.Node), ps.PathSecret); err != nil {
				return fmt.Errorf("leaf %d: %w", leaf, err)
			}
		}
		keys[leaf] = k
		if sigs[leaf], err = cs.NewSignaturePrivateKey(lp.SignaturePriv); err != nil {
			return fmt.Errorf("leaf %d: %w", leaf, err)
		}
	}
	for u, up := range c.UpdatePaths {
		path, err := mls.UnmarshalUpdatePath(up.UpdatePath)
		if err != nil {
			return fmt.Errorf("update path %d: %w", u, err)
		}
		sender := mls.LeafIndex(up.Sender)
		processed := 0
		for leaf, k := range keys {
			if leaf == sender {
				continue
			}
			tr := tree.Clone()
			got, err := tr.ProcessUpdatePath(sender, path, k, ctx, nil)
			if err != nil {
				return fmt.Errorf("update path %d, receiver %d: %w", u, leaf, err)
			}
			if int(leaf) >= len(up.PathSecrets) || string(got.PathSecret) != string(up.PathSecrets[leaf]) {
				return fmt.Errorf("update path %d, receiver %d: path secret %x", u, leaf, got.PathSecret)
			}
			if string(got.CommitSecret) != string(up.CommitSecret) {
				return fmt.Errorf("update path %d, receiver %d: commit secret %x, want %x", u, leaf, got.CommitSecret, []byte(up.CommitSecret))
			}
			if string(got.GroupContext.TreeHash) != string(up.TreeHashAfter) {
				return fmt.Errorf("update path %d, receiver %d: tree hash after %x, want %x", u, leaf, got.GroupContext.TreeHash, []byte(up.TreeHashAfter))
			}
			if err := tr.VerifyParentHashes(); err != nil {
				return fmt.Errorf("update path %d, receiver %d: after merge: %w", u, leaf, err)
			}
			processed++
		}
		if processed == 0 {
			return fmt.Errorf("update path %d: no receiver", u)
		}
	}
	return checkNewUpdatePaths(cs, caseIndex, tree, ctx, keys, sigs)
}

// checkNewUpdatePaths creates an UpdatePath from the first and the last
// private leaf and has every other private leaf process it.
func checkNewUpdatePaths(cs mls.CipherSuite, caseIndex int, tree *mls.Tree, ctx mls.GroupContext,
	keys map[mls.LeafIndex]*mls.TreePrivateKeys, sigs map[mls.LeafIndex]mls.SignaturePrivateKey) error {
	leaves := slices.Sorted(maps.Keys(keys))
	for _, sender := range []mls.LeafIndex{leaves[0], leaves[len(leaves)-1]} {
		tr := tree.Clone()
		tmpl, ok := tr.Leaf(sender)
		if !ok {
			return fmt.Errorf("new path: leaf %d is blank", sender)
		}
		rand := newDetReader(fmt.Sprintf("treekem %d %d", caseIndex, sender))
		res, err := tr.CreateUpdatePath(sender, &mls.UpdatePathParams{Leaf: *tmpl, SigningKey: sigs[sender], GroupContext: ctx}, rand)
		if err != nil {
			return fmt.Errorf("new path from %d: %w", sender, err)
		}
		if err := tr.VerifyParentHashes(); err != nil {
			return fmt.Errorf("new path from %d: %w", sender, err)
		}
		enc, err := res.Path.Marshal()
		if err != nil {
			return err
		}
		path, err := mls.UnmarshalUpdatePath(enc)
		if err != nil {
			return fmt.Errorf("new path from %d does not decode: %w", sender, err)
		}
		for leaf, k := range keys {
			if leaf == sender {
				continue
			}
			tr2 := tree.Clone()
			got, err := tr2.ProcessUpdatePath(sender, path, k, ctx, nil)
			if err != nil {
				return fmt.Errorf("new path from %d, receiver %d: %w", sender, leaf, err)
			}
			if string(got.CommitSecret) != string(res.CommitSecret) {
				return fmt.Errorf("new path from %d, receiver %d: commit secrets differ", sender, leaf)
			}
			if string(got.GroupContext.TreeHash) != string(res.GroupContext.TreeHash) {
				return fmt.Errorf("new path from %d, receiver %d: tree hashes differ", sender, leaf)
			}
		}
	}
	return nil
}

// detReader is a deterministic byte stream (SHA-256 in counter mode over a
// seed), the random source for UpdatePaths the runner creates.
type detReader struct {
	seed [32]byte
	ctr  uint64
	buf  []byte
}

func newDetReader(seed string) *detReader { return &detReader{seed: sha256.Sum256([]byte(seed))} }

func (d *detReader) Read(p []byte) (int, error) {
	for n := 0; n < len(p); {
		if len(d.buf) == 0 {
			var in [40]byte
			copy(in[:], d.seed[:])
			binary.BigEndian.PutUint64(in[32:], d.ctr)
			d.ctr++
			sum := sha256.Sum256(in[:])
			d.buf = sum[:]
		}
		k := copy(p[n:], d.buf)
		d.buf = d.buf[k:]
		n += k
	}
	return len(p), nil
}
