package conformance

import (
	"fmt"
	"slices"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindTreeValidation, runTreeValidation) }

type treeValidationCase struct {
	CipherSuite uint16     `json:"cipher_suite"`
	Tree        hexBytes   `json:"tree"`
	GroupID     hexBytes   `json:"group_id"`
	Resolutions [][]uint32 `json:"resolutions"`
	TreeHashes  []hexBytes `json:"tree_hashes"`
}

func runTreeValidation(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *treeValidationCase) uint16 { return c.CipherSuite }, anyIndex(checkTreeValidation))
}

// checkTreeValidation checks the resolution and tree hash of every node and
// that the tree is valid: parent hashes, leaf signatures over group_id, and
// the other checks a joiner runs.
func checkTreeValidation(cs mls.CipherSuite, c *treeValidationCase) error {
	tree, err := mls.DecodeTree(cs, c.Tree)
	if err != nil {
		return fmt.Errorf("decode tree: %w", err)
	}
	width := mls.NodeWidth(tree.LeafCount())
	if len(c.Resolutions) != int(width) || len(c.TreeHashes) != int(width) {
		return fmt.Errorf("vector has %d resolutions and %d tree hashes for %d nodes",
			len(c.Resolutions), len(c.TreeHashes), width)
	}
	for x := range width {
		res, err := tree.Resolution(mls.NodeIndex(x))
		if err != nil {
			return err
		}
		want := make([]mls.NodeIndex, len(c.Resolutions[x]))
		for k, v := range c.Resolutions[x] {
			want[k] = mls.NodeIndex(v)
		}
		if !slices.Equal(res, want) {
			return fmt.Errorf("resolution(%d) = %v, want %v", x, res, want)
		}
		th, err := tree.NodeTreeHash(mls.NodeIndex(x))
		if err != nil {
			return err
		}
		if string(th) != string(c.TreeHashes[x]) {
			return fmt.Errorf("tree hash of node %d = %x, want %x", x, th, []byte(c.TreeHashes[x]))
		}
	}
	if err := tree.VerifyParentHashes(); err != nil {
		return fmt.Errorf("parent hashes: %w", err)
	}
	if err := tree.Validate(&mls.ValidationOptions{GroupID: c.GroupID, TreeHash: c.TreeHashes[len(c.TreeHashes)/2]}); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return nil
}
