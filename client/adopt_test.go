package client

import (
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// stateEvent is user name's state event applying op (encoded on st),
// signed by the user's device and server.
func (k *vkit) stateEvent(name string, st *roomstate.State, op roomstate.Op) *dag.Event {
	k.t.Helper()
	u := k.users[name]
	comp, update, err := roomstate.EncodeOp(st, op)
	if err != nil {
		k.t.Fatal(err)
	}
	se := &roomevent.State{Sender: roomevent.Sender{User: u.user, Client: u.device}, Changes: []roomevent.Change{{Component: uint16(comp), Update: update}}}
	if err := se.Sign(k.room, ed25519.NewKeyFromSeed(u.sig.Bytes())); err != nil {
		k.t.Fatal(err)
	}
	content, err := se.Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	return k.sign(roomstate.URI(u.user).Domain(), k.room, dag.KindState, []dag.EventID{k.create.ID()}, content)
}

// loggedEntry returns the replay log's entry for event.
func (k *vkit) loggedEntry(event string) *logEntry {
	k.t.Helper()
	var out *logEntry
	err := k.c.st.scan(roomPrefix(k.room.String())+"log/", func(_, v []byte) error {
		var e logEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		if e.Event == event {
			out = &e
		}
		return nil
	})
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// roleOf is user's role in the client's room state (and in the state the
// next commit is judged against).
func (k *vkit) roleOf(user string) (now, pending roomstate.RoleIndex) {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	r := k.c.rooms[k.room.String()]
	return r.state.RoleOf(roomstate.URI(user)), r.pendingState().RoleOf(roomstate.URI(user))
}

// TestClientAdoptsStateEvents: the client folds state events as servers
// do. A state event alone changes nothing; the commit that names it among
// its DAG parents adopts it (logged in the commit's entry, so the replay
// after a restart is the same); a later commit naming it again adopts
// nothing; a commit adopting a state event that does not apply is refused
// and not logged.
func TestClientAdoptsStateEvents(t *testing.T) {
	k := newVKit(t)
	carol := k.users["carol"].user
	promote := k.stateEvent("alice", k.st1, &roomstate.ParticipantUpdate{RoleChanges: []roomstate.UserRole{{User: roomstate.URI(carol), Role: roomstate.RoleAdmin}}})
	k.feed(k.eventLine(promote, "state"))
	if now, pending := k.roleOf(carol); now != roomstate.RoleMember || pending != roomstate.RoleAdmin {
		t.Fatalf("carol after the state event alone: role %d (pending %d), want member (pending admin)", now, pending)
	}
	alice := k.users["alice"]
	e2, pc := k.commitEvent(vkSpec{by: "alice", adopt: []dag.EventID{promote.ID()}})
	k.canonical(e2)
	if err := alice.g.MergeCommit(pc, e2.ID().Bytes(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if now, _ := k.roleOf(carol); now != roomstate.RoleAdmin {
		t.Fatalf("carol after the adopting commit: role %d, want admin; skipped %v", now, k.c.Skipped())
	}
	if e := k.loggedEntry(e2.ID().String()); e == nil || !slices.Equal(e.Adopted, []string{promote.ID().String()}) {
		t.Fatalf("the adopting commit's log entry = %+v, want it to adopt %s", e, promote.ID())
	}
	k.reopen()
	if now, _ := k.roleOf(carol); now != roomstate.RoleAdmin {
		t.Fatalf("carol after the replay: role %d, want admin", now)
	}
	st2 := func() *roomstate.State {
		k.c.mu.Lock()
		defer k.c.mu.Unlock()
		return k.c.rooms[k.room.String()].state
	}()

	// Naming it again adopts nothing.
	e3, pc := k.commitEvent(vkSpec{by: "alice", parent: e2.ID(), st: st2, adopt: []dag.EventID{promote.ID()}})
	k.canonical(e3)
	if err := alice.g.MergeCommit(pc, e3.ID().Bytes(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if e := k.loggedEntry(e3.ID().String()); e == nil || len(e.Adopted) != 0 {
		t.Fatalf("a commit naming an adopted state event again: log entry %+v, want it applied adopting none; skipped %v", e, k.c.Skipped())
	}

	// bob (the client's user, a member) may not make dave an admin: a
	// commit adopting that is refused.
	bad := k.stateEvent("bob", st2, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://b.test/u/dave", Role: roomstate.RoleAdmin}}})
	k.feed(k.eventLine(bad, "state"))
	e4, _ := k.commitEvent(vkSpec{by: "alice", parent: e3.ID(), st: st2, adopt: []dag.EventID{bad.ID()}})
	k.canonical(e4)
	if k.logged(e4.ID().String()) || string(k.roomInfo().EpochID) != e3.ID().String() {
		t.Fatalf("the commit adopting a state event that does not apply was applied; skipped %v", k.c.Skipped())
	}
}

// TestClientUndoneAdoptionPendsAgain: when the commit that adopted a state
// event is undone, the state event is pending again, and the commit that
// wins the slot instead adopts it.
func TestClientUndoneAdoptionPendsAgain(t *testing.T) {
	k := newVKit(t)
	carol := k.users["carol"].user
	promote := k.stateEvent("alice", k.st1, &roomstate.ParticipantUpdate{RoleChanges: []roomstate.UserRole{{User: roomstate.URI(carol), Role: roomstate.RoleAdmin}}})
	k.feed(k.eventLine(promote, "state"))
	at1, err := k.users["alice"].g.Snapshot().Restore()
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := k.commitEvent(vkSpec{by: "alice", adopt: []dag.EventID{promote.ID()}})
	k.canonical(e2)
	if now, _ := k.roleOf(carol); now != roomstate.RoleAdmin {
		t.Fatalf("carol after the adopting commit: role %d, want admin; skipped %v", now, k.c.Skipped())
	}
	// The winner on e1, also adopting it, replaces e2.
	win, _ := k.commitEvent(vkSpec{by: "alice", g: at1, adopt: []dag.EventID{promote.ID()}})
	k.feed(k.eventLine(win, "commit"))
	k.cursor++
	k.feed(&clientapi.StreamLine{Type: clientapi.LineOrder, Cursor: k.cursor, Room: k.room.String(), Tip: k.e1.String(), Undone: []string{e2.ID().String()},
		RetainUntilMS: time.Now().Add(time.Hour).UnixMilli()})
	if now, pending := k.roleOf(carol); now != roomstate.RoleMember || pending != roomstate.RoleAdmin {
		t.Fatalf("carol after the undo: role %d (pending %d), want member (pending admin); skipped %v", now, pending, k.c.Skipped())
	}
	k.cursor++
	k.feed(&clientapi.StreamLine{Type: clientapi.LineOrder, Cursor: k.cursor, Room: k.room.String(), Tip: win.ID().String(), Applied: []string{win.ID().String()}})
	if now, _ := k.roleOf(carol); now != roomstate.RoleAdmin {
		t.Fatalf("carol after the winner: role %d, want admin; skipped %v", now, k.c.Skipped())
	}
	if e := k.loggedEntry(win.ID().String()); e == nil || !slices.Equal(e.Adopted, []string{promote.ID().String()}) {
		t.Fatalf("the winner's log entry = %+v, want it to adopt %s", e, promote.ID())
	}
}

// TestClientOldStateEntriesReplay: a replay log written before state
// events waited for adoption holds "state" entries, applied at once, and
// commit entries without Adopted (like the first commit's here), which
// adopt nothing; both still replay.
func TestClientOldStateEntriesReplay(t *testing.T) {
	k := newVKit(t)
	carol := k.users["carol"].user
	comp, update, err := roomstate.EncodeOp(k.st1, &roomstate.ParticipantUpdate{RoleChanges: []roomstate.UserRole{{User: roomstate.URI(carol), Role: roomstate.RoleAdmin}}})
	if err != nil {
		t.Fatal(err)
	}
	alice := k.users["alice"]
	old := &logEntry{Op: "state", Event: "old", Changes: []clientapi.Change{{Component: uint16(comp), Update: update}}, Actor: actorJSON{User: alice.user, Client: alice.device}}
	k.c.mu.Lock()
	r := k.c.rooms[k.room.String()]
	b := newBatch()
	err = k.c.logAndApply(b, r, old)
	if err == nil {
		err = k.c.st.commit(b)
	}
	k.c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := k.roleOf(carol); now != roomstate.RoleAdmin {
		t.Fatalf("carol after an old state entry: role %d, want admin", now)
	}
	k.reopen()
	if now, _ := k.roleOf(carol); now != roomstate.RoleAdmin {
		t.Fatalf("carol after replaying an old state entry: role %d, want admin", now)
	}
}
