package consensus

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
)

// kit builds events for tests: servers, commits by name, and votes whose
// IDs hash their content as package dag's would.
type kit struct {
	room  []byte
	root  EventID
	mem   Membership
	cands []ServerID
	names map[EventID]string
}

func sid(i int) ServerID { return ServerID(sha256.Sum256(fmt.Appendf(nil, "server-%d", i))) }

func newKit(n int) *kit {
	k := &kit{room: []byte("room"), names: map[EventID]string{}}
	k.root = k.id("root")
	for i := range n {
		k.mem.Servers = append(k.mem.Servers, sid(i))
	}
	k.mem.Seed = []byte("seed")
	k.cands = DefaultCandidates(k.room, k.mem.Seed, k.mem.Servers)
	return k
}

func (k *kit) id(name string) EventID {
	h := sha256.Sum256([]byte("commit/" + name))
	id := EventID(h[:])
	k.names[id] = name
	return id
}

func (k *kit) name(id EventID) string {
	if n, ok := k.names[id]; ok {
		return n
	}
	return fmt.Sprintf("%x", string(id)[:4])
}

func (k *kit) names_(ids []EventID) []string {
	out := []string{}
	for _, id := range ids {
		out = append(out, k.name(id))
	}
	return out
}

func (k *kit) slot(name string) EventID {
	if name == "root" {
		return k.root
	}
	return k.id(name)
}

func (k *kit) commit(name, parent string) Event {
	return Event{ID: k.id(name), From: k.mem.Servers[0], Commit: &Commit{Parent: k.slot(parent)}}
}

func voteID(kind string, from ServerID, payload []byte) EventID {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write(from[:])
	h.Write(payload)
	return EventID(h.Sum(nil))
}

func (k *kit) sealEv(from ServerID, s Seal) Event {
	b, err := s.Marshal()
	if err != nil {
		panic(err)
	}
	return Event{ID: voteID("seal", from, b), From: from, Seal: &s}
}

// seal is a seal by the candidate of the given rank in term t.
func (k *kit) seal(slot, commit string, t uint64, tentative bool, rank int, just []EventID) Event {
	from := k.cands[(int(t)+rank)%len(k.cands)]
	return k.sealEv(from, Seal{Slot: k.slot(slot), Commit: k.id(commit), Term: t, Tentative: tentative, Rank: uint32(rank), Justification: just})
}

func (k *kit) ack(from ServerID, slot, commit string, t uint64) Event {
	a := Ack{Slot: k.slot(slot), Commit: k.id(commit), Term: t}
	b, _ := a.Marshal()
	return Event{ID: voteID("ack", from, b), From: from, Ack: &a}
}

func (k *kit) suspect(from ServerID, t uint64, reports ...AckReport) Event {
	s := Suspect{Term: t, Reports: reports}
	b, err := s.Marshal()
	if err != nil {
		panic(err)
	}
	return Event{ID: voteID("suspect", from, b), From: from, Suspect: &s}
}

func (k *kit) report(slot, commit string, t uint64) AckReport {
	return AckReport{Slot: k.slot(slot), Commit: k.id(commit), Term: t}
}

// acks returns acks for commit by the first n servers in candidate order.
func (k *kit) acks(n int, slot, commit string, t uint64) []Event {
	var out []Event
	for i := range n {
		out = append(out, k.ack(k.cands[i], slot, commit, t))
	}
	return out
}

func ids(evs []Event) []EventID {
	var out []EventID
	for _, e := range evs {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

func (k *kit) order(t *testing.T, events []Event) Order {
	t.Helper()
	o, errs := ForkChoice(k.room, k.root, k.mem, events)
	if len(errs) > 0 {
		t.Fatalf("ForkChoice rejected events: %v", errs)
	}
	return o
}
