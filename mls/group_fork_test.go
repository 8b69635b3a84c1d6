package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// retainedSecrets returns every secret byte slice a retained epoch holds:
// the sender data secret and membership key of its protector and every
// node secret, ratchet secret and skipped key of its secret tree.
func retainedSecrets(r *retainedEpoch) [][]byte {
	p := r.prot
	out := [][]byte{p.senderDataSecret, p.membershipKey}
	for _, s := range p.tree.nodes {
		out = append(out, s)
	}
	for _, lr := range p.tree.leaves {
		for _, hr := range []*hashRatchet{&lr.handshake, &lr.application} {
			out = append(out, hr.secret)
			for _, kn := range hr.skipped {
				out = append(out, kn.key, kn.nonce)
			}
		}
	}
	return out
}

// wantZeroed fails unless every slice holds only zero bytes.
func wantZeroed(t *testing.T, what string, secrets [][]byte) {
	t.Helper()
	nonEmpty := 0
	for i, s := range secrets {
		if len(s) > 0 {
			nonEmpty++
		}
		if !bytes.Equal(s, make([]byte, len(s))) {
			t.Fatalf("%s: secret %d not erased: %x", what, i, s)
		}
	}
	if nonEmpty < 3 {
		t.Fatalf("%s: only %d secrets captured; the check would be vacuous", what, nonEmpty)
	}
}

// TestRetainedEpochDeadline checks the forward-secrecy deadline of a
// superseded epoch: before it, a late application message of that epoch
// decrypts; once a message is processed with a time past it, the epoch's
// secrets are zeroed and dropped and its messages fail with ErrWrongEpoch,
// without any explicit call to Expire.
func TestRetainedEpochDeadline(t *testing.T) {
	tr := newTrio(t, GroupConfig{RetainFor: time.Minute})
	late := make([]*MLSMessage, 3)
	for i := range late {
		m, err := tr.bob.Send(tr.rand, nil, fmt.Appendf(nil, "late %d", i))
		if err != nil {
			t.Fatal(err)
		}
		late[i] = m
	}
	pc, err := tr.carol.Commit(tr.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.alice.ProcessMessage(roundTrip(t, pc.Message), &ProcessOptions{EpochID: []byte("c2"), Now: tr.now}); err != nil {
		t.Fatal(err)
	}
	r := tr.alice.retained[len(tr.alice.retained)-1]
	if string(r.id) != "c1" || !r.deadline.Equal(tr.now.Add(time.Minute)) {
		t.Fatalf("retained %q until %v", r.id, r.deadline)
	}
	// Before the deadline (and out of order): the epoch still decrypts.
	out, err := tr.alice.ProcessMessage(roundTrip(t, late[1]), &ProcessOptions{Now: tr.now.Add(59 * time.Second)})
	if err != nil || string(out.ApplicationData) != "late 1" || out.Epoch != 1 {
		t.Fatalf("late message before the deadline: %+v, %v", out, err)
	}
	secrets := retainedSecrets(r)
	// After it: erased, and the message fails with a typed error.
	_, err = tr.alice.ProcessMessage(roundTrip(t, late[0]), &ProcessOptions{Now: tr.now.Add(61 * time.Second)})
	if !errors.Is(err, ErrWrongEpoch) || RejectReason(err) != ReasonWrongEpoch {
		t.Fatalf("message of an expired epoch: err = %v, want ErrWrongEpoch", err)
	}
	wantZeroed(t, "expired epoch", secrets)
	if r.prot != nil || r.tree != nil {
		t.Fatal("expired epoch still references its protector or tree")
	}
	for _, id := range tr.alice.RetainedEpochs() {
		if string(id) == "c1" {
			t.Fatal("expired epoch still listed")
		}
	}
	// The current epoch is unaffected.
	if err := tr.carol.MergeCommit(pc, []byte("c2"), tr.now); err != nil {
		t.Fatal(err)
	}
	m, err := tr.carol.Send(tr.rand, nil, []byte("current"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := tr.alice.ProcessMessage(roundTrip(t, m), &ProcessOptions{Now: tr.now.Add(time.Hour)}); err != nil || string(out.ApplicationData) != "current" {
		t.Fatalf("current epoch after expiry: %v", err)
	}
}

// TestRetainedEpochsBounded checks that at most GroupConfig.RetainedEpochs
// past epochs are kept, that the oldest is erased (zeroed) when a new one
// is retained, and that a retained branch epoch (RetainEpoch) obeys the
// same bound.
func TestRetainedEpochsBounded(t *testing.T) {
	const keep = 2
	tr := newTrio(t, GroupConfig{RetainFor: time.Hour, RetainedEpochs: keep})
	var all []*retainedEpoch
	var secrets [][][]byte
	track := func() {
		for _, r := range tr.alice.retained {
			known := false
			for _, a := range all {
				known = known || a == r
			}
			if !known {
				all = append(all, r)
				secrets = append(secrets, retainedSecrets(r))
			}
		}
	}
	track()
	for i := range 4 {
		id := fmt.Appendf(nil, "e%d", i+2)
		pc, err := tr.bob.Commit(tr.rand, &CommitOptions{ForcePath: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.bob.MergeCommit(pc, id, tr.now); err != nil {
			t.Fatal(err)
		}
		for _, g := range []*Group{tr.alice, tr.carol} {
			if _, err := g.ProcessMessage(roundTrip(t, pc.Message), &ProcessOptions{EpochID: id, Now: tr.now}); err != nil {
				t.Fatal(err)
			}
		}
		track()
		if n := len(tr.alice.RetainedEpochs()); n > keep {
			t.Fatalf("after commit %d: %d epochs retained, bound %d", i, n, keep)
		}
	}
	if got := tr.alice.RetainedEpochs(); len(got) != keep || string(got[0]) != "e3" || string(got[1]) != "e4" {
		t.Fatalf("retained %q, want the two newest past epochs e3, e4", got)
	}
	for i, r := range all[:len(all)-keep] {
		wantZeroed(t, fmt.Sprintf("evicted epoch %q", r.id), secrets[i])
	}
	// A branch epoch retained on top evicts the oldest as well.
	branch, err := tr.carol.Snapshot().Restore()
	if err != nil {
		t.Fatal(err)
	}
	oldest := all[len(all)-keep]
	oldestSecrets := secrets[len(all)-keep]
	if err := tr.alice.RetainEpoch(branch, tr.now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := tr.alice.RetainedEpochs(); len(got) != keep || string(got[0]) != "e4" || string(got[1]) != "e5" {
		t.Fatalf("after RetainEpoch: retained %q", got)
	}
	wantZeroed(t, fmt.Sprintf("evicted epoch %q", oldest.id), oldestSecrets)
	// The retained branch copy is independent of carol's live state.
	if tr.alice.retained[1].prot == tr.carol.prot || bytes.Equal(tr.alice.retained[1].id, nil) {
		t.Fatal("branch epoch shares state with its source")
	}
}

// TestForgedEncryptedCommitKeepsKey checks PrivateMessage unprotection
// (RFC 9420, Section 6.3) at the group level with encrypted handshake messages: carol, who can derive
// every key of the epoch's secret tree, encrypts a commit claiming to be
// alice's under alice's next handshake key. Bob rejects it with
// ErrBadSignature, his state and his copy of alice's handshake ratchet are
// unchanged, and alice's genuine commit of that generation still applies.
func TestForgedEncryptedCommitKeepsKey(t *testing.T) {
	tr := newTrio(t, GroupConfig{EncryptHandshake: true})
	forger := tr.carol.deepCopy() // carol's secret tree, not advanced by the forgery
	content := FramedContent{GroupID: forger.ctx.GroupID, Epoch: forger.ctx.Epoch, Sender: MemberSender(tr.alice.me),
		AuthenticatedData: []byte{}, ContentType: ContentTypeCommit, Commit: &Commit{}}
	ac, err := SignFramedContent(forger.cs, WireFormatPrivateMessage, &content, forger.ctxBytes, tr.carolSign)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = make([]byte, forger.cs.Nh())
	pm, err := forger.prot.ProtectPrivate(tr.rand, ac)
	if err != nil {
		t.Fatal(err)
	}
	forged := roundTrip(t, &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm})

	ratchet := func() string {
		// Deriving a leaf's ratchets on first use is lossless, so derive
		// them first and compare the ratchet itself.
		lr, err := tr.bob.prot.tree.leaf(tr.alice.me)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d/%x/%d", lr.handshake.head, lr.handshake.secret, len(lr.handshake.skipped))
	}
	before, beforeRatchet := fingerprint(t, tr.bob), ratchet()
	for range 2 { // twice: a rejection does not turn into a replay
		_, err = tr.bob.ProcessMessage(roundTrip(t, forged), nil)
		if !errors.Is(err, ErrBadSignature) || RejectReason(err) != ReasonBadSignature {
			t.Fatalf("forged commit: err = %v, want ErrBadSignature", err)
		}
		if fingerprint(t, tr.bob) != before || ratchet() != beforeRatchet {
			t.Fatal("forged commit changed bob's state")
		}
	}
	genuine, err := tr.alice.Commit(tr.rand, &CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	if genuine.Message.WireFormat != WireFormatPrivateMessage {
		t.Fatal("commit not encrypted")
	}
	for _, g := range []*Group{tr.bob, tr.carol, tr.alice} {
		if _, err := g.ProcessMessage(roundTrip(t, genuine.Message), nil); err != nil {
			t.Fatalf("genuine commit after the forgery: %v", err)
		}
	}
	if !bytes.Equal(tr.bob.EpochAuthenticator(), tr.alice.EpochAuthenticator()) ||
		!bytes.Equal(tr.carol.EpochAuthenticator(), tr.alice.EpochAuthenticator()) || tr.bob.Epoch() != 2 {
		t.Fatal("members disagree after the genuine commit")
	}
}
