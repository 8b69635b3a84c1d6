package room

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// TestCommitPolicy holds one row per rule a server applies to a commit
// before it may be sealed or acked: MLS validity as an external observer
// (sender a member of the parent epoch, signature over that epoch's
// GroupContext, valid proposals), the event's sender being the MLS
// sender, and MIMI room policy (who may add, remove or change roles; a
// participant-list change must come with the matching Adds and Removes).
// Each row builds a real MLS commit on a room where alice (admin, a.test)
// added bob (member, b.test) and expects the engine to refuse it with the
// given typed reason.
func TestCommitPolicy(t *testing.T) {
	type row struct {
		name  string
		build func(k *kit, e1 dag.EventID) *dag.Event
		want  Reason
	}
	participant := func(k *kit, at dag.EventID, up *roomstate.ParticipantUpdate) []roomevent.Change {
		return []roomevent.Change{k.change(at, up)}
	}
	rows := []row{
		{"honest: alice adds carol with her device and participant entry", func(k *kit, e1 dag.EventID) *dag.Event {
			kb := k.keyPackage("carol")
			ev, _ := k.commitEvent(commitSpec{by: "alice", parent: e1, props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}},
				changes: participant(k, e1, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://b.test/u/carol", Role: roomstate.RoleMember}}})})
			return ev
		}, ""},
		{"replay: the first commit's MLS bytes again, on the next epoch", func(k *kit, e1 dag.EventID) *dag.Event {
			ev, _ := k.commitEvent(commitSpec{by: "alice", parent: e1, mlsBytes: k.firstMLS})
			return ev
		}, Reason(mls.ObserverReplay.String())},
		{"relabel: alice's commit under bob's name, through bob's server", func(k *kit, e1 dag.EventID) *dag.Event {
			ev, _ := k.commitEvent(commitSpec{by: "alice", claim: "bob", parent: e1})
			return ev
		}, ReasonSenderMismatch},
		{"the event names alice's device but another user", func(k *kit, e1 dag.EventID) *dag.Event {
			ev, _ := k.commitEvent(commitSpec{by: "alice", parent: e1})
			c, _ := roomevent.DecodeCommit(ev.Content)
			c.Sender.User = k.users["dave"].user // same domain, so the origin vouches
			raw, _ := c.Marshal()
			return k.sign("a.test", k.room, dag.KindCommit, []dag.EventID{k.create.ID()}, raw)
		}, ReasonSenderMismatch},
		{"client add without the participant add", func(k *kit, e1 dag.EventID) *dag.Event {
			kb := k.keyPackage("carol")
			ev, _ := k.commitEvent(commitSpec{by: "alice", parent: e1, props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}}})
			return ev
		}, ReasonPolicy},
		{"participant removal that leaves the user's client in the group", func(k *kit, e1 dag.EventID) *dag.Event {
			ev, _ := k.commitEvent(commitSpec{by: "alice", parent: e1,
				changes: participant(k, e1, &roomstate.ParticipantUpdate{Removed: []roomstate.URI{"mimi://b.test/u/bob"}})})
			return ev
		}, ReasonPolicy},
		{"a member adds a device of another user (not its own, no participant add)", func(k *kit, e1 dag.EventID) *dag.Event {
			kb := k.deviceKeyPackage("alice", "mimi://a.test/d/alice/laptop")
			ev, _ := k.commitEvent(commitSpec{by: "bob", parent: e1, props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}}})
			return ev
		}, ReasonPolicy},
		{"a member removes the admin (no canKick)", func(k *kit, e1 dag.EventID) *dag.Event {
			ev, _ := k.commitEvent(commitSpec{by: "bob", parent: e1, props: []mls.Proposal{&mls.RemoveProposal{Removed: 0}},
				changes: participant(k, e1, &roomstate.ParticipantUpdate{Removed: []roomstate.URI{"mimi://a.test/u/alice"}})})
			return ev
		}, ReasonRoomState},
		{"a member changes a role (no canChangeUserRole)", func(k *kit, e1 dag.EventID) *dag.Event {
			ev, _ := k.commitEvent(commitSpec{by: "bob", parent: e1,
				changes: participant(k, e1, &roomstate.ParticipantUpdate{RoleChanges: []roomstate.UserRole{{User: "mimi://b.test/u/bob", Role: roomstate.RoleAdmin}}})})
			return ev
		}, ReasonRoomState},
		{"a non-member's commit (dave's own group with the room's group ID)", func(k *kit, e1 dag.EventID) *dag.Event {
			k.users["dave"].g = k.foreignGroup("dave", 1)
			ev, _ := k.commitEvent(commitSpec{by: "dave", parent: e1})
			return ev
		}, Reason(mls.ObserverBadSignature.String())},
		{"a first commit without the epoch-0 GroupInfo", func(k *kit, e1 dag.EventID) *dag.Event {
			k.users["dave"].g = k.foreignGroup("dave", 0)
			ev, _ := k.commitEvent(commitSpec{by: "dave", parent: k.create.ID(), noGI: true})
			return ev
		}, ReasonMLSNoGroupInfo},
		{"a first commit from a server other than the creator's", func(k *kit, e1 dag.EventID) *dag.Event {
			k.users["carol"].g = k.foreignGroup("carol", 0)
			ev, _ := k.commitEvent(commitSpec{by: "carol", parent: k.create.ID()})
			return ev
		}, ReasonMLSNoGroupInfo},
		{"a commit on a parent that is no accepted commit", func(k *kit, e1 dag.EventID) *dag.Event {
			ev, _ := k.commitEvent(commitSpec{by: "alice", parent: k.create.ID()})
			c, _ := roomevent.DecodeCommit(ev.Content)
			c.Parent = ev.ID() // an ID the room never accepted
			raw, _ := c.Marshal()
			return k.sign("a.test", k.room, dag.KindCommit, []dag.EventID{k.create.ID()}, raw)
		}, ReasonUnknownEpoch},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			k := newKit(t)
			e1 := k.addBob()
			ev := r.build(k, e1)
			rj := k.step(ev)
			switch {
			case r.want == "" && rj != nil:
				t.Fatalf("honest commit rejected: %v", rj.Err)
			case r.want != "" && rj == nil:
				t.Fatalf("accepted, want rejection %s", r.want)
			case r.want != "" && rj.Err.Reason != r.want:
				t.Fatalf("rejected with %s (%v), want %s", rj.Err.Reason, rj.Err, r.want)
			}
			if r.want != "" && k.e.Known(ev.ID()) {
				t.Fatal("a rejected commit is known as an epoch")
			}
		})
	}
}

// TestCheckLocal: a local submission must build on the canonical tip (a
// commit) or be in its epoch (a message); an event of another server is
// not held to that. Here the first commit is accepted but not yet sealed,
// so the tip is still the create event.
func TestCheckLocal(t *testing.T) {
	k := newKit(t)
	e1 := k.addBob()
	if k.e.Tip() != k.create.ID() {
		t.Fatalf("tip %v, want the create event (nothing sealed)", k.e.Tip())
	}
	onE1, _ := k.commitEvent(commitSpec{by: "alice", parent: e1})
	message := func(epoch dag.EventID) *dag.Event {
		alice := k.users["alice"]
		msg, err := alice.g.Send(rand.Reader, nil, []byte("hi"))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := msg.Marshal()
		content, _ := (&roomevent.Message{Sender: roomevent.Sender{User: alice.user, Client: alice.device}, Epoch: epoch, Message: raw}).Marshal()
		return k.sign("a.test", k.room, dag.KindMessage, []dag.EventID{k.create.ID()}, content)
	}
	for _, c := range []struct {
		name string
		ev   *dag.Event
		want Reason
	}{
		{"commit on an accepted commit that is not the tip", onE1, ReasonStaleParent},
		{"message in an accepted epoch that is not the tip's", message(e1), ReasonStaleEpoch},
	} {
		err := k.e.CheckLocal(c.ev)
		var re *RejectError
		if !errors.As(err, &re) || re.Reason != c.want {
			t.Errorf("%s: CheckLocal = %v, want %s", c.name, err, c.want)
		}
		if err := k.e.Check(c.ev); err != nil {
			t.Errorf("%s: Check (another server's event) = %v, want accepted", c.name, err)
		}
	}
}
