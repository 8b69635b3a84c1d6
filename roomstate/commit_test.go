package roomstate

import (
	"errors"
	"testing"
)

// commitFixture: a private group with alice (admin, 1 device), bob (member,
// 2 devices) and carol (moderator, 1 device), hosted by two servers.
func commitFixture(t testing.TB) (*State, []Client) {
	t.Helper()
	s := newTestRoom(t, PresetPrivateGroup)
	add := func(u URI, r RoleIndex) {
		next, err := Apply(s, Change{Actor: UserActor(testUser(0), ""), Op: &ParticipantUpdate{Added: []UserRole{{u, r}}}})
		if err != nil {
			t.Fatal(err)
		}
		s = next
	}
	add(testUser(1), RoleMember)
	add(testUser(2), RoleModerator)
	roster := []Client{
		{"alice/1", testUser(0)},
		{"bob/1", testUser(1)}, {"bob/2", testUser(1)},
		{"carol/1", testUser(2)},
	}
	return s, roster
}

func pupdate(t *testing.T, s *State, snd Sender, op Op) Proposal {
	t.Helper()
	id, upd, err := EncodeOp(s, op)
	if err != nil {
		t.Fatal(err)
	}
	return Proposal{Type: ProposalAppDataUpdate, Sender: snd, Component: id, Update: upd}
}

func TestAuthorizeCommit(t *testing.T) {
	t.Parallel()
	s, roster := commitFixture(t)
	alice, bob1, carol := MemberSender(roster[0]), MemberSender(roster[1]), MemberSender(roster[3])
	srv := ServerSender(testServer(1).ID)
	meta := s.Metadata()
	meta.Name = "x"
	meta2 := meta
	meta2.Name = "y"
	removeBob := &ParticipantUpdate{Removed: []URI{testUser(1)}}
	tests := []struct {
		name      string
		commit    Commit
		want      Reason // 0: accepted
		wantUsers int
		wantMembs int
	}{
		{"empty commit by member", Commit{Committer: alice}, 0, 3, 4},
		{"committer not a member", Commit{Committer: MemberSender(Client{"zed/1", testUser(5)})}, ReasonUnknownUser, 0, 0},
		{"committer claims another user", Commit{Committer: Sender{Kind: SenderMember, Client: "bob/1", User: testUser(0)}}, ReasonMalformed, 0, 0},
		{"server cannot commit", Commit{Committer: srv}, ReasonNotAllowed, 0, 0},
		{"external commit without ExternalInit", Commit{Committer: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)}}, ReasonMalformed, 0, 0},
		{"external commit adds own device", Commit{Committer: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)},
			Proposals: []Proposal{{Type: ProposalExternalInit, Sender: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)}}}}, 0, 3, 5},
		{"external commit by a stranger", Commit{Committer: Sender{Kind: SenderNewMemberCommit, Client: "zed/1", User: testUser(5)},
			Proposals: []Proposal{{Type: ProposalExternalInit, Sender: Sender{Kind: SenderNewMemberCommit, Client: "zed/1", User: testUser(5)}}}}, ReasonIncomplete, 0, 0},
		{"remove user with all clients", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, removeBob),
			{Type: ProposalRemove, Sender: alice, Client: roster[1]}, {Type: ProposalRemove, Sender: alice, Client: roster[2]}}}, 0, 2, 2},
		{"remove user keeping a client", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, removeBob), {Type: ProposalRemove, Sender: alice, Client: roster[1]}}}, ReasonIncomplete, 0, 0},
		{"remove non-member client", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalRemove, Sender: alice, Client: Client{"zed/1", testUser(5)}}}}, ReasonUnknownUser, 0, 0},
		{"remove client twice", Commit{Committer: alice, Proposals: []Proposal{
			{Type: ProposalRemove, Sender: alice, Client: roster[1]}, {Type: ProposalRemove, Sender: alice, Client: roster[1]}}}, ReasonMalformed, 0, 0},
		{"remove client under wrong user", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalRemove, Sender: alice, Client: Client{"bob/1", testUser(2)}}}}, ReasonMalformed, 0, 0},
		{"member kicks without canKick", Commit{Committer: bob1, Proposals: []Proposal{{Type: ProposalRemove, Sender: bob1, Client: roster[3]}}}, ReasonNotAllowed, 0, 0},
		{"moderator kicks", Commit{Committer: carol, Proposals: []Proposal{{Type: ProposalRemove, Sender: carol, Client: roster[1]}, {Type: ProposalRemove, Sender: carol, Client: roster[2]}}}, 0, 3, 2},
		{"own device removed by own other device", Commit{Committer: bob1, Proposals: []Proposal{{Type: ProposalRemove, Sender: bob1, Client: roster[2]}}}, 0, 3, 3},
		{"self-remove by reference", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalSelfRemove, Sender: MemberSender(roster[2])}}}, 0, 3, 3},
		{"two metadata updates", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, &MetadataUpdate{meta}), pupdate(t, s, alice, &MetadataUpdate{meta2})}}, ReasonMalformed, 0, 0},
		{"roles with participant change", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, &RolesUpdate{s.Roles()}), pupdate(t, s, alice, &ParticipantUpdate{Added: []UserRole{{testUser(4), RoleMember}}})}}, ReasonMalformed, 0, 0},
		{"preauth with participant add", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, &PreAuthUpdate{}), pupdate(t, s, alice, &ParticipantUpdate{Added: []UserRole{{testUser(4), RoleMember}}})}}, ReasonMalformed, 0, 0},
		{"preauth with participant removal", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, &PreAuthUpdate{}), pupdate(t, s, alice, removeBob),
			{Type: ProposalRemove, Sender: alice, Client: roster[1]}, {Type: ProposalRemove, Sender: alice, Client: roster[2]}}}, 0, 2, 2},
		{"user touched by two updates", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, &ParticipantUpdate{RoleChanges: []UserRole{{testUser(1), RoleModerator}}}),
			pupdate(t, s, carol, &ParticipantUpdate{Added: []UserRole{{testUser(4), RoleMember}}}),
			pupdate(t, s, alice, &ParticipantUpdate{Added: []UserRole{{testUser(4), RoleMember}}})}}, ReasonMalformed, 0, 0},
		{"undecodable update", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalAppDataUpdate, Sender: alice, Component: ComponentParticipantList, Update: []byte{1}}}}, ReasonMalformed, 0, 0},
		{"update for a foreign component", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalAppDataUpdate, Sender: alice, Component: 0x0001, Update: nil}}}, ReasonMalformed, 0, 0},
		{"server AppDataUpdate outside its domain", Commit{Committer: carol, Proposals: []Proposal{pupdate(t, s, srv, &ParticipantUpdate{Removed: []URI{testUser(0)}})}}, ReasonNotAllowed, 0, 0},
		{"server removes its own user", Commit{Committer: alice, Proposals: []Proposal{pupdate(t, s, srv, removeBob),
			{Type: ProposalRemove, Sender: srv, Client: roster[1]}, {Type: ProposalRemove, Sender: srv, Client: roster[2]}}}, 0, 2, 2},
		{"server Add", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalAdd, Sender: srv, Client: Client{"bob/9", testUser(1)}}}}, ReasonNotAllowed, 0, 0},
		{"server PSK", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalPSK, Sender: srv}}}, ReasonNotAllowed, 0, 0},
		{"unknown server", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalRemove, Sender: ServerSender(testServer(4).ID), Client: roster[1]}}}, ReasonUnknownUser, 0, 0},
		{"server removes own domain's device", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalRemove, Sender: srv, Client: roster[1]}}}, 0, 3, 3},
		{"member ReInit without capability", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalReInit, Sender: bob1}}}, ReasonNotAllowed, 0, 0},
		{"admin ReInit", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalReInit, Sender: alice}}}, 0, 3, 4},
		{"member GroupContextExtensions", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalGroupContextExtensions, Sender: bob1}}}, ReasonNotAllowed, 0, 0},
		{"member ExternalInit", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalExternalInit, Sender: bob1}}}, ReasonMalformed, 0, 0},
		{"add client twice", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, &ParticipantUpdate{Added: []UserRole{{testUser(4), RoleMember}}}),
			{Type: ProposalAdd, Sender: alice, Client: Client{"d/1", testUser(4)}}, {Type: ProposalAdd, Sender: alice, Client: Client{"d/1", testUser(4)}}}}, ReasonMalformed, 0, 0},
		{"add existing member", Commit{Committer: alice, Proposals: []Proposal{{Type: ProposalAdd, Sender: alice, Client: roster[1]}}}, ReasonMalformed, 0, 0},
		{"member adds a listed user's device without canAddParticipant for the role", Commit{Committer: bob1, Proposals: []Proposal{{Type: ProposalAdd, Sender: bob1, Client: Client{"carol/2", testUser(2)}}}}, ReasonNotAllowed, 0, 0},
		{"single-device policy while bob has two devices", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, &BasePolicyUpdate{singleDevice(s)})}}, ReasonLimitExceeded, 0, 0},
		{"single-device policy with the extra device removed", Commit{Committer: alice, Proposals: []Proposal{
			pupdate(t, s, alice, &BasePolicyUpdate{singleDevice(s)}), {Type: ProposalRemove, Sender: alice, Client: roster[2]}}}, 0, 3, 3},
		{"external commit replaces own stale device", Commit{Committer: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)},
			Proposals: []Proposal{{Type: ProposalExternalInit, Sender: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)}},
				{Type: ProposalRemove, Sender: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)}, Client: roster[1]}}}, 0, 3, 4},
		{"external commit removes another user's device", Commit{Committer: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)},
			Proposals: []Proposal{{Type: ProposalExternalInit, Sender: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)}},
				{Type: ProposalRemove, Sender: Sender{Kind: SenderNewMemberCommit, Client: "bob/3", User: testUser(1)}, Client: roster[3]}}}, ReasonNotAllowed, 0, 0},
		{"new member proposal of a listed user's device", Commit{Committer: alice, Proposals: []Proposal{
			{Type: ProposalAdd, Sender: Sender{Kind: SenderNewMemberProposal, Client: "bob/3", User: testUser(1)}, Client: Client{"bob/3", testUser(1)}}}}, 0, 3, 5},
		{"new member proposal of a stranger", Commit{Committer: alice, Proposals: []Proposal{
			{Type: ProposalAdd, Sender: Sender{Kind: SenderNewMemberProposal, Client: "zed/1", User: testUser(5)}, Client: Client{"zed/1", testUser(5)}}}}, ReasonIncomplete, 0, 0},
		{"new member proposal adding someone else", Commit{Committer: alice, Proposals: []Proposal{
			{Type: ProposalAdd, Sender: Sender{Kind: SenderNewMemberProposal, Client: "zed/1", User: testUser(5)}, Client: Client{"bob/3", testUser(1)}}}}, ReasonNotAllowed, 0, 0},
		{"member adds own device", Commit{Committer: bob1, Proposals: []Proposal{{Type: ProposalAdd, Sender: bob1, Client: Client{"bob/3", testUser(1)}}}}, 0, 3, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.Components()
			next, members, err := AuthorizeCommit(s, roster, tc.commit)
			after, _ := s.Components()
			for i := range before {
				if string(before[i].Data) != string(after[i].Data) {
					t.Fatal("AuthorizeCommit modified its input state")
				}
			}
			if tc.want != 0 {
				if ReasonOf(err) != tc.want {
					t.Fatalf("got %v, want %s", err, tc.want)
				}
				if !errors.Is(err, ErrRejected) {
					t.Fatalf("error does not wrap ErrRejected: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected rejection: %v", err)
			}
			if got := len(next.Participants()); got != tc.wantUsers {
				t.Errorf("participants = %d, want %d", got, tc.wantUsers)
			}
			if len(members) != tc.wantMembs {
				t.Errorf("members = %d, want %d", len(members), tc.wantMembs)
			}
		})
	}
}

func TestAuthorizeMessage(t *testing.T) {
	t.Parallel()
	s, roster := commitFixture(t)
	tests := []struct {
		name   string
		state  func() *State
		client ClientID
		want   Reason
	}{
		{"member sends", func() *State { return s }, "bob/1", 0},
		{"not a member", func() *State { return s }, "zed/1", ReasonUnknownUser},
		{"removed user's stale client", func() *State {
			n, err := Apply(s, Change{Actor: UserActor(testUser(0), ""), Op: &ParticipantUpdate{Removed: []URI{testUser(1)}}})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}, "bob/2", ReasonNotAllowed},
		{"banned user's stale client", func() *State {
			n, err := Apply(s, Change{Actor: UserActor(testUser(0), ""), Op: &ParticipantUpdate{RoleChanges: []UserRole{{testUser(1), RoleBanned}}}})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}, "bob/1", ReasonBanned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := AuthorizeMessage(tc.state(), roster, tc.client)
			if ReasonOf(err) != tc.want {
				t.Fatalf("got %v, want reason %v", err, tc.want)
			}
		})
	}
}

// TestApplyDeterministicAndPure applies the same random changes twice to
// shared inputs and checks identical results and untouched inputs.
func TestApplyDeterministicAndPure(t *testing.T) {
	t.Parallel()
	r := rng(42)
	for _, p := range []Preset{PresetPrivateGroup, PresetPublicRoom, PresetAnnouncementChannel, PresetDirectMessage} {
		s := newTestRoom(t, p)
		for i := range 150 {
			a, op := randomOp(&r, s)
			before, _ := s.Components()
			n1, err1 := Apply(s, Change{Actor: a, Op: op})
			n2, err2 := Apply(s, Change{Actor: a, Op: op})
			after, _ := s.Components()
			for j := range before {
				if string(before[j].Data) != string(after[j].Data) {
					t.Fatalf("%s step %d: Apply modified its input", p, i)
				}
			}
			if (err1 == nil) != (err2 == nil) || ReasonOf(err1) != ReasonOf(err2) {
				t.Fatalf("%s step %d: results differ: %v vs %v", p, i, err1, err2)
			}
			if err1 != nil {
				continue
			}
			if !n1.Equal(n2) {
				t.Fatalf("%s step %d: states differ", p, i)
			}
			if n1 == s {
				t.Fatalf("%s step %d: Apply returned its input", p, i)
			}
			s = n1
		}
	}
}

func TestNewRoomRejects(t *testing.T) {
	t.Parallel()
	good := RoomConfig{Room: "mimi://a.example/r/x", Creator: testUser(0), Peer: testUser(1), Servers: []Server{testServer(1)}}
	tests := []struct {
		name   string
		preset Preset
		edit   func(*RoomConfig)
	}{
		{"bad creator", PresetPrivateGroup, func(c *RoomConfig) { c.Creator = "alice" }},
		{"no servers", PresetPrivateGroup, func(c *RoomConfig) { c.Servers = nil }},
		{"bad room uri", PresetPublicRoom, func(c *RoomConfig) { c.Room = "room" }},
		{"hub candidate not a server", PresetPublicRoom, func(c *RoomConfig) { c.HubCandidates = []ServerID{testServer(3).ID} }},
		{"direct message with oneself", PresetDirectMessage, func(c *RoomConfig) { c.Peer = c.Creator }},
		{"unknown preset", Preset(9), func(*RoomConfig) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			if _, err := NewRoom(tc.preset, cfg); ReasonOf(err) != ReasonMalformed {
				t.Fatalf("got %v, want Malformed", err)
			}
		})
	}
}

func TestCheckRoster(t *testing.T) {
	t.Parallel()
	s, roster := commitFixture(t)
	single := s.clone()
	single.base.MultiDevice = false
	capped := s.clone()
	capped.base.MaxClients = u32(3)
	tests := []struct {
		name   string
		state  *State
		roster []Client
		want   Reason
	}{
		{"consistent", s, roster, 0},
		{"empty group", s, nil, 0},
		{"duplicate client", s, append(roster, roster[0]), ReasonMalformed},
		{"client of a stranger", s, append(roster, Client{"zed/1", testUser(5)}), ReasonUnknownUser},
		{"second device in a single-device room", single, roster, ReasonLimitExceeded},
		{"more clients than max_clients", capped, roster, ReasonLimitExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReasonOf(CheckRoster(tc.state, tc.roster)); got != tc.want {
				t.Fatalf("reason %v, want %v", got, tc.want)
			}
		})
	}
}

func singleDevice(s *State) BaseRoomPolicy {
	p := s.BasePolicy()
	p.MultiDevice = false
	return p
}
