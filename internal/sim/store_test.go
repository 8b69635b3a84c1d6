package sim

import (
	"slices"
	"testing"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
)

// TestServersStoreSignedDAG checks that every simulated server ends a
// forged-vote run with a real DAG in its dag.MemStore: every stored event
// passes dag.Validate (real Ed25519 signature, known room, parents in the
// room), nothing is left pending, every server holds the same events, and
// no forgery was stored.
func TestServersStoreSignedDAG(t *testing.T) {
	var sc Scenario
	for _, s := range loadScenarios(t) {
		if s.Name == "forged" {
			sc = s
		}
	}
	if sc.Name == "" {
		t.Fatal("scenario forged missing")
	}
	w := run(sc, 3)
	r := w.rep
	if len(r.Violations) > 0 {
		t.Fatalf("violations: %v", r.Violations)
	}
	if r.ForgedRejected == 0 || r.VotesRejected == 0 || r.ForgedRejected+r.VotesRejected != r.ForgedInjected {
		t.Fatalf("forgeries: %d injected, %d rejected by signature, %d by the machine", r.ForgedInjected, r.ForgedRejected, r.VotesRejected)
	}
	want := -1
	for _, s := range w.servers {
		log := s.log(0)
		if uint64(len(log)) != s.stored {
			t.Errorf("server %d: log of %d, counted %d", s.idx, len(log), s.stored)
		}
		if want < 0 {
			want = len(log)
		} else if len(log) != want {
			t.Errorf("server %d holds %d events, server 0 %d", s.idx, len(log), want)
		}
		if pend, _ := s.store.Pending(w.room); len(pend) > 0 {
			t.Errorf("server %d: %d events still pending", s.idx, len(pend))
		}
		withParents := 0
		for _, le := range log {
			ev, err := s.store.Get(le.ID)
			if err != nil {
				t.Fatalf("server %d: get %v: %v", s.idx, le.ID, err)
			}
			if err := dag.Validate(ev, s.store); err != nil {
				t.Errorf("server %d: stored event %v invalid: %v", s.idx, le.ID, err)
			}
			if !slices.Contains(w.order.membership.Servers, consensus.ServerID(ev.Origin)) {
				t.Errorf("server %d: stored an event of non-member %x", s.idx, ev.Origin[:4])
			}
			if len(ev.Prev) > 0 {
				withParents++
			}
		}
		if withParents != len(log)-1 {
			t.Errorf("server %d: %d of %d events have parents; only the create event may have none", s.idx, withParents, len(log))
		}
	}
}
