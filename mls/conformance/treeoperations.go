package conformance

import (
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindTreeOperations, runTreeOperations) }

type treeOperationsCase struct {
	CipherSuite    uint16   `json:"cipher_suite"`
	TreeBefore     hexBytes `json:"tree_before"`
	Proposal       hexBytes `json:"proposal"`
	ProposalSender uint32   `json:"proposal_sender"`
	TreeHashBefore hexBytes `json:"tree_hash_before"`
	TreeAfter      hexBytes `json:"tree_after"`
	TreeHashAfter  hexBytes `json:"tree_hash_after"`
}

func runTreeOperations(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *treeOperationsCase) uint16 { return c.CipherSuite }, anyIndex(checkTreeOperation))
}

// checkTreeOperation applies the proposal to tree_before as RFC 9420,
// Section 12.1 describes and compares the result with tree_after. The
// vector has no group ID, so the proposal's leaf is applied unvalidated.
func checkTreeOperation(cs mls.CipherSuite, c *treeOperationsCase) error {
	tree, err := mls.DecodeTree(cs, c.TreeBefore)
	if err != nil {
		return fmt.Errorf("decode tree_before: %w", err)
	}
	th, err := tree.TreeHash()
	if err != nil {
		return err
	}
	if string(th) != string(c.TreeHashBefore) {
		return fmt.Errorf("tree hash before = %x, want %x", th, []byte(c.TreeHashBefore))
	}
	p, err := mls.UnmarshalProposal(c.Proposal)
	if err != nil {
		return fmt.Errorf("decode proposal: %w", err)
	}
	switch p := p.(type) {
	case *mls.AddProposal:
		_, err = tree.AddLeaf(&p.KeyPackage.LeafNode)
	case *mls.UpdateProposal:
		err = tree.UpdateLeaf(mls.LeafIndex(c.ProposalSender), &p.LeafNode)
	case *mls.RemoveProposal:
		err = tree.RemoveLeaf(p.Removed)
	default:
		return fmt.Errorf("unexpected proposal type %d", p.ProposalType())
	}
	if err != nil {
		return fmt.Errorf("apply proposal: %w", err)
	}
	got, err := tree.Encode()
	if err != nil {
		return err
	}
	if string(got) != string(c.TreeAfter) {
		return fmt.Errorf("tree after = %x\nwant %x", got, []byte(c.TreeAfter))
	}
	if th, err = tree.TreeHash(); err != nil {
		return err
	}
	if string(th) != string(c.TreeHashAfter) {
		return fmt.Errorf("tree hash after = %x, want %x", th, []byte(c.TreeHashAfter))
	}
	// The decoded tree_after must hash the same as the tree we evolved.
	fresh, err := mls.DecodeTree(cs, c.TreeAfter)
	if err != nil {
		return fmt.Errorf("decode tree_after: %w", err)
	}
	if fh, _ := fresh.TreeHash(); string(fh) != string(c.TreeHashAfter) {
		return fmt.Errorf("tree hash of decoded tree_after = %x, want %x", fh, []byte(c.TreeHashAfter))
	}
	return nil
}
