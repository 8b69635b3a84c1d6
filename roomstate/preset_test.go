package roomstate

import "testing"

// TestPresetCapabilities pins the capability table of docs/roomstate.md
// (section 2): each row is written by hand from that table.
func TestPresetCapabilities(t *testing.T) {
	t.Parallel()
	type row struct {
		preset Preset
		role   RoleIndex
		has    []Capability
		hasNot []Capability
	}
	rows := []row{
		{PresetDirectMessage, RoleMember,
			[]Capability{CanAddOwnClient, CanRemoveOwnClient, CanSendMessage, CanChangeRoomName},
			[]Capability{CanAddParticipant, CanRemoveSelf, CanKick, CanBan, CanChangeRoomMembershipStyle}},
		{PresetPrivateGroup, RoleMember,
			[]Capability{CanAddParticipant, CanRemoveSelf, CanSendMessage, CanChangeRoomSubject, CanJoinIfPreauthorized},
			[]Capability{CanKick, CanBan, CanRemoveParticipant, CanChangeUserRole, CanDeleteOtherMessage}},
		{PresetPublicRoom, RoleMember,
			[]Capability{CanSendMessage, CanRemoveSelf, CanReceiveMessage},
			[]Capability{CanAddParticipant, CanChangeRoomName, CanKick}},
		{PresetAnnouncementChannel, RoleMember,
			[]Capability{CanReceiveMessage, CanReactToMessage, CanRemoveSelf},
			[]Capability{CanSendMessage, CanReplyToMessage, CanAddParticipant, CanChangeRoomName}},
		{PresetPublicRoom, RoleModerator,
			[]Capability{CanKick, CanBan, CanUnBan, CanRemoveParticipant, CanChangeUserRole, CanDeleteOtherMessage, CanSendMessage, CanChangeRoomName},
			[]Capability{CanChangeRoleDefinitions, CanChangeServers, CanChangeHubCandidates, CanChangeRoomMembershipStyle}},
		{PresetAnnouncementChannel, RoleAdmin,
			[]Capability{CanChangeRoleDefinitions, CanChangePreauthorizedUserList, CanChangeRoomMembershipStyle, CanChangeServers, CanChangeHubCandidates, CanSendMLSReinitProposal, CanBan},
			[]Capability{CanOpenJoin, CanChangeOwnRole}},
		{PresetPrivateGroup, RoleKnocking,
			[]Capability{CanRemoveSelf},
			[]Capability{CanSendMessage, CanReceiveMessage, CanAddOwnClient}},
		{PresetPublicRoom, RoleNone, nil, []Capability{CanOpenJoin, CanSendMessage}},
		{PresetPublicRoom, RoleBanned, nil, []Capability{CanSendMessage, CanReceiveMessage, CanAddOwnClient}},
	}
	for _, r := range rows {
		t.Run(r.preset.String()+"/"+roleName(t, r.preset, r.role), func(t *testing.T) {
			s := newTestRoom(t, r.preset)
			role, ok := s.Role(r.role)
			if !ok {
				t.Fatalf("role %d missing", r.role)
			}
			for _, c := range r.has {
				if !role.Has(c) {
					t.Errorf("lacks %s", c)
				}
			}
			for _, c := range r.hasNot {
				if role.Has(c) {
					t.Errorf("holds %s", c)
				}
			}
		})
	}
	// Transitions of the group presets (docs/roomstate.md, section 2).
	s := newTestRoom(t, PresetPublicRoom)
	mod, _ := s.Role(RoleModerator)
	admin, _ := s.Role(RoleAdmin)
	for _, tc := range []struct {
		role     Role
		from, to RoleIndex
		want     bool
	}{
		{mod, RoleMember, RoleBanned, true},
		{mod, RoleBanned, RoleMember, true},
		{mod, RoleKnocking, RoleMember, true},
		{mod, RoleMember, RoleModerator, false},
		{mod, RoleAdmin, RoleBanned, false},
		{admin, RoleMember, RoleAdmin, true},
		{admin, RoleAdmin, RoleNone, true},
		{admin, RoleBanned, RoleAdmin, false},
	} {
		if got := tc.role.CanMove(tc.from, tc.to); got != tc.want {
			t.Errorf("%s: %d -> %d = %v, want %v", tc.role.Name, tc.from, tc.to, got, tc.want)
		}
	}
	if a, _ := s.Role(RoleAdmin); a.MinParticipants != 1 {
		t.Errorf("admin minimum = %d, want 1", a.MinParticipants)
	}
	dm := newTestRoom(t, PresetDirectMessage)
	if p := dm.BasePolicy(); !p.FixedMembership || p.MaxUsers == nil || *p.MaxUsers != 2 {
		t.Errorf("direct message base policy = %+v", p)
	}
	for p, want := range map[Preset]JoinRuleKind{PresetPrivateGroup: JoinInvite, PresetPublicRoom: JoinOpen, PresetAnnouncementChannel: JoinOpen, PresetDirectMessage: JoinInvite} {
		if got := newTestRoom(t, p).JoinRule().Rule; got != want {
			t.Errorf("%s join rule = %s, want %s", p, got, want)
		}
	}
}

func roleName(t *testing.T, p Preset, r RoleIndex) string {
	role, ok := newTestRoom(t, p).Role(r)
	if !ok {
		return "missing"
	}
	return role.Name
}

// BenchmarkApply measures the copy-on-write cost of one change in a room
// with 10,000 participants (the figure docs/roomstate.md quotes).
func BenchmarkApply(b *testing.B) {
	s := newTestRoom(b, PresetPublicRoom)
	ps := make([]Participant, 0, 10000)
	ps = append(ps, s.participants...)
	for i := len(ps); i < 10000; i++ {
		ps = append(ps, Participant{User: testUser(1000 + i), Role: RoleMember})
	}
	s.participants = ps
	m := s.Metadata()
	m.Subject = "benchmark"
	change := Change{Actor: UserActor(testUser(0), ""), Op: &MetadataUpdate{Metadata: m}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(s, change); err != nil {
			b.Fatal(err)
		}
	}
}
