package mls

import (
	"errors"
	"sync"
	"testing"
)

// Fuzzing of received handshake and application messages through a real
// group: any input must be processed or rejected with an error of the
// package, never panic, and a rejected input must leave the state as it
// was.

var (
	fuzzTrioOnce sync.Once
	fuzzTrio     *trio
	fuzzSeeds    [][]byte // MLSMessage encodings
	fuzzCommits  [][]byte // Commit encodings
)

func fuzzSetup(t testing.TB) {
	fuzzTrioOnce.Do(func() {
		tr := newTrio(t, GroupConfig{})
		add := func(m *MLSMessage) {
			raw, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			fuzzSeeds = append(fuzzSeeds, raw)
		}
		p, err := tr.carol.ProposeUpdate(tr.rand)
		if err != nil {
			t.Fatal(err)
		}
		add(p)
		app, err := tr.carol.Send(tr.rand, []byte("ad"), []byte("fuzz"))
		if err != nil {
			t.Fatal(err)
		}
		add(app)
		for _, opts := range []*CommitOptions{{ForcePath: true}, {Proposals: []Proposal{&RemoveProposal{Removed: 2}}}, {NoPending: true}} {
			pc, err := tr.alice.Commit(tr.rand, opts)
			if err != nil {
				t.Fatal(err)
			}
			add(pc.Message)
			c, err := pc.Message.PublicMessage.Content.Commit.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			fuzzCommits = append(fuzzCommits, c)
		}
		fuzzTrio = tr
	})
}

// fuzzReceiver returns a fresh copy of bob's state.
func fuzzReceiver(t testing.TB) *Group {
	g, err := fuzzTrio.bob.Snapshot().Restore()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func checkRejection(t *testing.T, g *Group, before string, err error) {
	if err == nil {
		return
	}
	if RejectReason(err) == ReasonNone {
		t.Fatalf("error without a reject reason: %v", err)
	}
	if after := fingerprint(t, g); after != before {
		t.Fatalf("state changed on error %v:\n%s\n%s", err, before, after)
	}
}

func FuzzProcessMessage(f *testing.F) {
	fuzzSetup(f)
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := UnmarshalMLSMessage(data)
		if err != nil {
			return
		}
		g := fuzzReceiver(t)
		before := fingerprint(t, g)
		// InspectCommit authenticates the same bytes and must never
		// change the group, whatever it returns.
		if _, _, err := g.InspectCommit(m); err != nil && RejectReason(err) == ReasonNone && !errors.Is(err, ErrOwnMessage) {
			t.Fatalf("InspectCommit error without a reject reason: %v", err)
		}
		if after := fingerprint(t, g); after != before {
			t.Fatalf("InspectCommit changed the state:\n%s\n%s", before, after)
		}
		_, err = g.ProcessMessage(m, nil)
		checkRejection(t, g, before, err)
	})
}

// FuzzProcessCommit wraps arbitrary Commit bodies in a correctly signed
// and tagged PublicMessage from alice, so that the fuzzer reaches proposal
// list validation, path processing and the key schedule.
func FuzzProcessCommit(f *testing.F) {
	fuzzSetup(f)
	for _, s := range fuzzCommits {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := UnmarshalCommit(data)
		if err != nil {
			return
		}
		m := forge(t, fuzzTrio.alice, c, nil)
		g := fuzzReceiver(t)
		before := fingerprint(t, g)
		_, err = g.ProcessMessage(m, nil)
		checkRejection(t, g, before, err)
	})
}
