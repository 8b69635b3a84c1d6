//go:build findings

package room

import (
	"crypto/rand"
	"runtime"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// The attack pass's open findings (docs/security.md, "The room engine:
// open findings"): each test fails while the behaviour it shows is there.
// Run them with go test -tags findings ./room/; once a fix lands, its test
// moves to attack_test.go.

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
