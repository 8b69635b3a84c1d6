package room

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/mls"
)

// FuzzEngineStep decodes arbitrary bytes as a DAG event and steps it (and
// checks it, as a local submission) into a fresh engine of the kit's room
// that holds the create event and the honest first commit: the engine
// must not panic, and every rejection must carry a reason. The seeds are
// real events of the room: the create event, the first commit (with its
// epoch-0 GroupInfo), a commit on it, a message, a proposal, a state
// event and votes.
func FuzzEngineStep(f *testing.F) {
	fz := newFuzzRoom(f)
	for _, ev := range fz.seeds[1:] {
		e, err := New(fz.k.create, fz.cfg)
		if err != nil {
			f.Fatal(err)
		}
		e.Step(fz.e1, ev)
		for _, r := range e.Ready().Rejected {
			if r.Event == ev.ID() {
				f.Fatalf("seed %v (%v) rejected: %v", ev.ID(), ev.Kind, r.Err)
			}
		}
	}
	for _, ev := range append(fz.seeds, fz.refused...) {
		f.Add(ev.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := dag.Decode(data)
		if err != nil {
			return
		}
		fz.run(t, ev)
	})
}

// FuzzEngineContent is FuzzEngineStep with the fuzzer's bytes as the
// content of a well-formed event of the room (of a kind, from a server,
// both chosen by the first bytes), so that mutations reach the content
// decoders, the MLS observer and room policy instead of the DAG encoding.
func FuzzEngineContent(f *testing.F) {
	fz := newFuzzRoom(f)
	for _, ev := range append(fz.seeds, fz.refused...) {
		if ev.Kind != dag.KindCreate {
			f.Add(uint8(ev.Kind), ev.Origin == fz.k.servers["b.test"].id, ev.Content)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, fromB bool, content []byte) {
		dom := "a.test"
		if fromB {
			dom = "b.test"
		}
		ev, err := dag.NewSigned(fz.k.servers[dom].key, fz.k.room, dag.Kind(kind), []dag.EventID{fz.k.create.ID()}, 1, content)
		if err != nil {
			return
		}
		fz.run(t, ev)
	})
}

// fuzzRoom is the kit's room with its first commit, and seed events.
type fuzzRoom struct {
	k     *kit
	e1    *dag.Event
	seeds []*dag.Event // accepted after e1 (the create event aside)
	// refused are seeds the engine refuses (a message naming the create
	// event's epoch, but of epoch 1).
	refused []*dag.Event
	cfg     Config
}

func newFuzzRoom(f *testing.F) *fuzzRoom {
	k := newKit(f)
	c := newCluster(k)
	e1 := c.addBob()
	seeds := []*dag.Event{k.create, e1, k.message("alice", "a.test", e1.ID()), k.message("bob", "b.test", e1.ID())}
	upd, err := k.users["bob"].g.ProposeUpdate(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, k.proposalEvent("bob", "b.test", e1.ID(), upd))
	kb := k.keyPackage("carol")
	e2, _ := k.commitEvent(commitSpec{by: "alice", parent: e1.ID(), props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}},
		changes: k.invite(e1.ID(), "mimi://b.test/u/carol")})
	seeds = append(seeds, e2, k.stateEvent("alice", k.topic("fuzz")))
	for _, r := range c.peers[1].record {
		if r.Event != nil && isVote(r.Event.Kind) {
			seeds = append(seeds, r.Event)
		}
	}
	return &fuzzRoom{k: k, e1: e1, seeds: seeds, refused: []*dag.Event{k.message("alice", "a.test", k.create.ID())}, cfg: Config{Self: k.servers["a.test"].id, TickLength: 10 * time.Millisecond, Now: time.UnixMilli(0)}}
}

// run checks and steps ev into a fresh engine holding the first commit.
func (fz *fuzzRoom) run(t *testing.T, ev *dag.Event) {
	e, err := New(fz.k.create, fz.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Step(fz.e1)
	e.Advance()
	checkErr := e.Check(ev)
	localErr := e.CheckLocal(ev)
	refs, refsErr := e.Refs(ev.Kind, ev.Content)
	if len(refs) > MaxRefs {
		t.Fatalf("Refs named %d events, more than MaxRefs", len(refs))
	}
	proposals := 0
	for i, id := range refs {
		if i > 0 && refs[i-1].Compare(id) >= 0 {
			t.Fatalf("Refs not strictly ascending: %v", refs)
		}
		if e.hasProposal(id) {
			proposals++
		}
	}
	if ev.Kind != dag.KindCommit && proposals > 0 {
		t.Fatalf("Refs of a %v named proposals: %v", ev.Kind, refs)
	}
	e.Step(ev)
	e.Step(ev)
	e.Tick(time.UnixMilli(10))
	rd := e.Ready()
	for _, r := range rd.Rejected {
		if r.Err == nil || r.Err.Reason == "" {
			t.Fatalf("rejection of %v without a reason: %+v", r.Event, r)
		}
	}
	for _, err := range []error{checkErr, localErr, refsErr} {
		if re, ok := err.(*RejectError); err != nil && (!ok || re.Reason == "") {
			t.Fatalf("Check error without a reason: %v", err)
		}
	}
	if _, err := e.StateAt(ev.ID()); err == nil && !e.Known(ev.ID()) {
		t.Fatal("StateAt of an unknown epoch")
	}
}

// hasProposal reports whether id is an accepted proposal event of a kept
// epoch.
func (e *Engine) hasProposal(id dag.EventID) bool {
	for _, m := range e.propEvents {
		for _, p := range m {
			if p == id {
				return true
			}
		}
	}
	return false
}
