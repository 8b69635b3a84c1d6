package node

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// stateFixture builds a roomOrder by hand (no machine): a private group
// whose admin is alice, and helpers that append commits and state events
// adding one participant each.
type stateFixture struct {
	t    *testing.T
	o    *roomOrder
	ids  map[string]dag.EventID
	adds map[dag.EventID]string // entry -> user it adds
}

const fixtureAdmin = "mimi://a.test/u/alice"

func newStateFixture(t *testing.T) *stateFixture {
	t.Helper()
	st, err := roomstate.NewRoom(roomstate.PresetPrivateGroup, roomstate.RoomConfig{
		Room: "mimi://a.test/r/fixture", Name: "Fixture", Creator: fixtureAdmin,
		Servers: []roomstate.Server{{ID: roomstate.ServerID{1}, Domain: "a.test"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &stateFixture{t: t, ids: map[string]dag.EventID{}, adds: map[dag.EventID]string{}}
	root := f.id("create")
	f.o = &roomOrder{
		root: root, pos: map[dag.EventID]int{}, parent: map[dag.EventID]dag.EventID{},
		entries: []stateEntry{{id: root, kind: dag.KindCreate, initial: st}},
		snaps:   []*roomstate.State{st},
	}
	return f
}

// id returns a stable event ID for a name.
func (f *stateFixture) id(name string) dag.EventID {
	if id, ok := f.ids[name]; ok {
		return id
	}
	sum := sha256.Sum256([]byte(name))
	id, err := dag.EventIDFromBytes(append([]byte{0x12, 0x20}, sum[:]...))
	if err != nil {
		f.t.Fatal(err)
	}
	f.ids[name] = id
	return id
}

// add appends an entry named name of kind (commit on parent, or state)
// whose change adds user as a member.
func (f *stateFixture) add(name string, kind dag.Kind, parent, user string) {
	f.t.Helper()
	comp, update, err := roomstate.EncodeOp(f.o.current(), &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: roomstate.URI(user), Role: roomstate.RoleMember}}})
	if err != nil {
		f.t.Fatal(err)
	}
	e := stateEntry{
		id: f.id(name), kind: kind,
		actor:   roomstate.Actor{Kind: roomstate.ActorUser, User: fixtureAdmin, Client: "mimi://a.test/d/alice/phone"},
		changes: []roomevent.Change{{Component: uint16(comp), Update: update}},
	}
	if kind == dag.KindCommit {
		e.parent = f.id(parent)
	}
	f.o.appendEntry(e)
	f.adds[e.id] = user
}

func (f *stateFixture) chain(names ...string) []dag.EventID {
	var out []dag.EventID
	for _, n := range names {
		out = append(out, f.id(n))
	}
	return out
}

func users(st *roomstate.State) []string {
	var out []string
	for _, p := range st.Participants() {
		out = append(out, string(p.User))
	}
	slices.Sort(out)
	return out
}

func sorted(us ...string) []string {
	out := append([]string{fixtureAdmin}, us...)
	slices.Sort(out)
	return out
}

// TestRoomStateFollowsCanonicalChain checks the state derivation of
// node/order.go: commit changes count only on the canonical branch, in
// chain order, interleaved with state events in arrival order; a reorg
// recomputes the state; a commit on a side branch is authorized against
// its own branch's state.
func TestRoomStateFollowsCanonicalChain(t *testing.T) {
	f := newStateFixture(t)
	f.add("X", dag.KindCommit, "create", "mimi://a.test/u/dave")
	f.add("Y", dag.KindCommit, "create", "mimi://a.test/u/erin")
	f.add("S", dag.KindState, "", "mimi://a.test/u/frank")
	if got := users(f.o.current()); !slices.Equal(got, sorted("mimi://a.test/u/frank")) {
		t.Fatalf("before any commit is canonical: %v", got)
	}
	steps := []struct {
		name  string
		chain []string
		want  []string
	}{
		{"X canonical", []string{"X"}, sorted("mimi://a.test/u/dave", "mimi://a.test/u/frank")},
		{"reorg to Y", []string{"Y"}, sorted("mimi://a.test/u/erin", "mimi://a.test/u/frank")},
		{"empty chain", nil, sorted("mimi://a.test/u/frank")},
		{"back to X", []string{"X"}, sorted("mimi://a.test/u/dave", "mimi://a.test/u/frank")},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f.o.setChain(f.chain(s.chain...))
			if got := users(f.o.current()); !slices.Equal(got, s.want) {
				t.Fatalf("members = %v, want %v", got, s.want)
			}
		})
	}
	// Z builds on Y, a side branch while X is canonical: its parent state
	// has erin and not dave.
	st, err := f.o.stateAt(f.id("Y"))
	if err != nil {
		t.Fatal(err)
	}
	if got := users(st); !slices.Equal(got, sorted("mimi://a.test/u/erin", "mimi://a.test/u/frank")) {
		t.Fatalf("state at side branch Y = %v", got)
	}
	if _, err := f.o.stateAt(f.id("unknown")); err == nil {
		t.Fatal("state at an unknown parent: no error")
	}
	f.add("Z", dag.KindCommit, "Y", "mimi://a.test/u/gina")
	f.o.setChain(f.chain("Y", "Z"))
	if got := users(f.o.current()); !slices.Equal(got, sorted("mimi://a.test/u/erin", "mimi://a.test/u/frank", "mimi://a.test/u/gina")) {
		t.Fatalf("chain Y, Z: %v", got)
	}
}

// TestRoomStateReorgBeyondSnapshots undoes a commit older than the snapshot
// window: the state is recomputed from the create event and equals a fresh
// fold.
func TestRoomStateReorgBeyondSnapshots(t *testing.T) {
	f := newStateFixture(t)
	f.add("old", dag.KindCommit, "create", "mimi://a.test/u/old")
	f.o.setChain(f.chain("old"))
	var want []string
	for i := range snapWindow + 10 {
		u := fmt.Sprintf("mimi://a.test/u/s%d", i)
		f.add(fmt.Sprintf("s%d", i), dag.KindState, "", u)
		want = append(want, u)
	}
	if f.o.snaps[1] != nil {
		t.Fatal("snapshot outside the window kept")
	}
	if got := users(f.o.current()); len(got) != len(want)+2 {
		t.Fatalf("%d members before the reorg, want %d", len(got), len(want)+2)
	}
	f.o.setChain(nil)
	if got := users(f.o.current()); !slices.Equal(got, sorted(want...)) {
		t.Fatalf("after undoing the old commit: %d members (old one kept: %v)", len(got), slices.Contains(got, "mimi://a.test/u/old"))
	}
}
