//go:build findings

package room

import (
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// The attack pass's open findings (docs/security.md, "The room engine:
// open findings"): each test fails while the behaviour it shows is there.
// Run them with go test -tags findings ./room/; once a fix lands, its test
// moves to attack_test.go.

// TestAttackExpiredKeyPackageWedge: servers verify commits without a
// clock (added KeyPackages' lifetimes unchecked), clients with theirs
// (node/client processes commits with ProcessOptions.Now = its local
// time). So a member device that adds a KeyPackage whose lifetime ended
// (its own making: any device can sign one for a credential of its
// domain) gets a commit accepted and ordered that no honest member can
// apply: the group is wedged for everyone. Fix (outside room/): judge
// lifetimes at one time every server and member agrees on, the commit
// event's timestamp: clients pass it as ProcessOptions.Now, and
// observeCommit passes time.UnixMilli(ev.Timestamp) to ProcessCommit (the
// kit then needs real timestamps).
func TestAttackExpiredKeyPackageWedge(t *testing.T) {
	k := newKit(t)
	e1 := k.addBob()
	carol := k.users["carol"]
	kb, err := mls.NewKeyPackage(rand.Reader, suite, carol.sig, mls.NewBasicCredential([]byte(carol.device)),
		&mls.KeyPackageOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := k.commitEvent(commitSpec{by: "alice", parent: e1, props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}},
		changes: k.invite(e1, carol.user)})
	if r := k.step(ev); r != nil {
		t.Fatalf("rejected: %v", r.Err)
	}
	if err := k.process("bob", ev); err != nil {
		t.Fatalf("finding: the servers accept a commit adding an expired KeyPackage, which bob's client refuses: %v", err)
	}
}

// TestAttackStateEventRaceForksCommitVerdict: a state event applies to
// the canonical state in each server's arrival order, and a commit is
// judged against the state of its parent's epoch on that server, so two
// concurrent events (neither in the other's DAG past: both orders are
// causal) get different verdicts: alice's state event removing bob from
// the participant list, and bob's commit. Server a (state event first)
// refuses the commit, b accepts it; if the other servers certify it, a
// cannot follow the room any more. A hostile server only has to withhold
// one of the two from some servers for a while. Fix (outside room/, an
// event format change): judge an event against the state events in its
// own causal past, e.g. a commit names the last state event it builds on
// (or state events take effect only when a commit includes them, like
// proposals by reference), so the verdict no longer depends on arrival
// order.
func TestAttackStateEventRaceForksCommitVerdict(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	a, b := c.peers[0], c.peers[1]
	remove := k.stateEvent("alice", &roomstate.ParticipantUpdate{Removed: []roomstate.URI{roomstate.URI(k.users["bob"].user)}})
	commit, _ := k.commitEvent(commitSpec{by: "bob", parent: e1.ID()})
	c.stepOne(a, remove)
	ra := verdict(a, commit)
	rb := verdict(b, commit)
	c.stepOne(b, remove)
	if (ra == nil) != (rb == nil) {
		t.Fatalf("finding: the same commit is refused by a (%v) and accepted by b (%v), by arrival order alone", ra, rb)
	}
}

// TestAttackProposalByReferenceOrder: a commit that includes a proposal
// by reference verifies only where the proposal event arrived first. A
// committer's server chooses the commit event's DAG parents, so it can
// leave the proposal out of the commit's past: both arrival orders are
// then causal, and servers that got the commit first refuse it while the
// others accept it (and may certify it). Fix (outside room/): the node
// admits a commit only once the proposal events it references are stored
// before it (or requires them in the commit event's causal past, which
// the DAG store can check); the engine alone cannot tell.
func TestAttackProposalByReferenceOrder(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	a, b := c.peers[0], c.peers[1]
	upd, err := k.users["alice"].g.ProposeUpdate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	prop := k.proposalEvent("alice", "a.test", e1.ID(), upd)
	if _, err := k.users["bob"].g.ProcessMessage(upd, &mls.ProcessOptions{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	commit, _ := k.commitEvent(commitSpec{by: "bob", parent: e1.ID()}) // includes alice's Update by reference
	c.stepOne(a, prop)
	ra := verdict(a, commit)
	rb := verdict(b, commit)
	c.stepOne(b, prop)
	if ra != nil {
		t.Fatalf("a (proposal first) refused the commit: %v", ra)
	}
	if rb != nil {
		t.Fatalf("finding: a accepted the commit, b (commit first) refused it: %v", rb)
	}
}

// TestAttackManyProposalsPerEpoch: every accepted proposal event returns a
// new public group state holding all of the epoch's proposals so far
// (mls.PublicGroup.ProcessProposal clones the epoch's proposal list and
// scans it for a duplicate), so n proposals in one epoch cost O(n^2)
// bytes copied; a member device can send them at will (each Update with a
// fresh key is valid, and room policy allows them). A cap in the engine
// would make verdicts depend on arrival order (which proposals got in), so
// the fix belongs in mls: share the proposal list between states (it only
// grows within an epoch) and index it by reference.
func TestAttackManyProposalsPerEpoch(t *testing.T) {
	k := newKit(t)
	e1 := k.addBob()
	const n = 3000
	evs := make([]*dag.Event, n)
	for i := range evs {
		upd, err := k.users["bob"].g.ProposeUpdate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = k.proposalEvent("bob", "b.test", e1, upd)
	}
	cost := func(evs []*dag.Event) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, ev := range evs {
			if r := k.step(ev); r != nil {
				t.Fatal(r.Err)
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / uint64(len(evs))
	}
	first := cost(evs[:100])
	cost(evs[100 : n-100])
	last := cost(evs[n-100:])
	t.Logf("bytes allocated per proposal: %d for the first 100, %d after %d", first, last, n-100)
	if last > 4*first {
		t.Fatalf("finding: a proposal costs %d bytes after %d in its epoch, %d at first", last, n-100, first)
	}
}

// TestAttackParentOutsideCausalPast: a commit names its parent epoch in
// its content, and its server chooses its DAG parents: if they leave the
// parent commit out, a server that stores the commit first refuses it for
// good (unknown-epoch) while the others accept it and may certify it; the
// first can then no longer follow the room. Messages and proposals naming
// their epoch are judged the same way. Fix (outside room/): the node
// admits a commit, proposal or message only once the commit its parent or
// epoch names (and the proposals it references) is in its DAG past, or
// holds it until then, so that unknown-epoch cannot depend on arrival
// order.
func TestAttackParentOutsideCausalPast(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	a, b := c.peers[0], c.peers[1]
	e2, pc := k.commitEvent(commitSpec{by: "alice", parent: e1.ID()})
	k.merge("alice", e2, pc)
	if err := k.process("bob", e2); err != nil {
		t.Fatal(err)
	}
	e3, _ := k.commitEvent(commitSpec{by: "bob", parent: e2.ID()}) // its DAG parent is the create event
	c.stepOne(a, e2)
	ra := verdict(a, e3)
	rb := verdict(b, e3)
	c.stepOne(b, e2)
	if ra != nil {
		t.Fatalf("a (parent first) refused the commit: %v", ra)
	}
	if rb != nil {
		t.Fatalf("finding: a accepted e3, b (e3 before its parent) refused it for good: %v", rb)
	}
}
