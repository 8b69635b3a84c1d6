package mls

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Fuzzing the observer with peer bytes: a commit (or proposal) for a
// four-member group in epoch 3, and a GroupInfo to bootstrap from. No
// input may panic, every rejection must be an *ObserverError that
// RejectReason classifies, and the observer value must not change.

var pgFuzz struct {
	once  sync.Once
	room  *rejectRoom
	seeds [][]byte
	infos [][]byte
}

func pgFuzzSetup(tb testing.TB) {
	pgFuzz.once.Do(func() {
		r := newRejectRoom(tb)
		pgFuzz.room = r
		add := r.keyPackage("fuzz joiner")
		msgs := []*MLSMessage{
			r.genuinePath(tb),
			r.commit("bob", &CommitOptions{NoPending: true, Proposals: []Proposal{&AddProposal{KeyPackage: *add.KeyPackage}}}).Message,
			r.commit("dave", &CommitOptions{NoPending: true, Proposals: []Proposal{&RemoveProposal{Removed: r.leaf("bob")}}}).Message,
			r.epoch2,
			r.framed(tb, r.carolIndex, r.carolSig, &Commit{Proposals: []ProposalOrRef{}}, nil),
		}
		for _, m := range msgs {
			pgFuzz.seeds = append(pgFuzz.seeds, must(m.Marshal()))
		}
		fresh := newObsRoom(tb, CipherSuite(1), "fuzz fresh", GroupConfig{})
		for _, g := range []*Group{fresh.members["alice"], r.members["alice"]} {
			gi, err := g.GroupInfo(true)
			if err != nil {
				tb.Fatal(err)
			}
			m := &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}
			pgFuzz.infos = append(pgFuzz.infos, must(m.Marshal()))
		}
	})
}

// checkObserverErr fails unless err is a typed, classified rejection.
func checkObserverErr(t *testing.T, err error) {
	t.Helper()
	if ObserverReasonOf(err) == ObserverReasonNone || RejectReason(err) == ReasonNone {
		t.Fatalf("untyped rejection: %v (observer reason %v, reject reason %v)", err, ObserverReasonOf(err), RejectReason(err))
	}
}

func FuzzPublicGroupProcessCommit(f *testing.F) {
	pgFuzzSetup(f)
	for _, s := range pgFuzz.seeds {
		f.Add(s)
	}
	pg := pgFuzz.room.obs
	before := pgContext(f, pg)
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := UnmarshalMLSMessage(data)
		if err != nil {
			return
		}
		next, oc, err := pg.ProcessCommit(msg, time.Time{})
		if err != nil {
			checkObserverErr(t, err)
			if next != nil || oc != nil {
				t.Fatal("a rejection returned a state")
			}
		} else if next.Epoch() != pg.Epoch()+1 || oc.Epoch != next.Epoch() {
			t.Fatalf("accepted into epoch %d from %d", next.Epoch(), pg.Epoch())
		}
		if _, _, err := pg.ProcessProposal(msg, time.Time{}); err != nil {
			checkObserverErr(t, err)
		}
		if !bytes.Equal(pgContext(t, pg), before) {
			t.Fatal("the observer changed")
		}
	})
}

func FuzzParsePublicGroup(f *testing.F) {
	pgFuzzSetup(f)
	for _, s := range pgFuzz.infos {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePublicGroup(data, nil)
		if err != nil {
			checkObserverErr(t, err)
			return
		}
		gi := must(UnmarshalMLSMessage(data)).GroupInfo
		if p.Epoch() != gi.GroupContext.Epoch || !bytes.Equal(p.GroupID(), gi.GroupContext.GroupID) {
			t.Fatal("bootstrapped state differs from the GroupInfo")
		}
	})
}
