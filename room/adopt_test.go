package room

import (
	"errors"
	"slices"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// State events take effect when a commit adopts them (docs/decisions.md,
// "State events take effect when a commit adopts them"). The attack pass
// found that a state event applied to the canonical state in each server's
// arrival order, and a commit was judged against the state of its parent's
// epoch on that server, so two concurrent events got different verdicts:
// alice's state event removing bob, and bob's commit. Server a (state
// event first) refused the commit, b accepted it.

// removeBob is alice's state event unlisting bob.
func removeBob(k *kit) *dag.Event {
	return k.stateEvent("alice", &roomstate.ParticipantUpdate{Removed: []roomstate.URI{roomstate.URI(k.users["bob"].user)}})
}

// leafOf returns the leaf of user name's device in by's group.
func leafOf(t *testing.T, k *kit, by, name string) mls.LeafIndex {
	t.Helper()
	g := k.users[by].g
	for _, l := range g.Members() {
		if ln, ok := g.Tree().Leaf(l); ok && string(ln.Credential.Identity) == k.users[name].device {
			return l
		}
	}
	t.Fatalf("%s is not in %s's group", name, by)
	return 0
}

// TestStateEventRaceSameVerdict: bob's commit, concurrent with alice's
// state event removing him, gets the same verdict whichever arrives first,
// and the state event alone changes no state.
func TestStateEventRaceSameVerdict(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	a, b := c.peers[0], c.peers[1]
	remove := removeBob(k)
	commit, _ := k.commitEvent(commitSpec{by: "bob", parent: e1.ID()})
	c.stepOne(a, remove)
	ra := verdict(a, commit)
	rb := verdict(b, commit)
	c.stepOne(b, remove)
	if ra != nil || rb != nil {
		t.Fatalf("bob's commit: a says %v, b says %v; want both to accept it", ra, rb)
	}
	for _, p := range c.peers {
		if r := p.rejected[remove.ID()]; r != nil {
			t.Fatalf("%s refused the state event: %v", p.dom, r)
		}
		st, err := p.e.StateAt(commit.ID())
		if err != nil {
			t.Fatal(err)
		}
		if st.RoleOf(roomstate.URI(k.users["bob"].user)) == roomstate.RoleNone {
			t.Fatalf("%s: bob is unlisted in his commit's epoch, though no commit adopted the removal", p.dom)
		}
	}
}

// TestCommitAdoptsStateEvent: alice's commit naming her removal of bob
// among its DAG parents adopts it, and every server judges it the same,
// whatever arrived in between; the removal is in the state of the commit's
// epoch only, and a commit on top of it adopts it no more.
func TestCommitAdoptsStateEvent(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	a, b := c.peers[0], c.peers[1]
	remove := removeBob(k)
	bobs, _ := k.commitEvent(commitSpec{by: "bob", parent: e1.ID()})
	c.stepOne(a, remove)
	c.stepOne(a, bobs)
	c.stepOne(b, bobs)
	c.stepOne(b, remove)
	refs, err := a.e.Refs(dag.KindCommit, mustCommitContent(t, k, e1.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(refs, remove.ID()) {
		t.Fatalf("Refs of a commit on e1 = %v, want the pending removal %v among them", refs, remove.ID())
	}
	adopt, pc := k.commitEvent(commitSpec{by: "alice", parent: e1.ID(), adopt: []dag.EventID{remove.ID()},
		props: []mls.Proposal{&mls.RemoveProposal{Removed: leafOf(t, k, "alice", "bob")}}})
	ra, rb := verdict(a, adopt), verdict(b, adopt)
	if ra != nil || rb != nil {
		t.Fatalf("the commit adopting the removal: a says %v, b says %v; want both to accept it", ra, rb)
	}
	bob := roomstate.URI(k.users["bob"].user)
	for _, p := range c.peers {
		if st, _ := p.e.StateAt(adopt.ID()); st.RoleOf(bob) != roomstate.RoleNone {
			t.Fatalf("%s: bob is listed after the commit that adopts his removal", p.dom)
		}
		if st, _ := p.e.StateAt(bobs.ID()); st.RoleOf(bob) == roomstate.RoleNone {
			t.Fatalf("%s: the removal shows on bob's branch, where no commit adopted it", p.dom)
		}
	}
	k.merge("alice", adopt, pc)
	refs, err = a.e.Refs(dag.KindCommit, mustCommitContent(t, k, adopt.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(refs, remove.ID()) {
		t.Fatalf("Refs of a commit on the adopting commit = %v still names the adopted removal", refs)
	}
	// Naming it again among the parents adopts nothing: the removal does not
	// apply twice, so a second adoption would fail the commit.
	again, _ := k.commitEvent(commitSpec{by: "alice", parent: adopt.ID(), adopt: []dag.EventID{remove.ID()}})
	for _, p := range c.peers {
		if r := verdict(p, again); r != nil {
			t.Fatalf("%s: a commit naming an already adopted state event: %v", p.dom, r)
		}
	}
	// Restore rebuilds the same states.
	r := c.restored(a)
	for _, ep := range []dag.EventID{e1.ID(), bobs.ID(), adopt.ID(), again.ID()} {
		x, _ := a.e.StateAt(ep)
		y, err := r.e.StateAt(ep)
		if err != nil || stateBytes(t, x) != stateBytes(t, y) {
			t.Fatalf("restored state of %v differs (%v)", ep, err)
		}
	}
}

// TestCommitAdoptingBadStateEventRejected: a state event that does not
// apply (bob, a member, makes carol an admin) is accepted as an event, but
// a commit adopting it is refused by every server (adopted-state), and the
// host leaves it out of a commit's parents (Refs, Parents).
func TestCommitAdoptingBadStateEventRejected(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	bad := k.stateEvent("bob", &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: roomstate.URI(k.users["carol"].user), Role: roomstate.RoleAdmin}}})
	c.deliver(bad)
	for _, p := range c.peers {
		if r := p.rejected[bad.ID()]; r != nil {
			t.Fatalf("%s refused the state event on arrival: %v", p.dom, r)
		}
	}
	if err := c.peers[1].e.CheckLocal(bad); !errors.Is(err, ErrRejected) || reasonOf(err) != ReasonRoomState {
		t.Fatalf("CheckLocal of a state event that cannot be adopted: %v, want %s", err, ReasonRoomState)
	}
	commit, _ := k.commitEvent(commitSpec{by: "alice", parent: e1.ID(), adopt: []dag.EventID{bad.ID()}})
	for _, p := range c.peers {
		r := verdict(p, commit)
		if r == nil || r.Reason != ReasonAdoptedState {
			t.Fatalf("%s: the commit adopting a state event that does not apply: %v, want %s", p.dom, r, ReasonAdoptedState)
		}
	}
	content := mustCommitContent(t, k, e1.ID())
	a := c.peers[0].e
	refs, err := a.Refs(dag.KindCommit, content)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(refs, bad.ID()) {
		t.Fatalf("Refs = %v names the state event that does not apply", refs)
	}
	if got := a.Parents(dag.KindCommit, content, []dag.EventID{e1.ID(), bad.ID()}); slices.Contains(got, bad.ID()) {
		t.Fatalf("Parents = %v keeps the state event that does not apply", got)
	}
}

// mustCommitContent is the content of a commit on parent, for Refs.
func mustCommitContent(t *testing.T, k *kit, parent dag.EventID) []byte {
	t.Helper()
	ev, _ := k.commitEvent(commitSpec{by: "alice", parent: parent})
	return ev.Content
}

func reasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}
