package conformance

import (
	"encoding/json"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindTreeMath, runTreeMath) }

type treeMathCase struct {
	NLeaves uint32    `json:"n_leaves"`
	NNodes  uint32    `json:"n_nodes"`
	Root    uint32    `json:"root"`
	Left    []*uint32 `json:"left"`
	Right   []*uint32 `json:"right"`
	Parent  []*uint32 `json:"parent"`
	Sibling []*uint32 `json:"sibling"`
}

func runTreeMath(data []byte, r *Result) error {
	var cases []treeMathCase
	if err := json.Unmarshal(data, &cases); err != nil {
		return err
	}
	for i, c := range cases {
		if err := checkTreeMath(&c); err != nil {
			r.Fail("case %d (n_leaves %d): %v", i, c.NLeaves, err)
			continue
		}
		r.Pass()
	}
	return nil
}

func checkTreeMath(c *treeMathCase) error {
	if w := mls.NodeWidth(c.NLeaves); w != c.NNodes {
		return fmt.Errorf("NodeWidth = %d, want %d", w, c.NNodes)
	}
	root, err := mls.Root(c.NLeaves)
	if err != nil || uint32(root) != c.Root {
		return fmt.Errorf("root = %d, %v; want %d", root, err, c.Root)
	}
	check := func(what string, want []*uint32, f func(x mls.NodeIndex) (mls.NodeIndex, error)) error {
		if len(want) != int(c.NNodes) {
			return fmt.Errorf("%s has %d entries, want %d", what, len(want), c.NNodes)
		}
		for i, w := range want {
			got, err := f(mls.NodeIndex(i))
			switch {
			case w == nil && err == nil:
				return fmt.Errorf("%s(%d) = %d, want undefined", what, i, got)
			case w != nil && err != nil:
				return fmt.Errorf("%s(%d): %v, want %d", what, i, err, *w)
			case w != nil && uint32(got) != *w:
				return fmt.Errorf("%s(%d) = %d, want %d", what, i, got, *w)
			}
		}
		return nil
	}
	n := c.NLeaves
	if err := check("left", c.Left, mls.Left); err != nil {
		return err
	}
	if err := check("right", c.Right, func(x mls.NodeIndex) (mls.NodeIndex, error) { return mls.Right(x, n) }); err != nil {
		return err
	}
	if err := check("parent", c.Parent, func(x mls.NodeIndex) (mls.NodeIndex, error) { return mls.Parent(x, n) }); err != nil {
		return err
	}
	return check("sibling", c.Sibling, func(x mls.NodeIndex) (mls.NodeIndex, error) { return mls.Sibling(x, n) })
}
