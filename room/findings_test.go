//go:build findings

package room

import (
	"testing"

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
