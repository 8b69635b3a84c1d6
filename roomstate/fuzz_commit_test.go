package roomstate

import (
	"bytes"
	"testing"
)

// FuzzAuthorizeCommit builds commit descriptions from fuzz bytes over a
// fixed group (members, strangers, servers, AppDataUpdates from real or
// garbled encodings) and checks the properties every accepted commit must
// have: no panic, typed rejections, inputs untouched, and the resulting
// group consistent with the resulting state (CheckRoster).
func FuzzAuthorizeCommit(f *testing.F) {
	s, roster := commitFixture(f)
	clients := append(roster, Client{"bob/3", testUser(1)}, Client{"dave/1", testUser(3)}, Client{"zed/1", testUser(5)})
	senders := []Sender{ServerSender(testServer(1).ID), ServerSender(testServer(2).ID), ServerSender(testServer(4).ID)}
	for _, c := range clients {
		senders = append(senders, MemberSender(c),
			Sender{Kind: SenderNewMemberCommit, Client: c.ID, User: c.User},
			Sender{Kind: SenderNewMemberProposal, Client: c.ID, User: c.User})
	}
	var updates [][]byte
	r := rng(3)
	for range 60 {
		_, op := randomOp(&r, s)
		if id, upd, err := EncodeOp(s, op); err == nil {
			updates = append(updates, append([]byte{byte(id >> 8), byte(id)}, upd...))
		}
	}
	f.Add([]byte{0, 0, 1, 0, 0})
	f.Add([]byte{3, 0})          // alice commits nothing
	f.Add([]byte{3, 1, 1, 3, 4}) // alice adds bob's third device
	f.Add([]byte{3, 1, 3, 3, 1}) // alice kicks one of bob's devices
	f.Add([]byte{3, 2, 8, 3, 0, 5, 3, 3, 1})
	f.Add([]byte{3, 7, 2, 3, 0, 3, 2, 3, 0, 4})
	f.Add([]byte{4, 7, 0, 3, 1, 7, 2, 3, 2, 7, 3, 3, 1})
	before, _ := s.Components()
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := int(data[0])
			data = data[1:]
			return b
		}
		c := Commit{Committer: senders[next()%len(senders)]}
		for n := next() % 8; n > 0; n-- {
			p := Proposal{Type: ProposalType(1 + next()%10), Sender: senders[next()%len(senders)], Client: clients[next()%len(clients)]}
			if p.Type == ProposalAppDataUpdate {
				u := updates[next()%len(updates)]
				p.Component, p.Update = ComponentID(u[0])<<8|ComponentID(u[1]), u[2:]
				if k := next(); k%4 == 0 && len(p.Update) > 0 {
					p.Update = append(bytes.Clone(p.Update[:k%len(p.Update)]), byte(k))
				}
			}
			c.Proposals = append(c.Proposals, p)
		}
		n, members, err := AuthorizeCommit(s, roster, c)
		if err != nil {
			if ReasonOf(err) == 0 {
				t.Fatalf("untyped rejection: %v", err)
			}
		} else if err := CheckRoster(n, members); err != nil {
			t.Fatalf("accepted commit left an inconsistent group: %v\n%+v", err, c)
		}
		after, _ := s.Components()
		for i := range before {
			if !bytes.Equal(before[i].Data, after[i].Data) {
				t.Fatal("AuthorizeCommit modified its input state")
			}
		}
	})
}
