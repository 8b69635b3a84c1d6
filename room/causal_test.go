package room

import (
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Rule R (causal.go): what an event names must be among its DAG parents,
// so that every server reaches the same verdict whatever the order in
// which concurrent events arrive. Each case builds an event whose parents
// leave the named commit or proposal out (a hostile server's choice) and
// steps it into two servers in both orders: both refuse it with
// ReasonNotParent. The honest event, with the reference among its parents,
// is accepted by both; the DAG makes every server store the reference
// first.

// withoutRefs re-signs ev with the create event as its only parent.
func (k *kit) withoutRefs(ev *dag.Event, domain string) *dag.Event {
	return k.signRaw(domain, k.room, ev.Kind, []dag.EventID{k.create.ID()}, ev.Content)
}

func TestRuleRParentCommit(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	a, b := c.peers[0], c.peers[1]
	e2, pc := k.commitEvent(commitSpec{by: "alice", parent: e1.ID()})
	k.merge("alice", e2, pc)
	if err := k.process("bob", e2); err != nil {
		t.Fatal(err)
	}
	honest, _ := k.commitEvent(commitSpec{by: "bob", parent: e2.ID()})
	hostile := k.withoutRefs(honest, "b.test")

	// a has the parent commit before the hostile commit, b after it.
	c.stepOne(a, e2)
	ra := verdict(a, hostile)
	rb := verdict(b, hostile)
	c.stepOne(b, e2)
	for name, r := range map[string]*RejectError{"a (parent first)": ra, "b (commit first)": rb} {
		if r == nil || r.Reason != ReasonNotParent {
			t.Errorf("%s: verdict %v, want %s", name, r, ReasonNotParent)
		}
	}
	for _, p := range c.peers {
		if r := verdict(p, honest); r != nil {
			t.Errorf("%s refused the honest commit naming its parent among its DAG parents: %v", p.dom, r)
		}
	}
}

func TestRuleRMessageAndProposalEpoch(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	a, b := c.peers[0], c.peers[1]
	upd, err := k.users["bob"].g.ProposeUpdate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]*dag.Event{
		"message":  k.message("bob", "b.test", e1.ID()),
		"proposal": k.proposalEvent("bob", "b.test", e1.ID(), upd),
	}
	for name, honest := range cases {
		hostile := k.withoutRefs(honest, "b.test")
		if got := hostile.Prev; len(got) != 1 {
			t.Fatalf("%s: hostile event has parents %v", name, got)
		}
		for _, p := range []*peer{a, b} {
			if r := verdict(p, hostile); r == nil || r.Reason != ReasonNotParent {
				t.Errorf("%s at %s: verdict %v, want %s", name, p.dom, r, ReasonNotParent)
			}
			if r := verdict(p, honest); r != nil {
				t.Errorf("%s at %s: honest event refused: %v", name, p.dom, r)
			}
		}
	}
}

func TestRuleRProposalByReference(t *testing.T) {
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
	honest, _ := k.commitEvent(commitSpec{by: "bob", parent: e1.ID()}) // includes alice's Update by reference
	if !hasParent(honest, k.create.ID(), prop.ID()) {
		t.Fatal("the kit did not name the referenced proposal among the commit's parents")
	}
	// The hostile server names the parent commit but not the proposal.
	hostile := k.signRaw("b.test", k.room, dag.KindCommit, []dag.EventID{e1.ID()}, honest.Content)

	c.stepOne(a, prop)
	ra := verdict(a, hostile)
	rb := verdict(b, hostile)
	c.stepOne(b, prop)
	if ra == nil || ra.Reason != ReasonNotParent {
		t.Errorf("a (proposal first): verdict %v, want %s", ra, ReasonNotParent)
	}
	if rb == nil {
		t.Errorf("b (commit first) accepted a commit whose referenced proposal it had not seen")
	}
	for _, p := range c.peers {
		if r := verdict(p, honest); r != nil {
			t.Errorf("%s refused the honest commit: %v", p.dom, r)
		}
	}

	// Refs tells a host what to name: the parent commit and the proposal.
	refs, err := a.e.Refs(dag.KindCommit, honest.Content)
	if err != nil {
		t.Fatal(err)
	}
	want := map[dag.EventID]bool{e1.ID(): true, prop.ID(): true}
	if len(refs) != 2 || !want[refs[0]] || !want[refs[1]] {
		t.Errorf("Refs = %v, want the parent commit %v and the proposal %v", refs, e1.ID(), prop.ID())
	}
}

// TestRefsBounds: Refs names nothing for the create event's epoch, and
// refuses content that does not decode.
func TestRefsBounds(t *testing.T) {
	k := newKit(t)
	m := &roomevent.Message{Sender: roomevent.Sender{User: k.users["alice"].user, Client: k.users["alice"].device}, Epoch: k.create.ID(), Message: []byte{1}}
	content, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if refs, err := k.e.Refs(dag.KindMessage, content); err != nil || len(refs) != 0 {
		t.Errorf("Refs of a message of the create epoch = %v, %v; want none", refs, err)
	}
	var re *RejectError
	if _, err := k.e.Refs(dag.KindCommit, []byte{0xff}); !errors.As(err, &re) || re.Reason != ReasonMalformedContent {
		t.Errorf("Refs of junk = %v, want %s", err, ReasonMalformedContent)
	}
}

// TestKeyPackageLifetimeAtEventTime: servers judge an added KeyPackage's
// lifetime at the commit event's timestamp, as members do, not by a
// clock: a commit adding one that expired before the event is refused
// (it would wedge the group: members refuse it), whatever the engine's
// time; one valid at the event's time is accepted although the engine's
// clock is at 1970.
func TestKeyPackageLifetimeAtEventTime(t *testing.T) {
	k := newKit(t)
	e1 := k.addBob()
	carol := k.users["carol"]
	expired, err := mls.NewKeyPackage(rand.Reader, suite, carol.sig, mls.NewBasicCredential([]byte(carol.device)),
		&mls.KeyPackageOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := k.commitEvent(commitSpec{by: "alice", parent: e1, props: []mls.Proposal{&mls.AddProposal{KeyPackage: *expired.KeyPackage}},
		changes: k.invite(e1, carol.user)})
	r := k.step(ev)
	if r == nil {
		t.Fatal("a commit adding a KeyPackage expired at the event's time was accepted")
	}
	if r.Err.Reason != Reason(mls.ObserverInvalidProposal.String()) {
		t.Errorf("reason %s, want %s", r.Err.Reason, mls.ObserverInvalidProposal)
	}
	// Bob's client judges the same commit at the same time and refuses it too.
	msg, err := mls.UnmarshalMLSMessage(mustCommitMLS(t, ev))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.users["bob"].g.ProcessMessage(msg, &mls.ProcessOptions{Now: time.UnixMilli(ev.Timestamp)}); err == nil {
		t.Error("bob's group accepts the commit the servers refused")
	}

	fresh := k.keyPackage("carol")
	ev2, _ := k.commitEvent(commitSpec{by: "alice", parent: e1, props: []mls.Proposal{&mls.AddProposal{KeyPackage: *fresh.KeyPackage}},
		changes: k.invite(e1, carol.user)})
	if k.e.Now().Year() != 1970 {
		t.Fatalf("the kit's engine clock is %v", k.e.Now())
	}
	if r := k.step(ev2); r != nil {
		t.Errorf("a commit adding a KeyPackage valid at the event's time was refused: %v", r.Err)
	}
}

func mustCommitMLS(t *testing.T, ev *dag.Event) []byte {
	t.Helper()
	c, err := roomevent.DecodeCommit(ev.Content)
	if err != nil {
		t.Fatal(err)
	}
	return c.Commit
}

// TestServersOnlyByCommit: a standalone state event may not change the
// servers (servers-by-commit), so ServersAt of an epoch never changes;
// other state events still apply.
func TestServersOnlyByCommit(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	before, ok := c.peers[0].e.ServersAt(e1.ID())
	if !ok || len(before) != 2 {
		t.Fatalf("ServersAt(first commit) = %v, %v", before, ok)
	}
	_, cid, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	add := k.stateEvent("alice", &roomstate.ServersUpdate{Added: []roomstate.Server{{ID: roomstate.ServerID(cid), Domain: "c.test"}}})
	for _, p := range c.peers {
		if r := verdict(p, add); r == nil || r.Reason != ReasonServersByCommit {
			t.Errorf("%s: verdict on a state event adding a server: %v, want %s", p.dom, r, ReasonServersByCommit)
		}
		if after, _ := p.e.ServersAt(e1.ID()); !slices.Equal(after, before) {
			t.Errorf("%s: ServersAt changed from %v to %v", p.dom, before, after)
		}
		if r := verdict(p, k.stateEvent("alice", k.topic("still fine"))); r != nil {
			t.Errorf("%s: a topic state event was refused: %v", p.dom, r)
		}
	}
	if _, ok := c.peers[0].e.ServersAt(add.ID()); ok {
		t.Error("ServersAt answered for an ID that is no epoch")
	}
}

// TestNamed: the commit an event builds on, by kind.
func TestNamed(t *testing.T) {
	k := newKit(t)
	e1 := k.addBob()
	msg := k.message("alice", "a.test", e1)
	commit, _ := k.commitEvent(commitSpec{by: "alice", parent: e1})
	vote := k.sign("a.test", k.room, dag.KindAck, []dag.EventID{k.create.ID()}, []byte{1})
	for _, tc := range []struct {
		ev   *dag.Event
		want dag.EventID
		ok   bool
	}{{msg, e1, true}, {commit, e1, true}, {vote, dag.EventID{}, false}, {k.signRaw("a.test", k.room, dag.KindMessage, []dag.EventID{k.create.ID()}, []byte{0xff}), dag.EventID{}, false}} {
		if got, ok := Named(tc.ev); got != tc.want || ok != tc.ok {
			t.Errorf("Named(%v) = %v, %v; want %v, %v", tc.ev.Kind, got, ok, tc.want, tc.ok)
		}
	}
}
