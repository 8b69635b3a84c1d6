package roomstate

import (
	"fmt"
	"slices"
)

// Preset is a ready-made room policy for a common kind of room.
type Preset uint8

// The presets. Every preset uses the same role indices, so tools and tests
// can name roles uniformly: 0 no_role, 1 banned, 2 member, 3 moderator,
// 4 admin, 5 knocking (the direct message has only 0, 1 and 2).
const (
	// PresetDirectMessage: a fixed-membership room of exactly two users
	// (room-policy Section 5); nobody can be added, leave or be removed.
	PresetDirectMessage Preset = iota + 1
	// PresetPrivateGroup: invite-only; members may invite, moderators
	// moderate, admins govern.
	PresetPrivateGroup
	// PresetPublicRoom: anyone not banned may join as a member.
	PresetPublicRoom
	// PresetAnnouncementChannel: anyone may join and read; only
	// moderators and admins may send.
	PresetAnnouncementChannel
)

// The role indices the presets use.
const (
	RoleMember    RoleIndex = 2
	RoleModerator RoleIndex = 3
	RoleAdmin     RoleIndex = 4
	RoleKnocking  RoleIndex = 5
)

var presetNames = [...]string{
	PresetDirectMessage:       "direct-message",
	PresetPrivateGroup:        "private-group",
	PresetPublicRoom:          "public-room",
	PresetAnnouncementChannel: "announcement-channel",
}

// String returns the preset's name, e.g. "private-group".
func (p Preset) String() string {
	if int(p) < len(presetNames) && presetNames[p] != "" {
		return presetNames[p]
	}
	return fmt.Sprintf("Preset(%d)", uint8(p))
}

// ParsePreset returns the preset named s.
func ParsePreset(s string) (Preset, bool) {
	for i, n := range presetNames {
		if n != "" && n == s {
			return Preset(i), true
		}
	}
	return 0, false
}

// RoomConfig describes a room to create.
type RoomConfig struct {
	Room    URI // the room's MIMI URI, e.g. mimi://example.com/r/club
	Name    string
	Creator URI // becomes admin (member in a direct message)
	Peer    URI // the other user of a direct message; unused otherwise
	Servers []Server
	// HubCandidates is the initial hub-candidate order; empty means the
	// consensus layer's default order.
	HubCandidates []ServerID
}

// NewRoom returns the initial state of a room created from preset p. Room
// creation is local to the creating server (protocol-06 Section 3.1); this
// state goes into the room's create event and the MLS group's first
// GroupContext.
func NewRoom(p Preset, cfg RoomConfig) (*State, error) {
	if !ValidUserURI(cfg.Creator) {
		return nil, reject(ReasonMalformed, "creator %q is not a MIMI user URI", cfg.Creator)
	}
	s := &State{
		metadata: RoomMetadata{RoomURI: cfg.Room, Name: cfg.Name},
		base: BaseRoomPolicy{
			MultiDevice:        true,
			PersistentRoom:     true,
			PolicyComponentIDs: []ComponentID{ComponentRolesList, ComponentPreAuthList, ComponentJoinRule},
		},
		joinRule:      JoinRule{Rule: JoinInvite, JoinRole: RoleMember, KnockRole: RoleKnocking},
		servers:       slices.Clone(cfg.Servers),
		hubCandidates: slices.Clone(cfg.HubCandidates),
	}
	slices.SortFunc(s.servers, func(a, b Server) int { return compareIDs(a.ID, b.ID) })
	switch p {
	case PresetDirectMessage:
		if !ValidUserURI(cfg.Peer) || cfg.Peer == cfg.Creator {
			return nil, reject(ReasonMalformed, "direct message needs a second user, got %q", cfg.Peer)
		}
		two := uint32(2)
		s.roles = directMessageRoles()
		s.base.FixedMembership = true
		s.base.MaxUsers = &two
		s.joinRule.KnockRole = RoleNone
		s.participants = []Participant{{cfg.Creator, RoleMember}, {cfg.Peer, RoleMember}}
	case PresetPrivateGroup, PresetPublicRoom, PresetAnnouncementChannel:
		s.roles = groupRoles(p)
		s.participants = []Participant{{cfg.Creator, RoleAdmin}}
		if p != PresetPrivateGroup {
			s.joinRule.Rule = JoinOpen
			s.base.Discoverable = true
		}
	default:
		return nil, reject(ReasonMalformed, "unknown preset %d", p)
	}
	if err := s.validate(true); err != nil {
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "room configuration", Err: err}
	}
	return s, nil
}

func compareIDs(a, b ServerID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

func u32(v uint32) *uint32 { return &v }

// caps returns the union of the given capability lists, ascending.
func caps(lists ...[]Capability) []Capability {
	var out []Capability
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var (
	ownClientCaps = []Capability{CanAddOwnClient, CanRemoveOwnClient}
	readCaps      = []Capability{
		CanReceiveMessage, CanCopyMessage, CanReportAbuse, CanReactToMessage, CanEditReaction,
		CanDeleteOwnReaction, CanDownloadImage, CanDownloadAudio, CanDownloadVideo,
		CanDownloadAttachment, CanFollowLink, CanCopyLink,
	}
	writeCaps = []Capability{
		CanSendMessage, CanReplyToMessage, CanEditOwnMessage, CanDeleteOwnMessage, CanStartTopic,
		CanReplyInTopic, CanEditOwnTopic, CanUploadImage, CanUploadAudio, CanUploadVideo,
		CanUploadAttachment, CanSendLink, CanSendLinkPreview,
	}
	metadataCaps = []Capability{
		CanChangeRoomName, CanChangeRoomDescription, CanChangeRoomAvatar, CanChangeRoomSubject, CanChangeRoomMood,
	}
	moderationCaps = []Capability{
		CanRemoveParticipant, CanKick, CanBan, CanUnBan, CanChangeUserRole, CanAddParticipant,
		CanDeleteOtherMessage, CanDeleteOtherReaction, CanEditOtherTopic,
	}
	governanceCaps = []Capability{
		CanChangeRoleDefinitions, CanChangePreauthorizedUserList, CanChangeRoomMembershipStyle,
		CanChangeServers, CanChangeHubCandidates, CanSendMLSReinitProposal, CanDestroyRoom,
	}
)

func reservedRoles() []Role {
	return []Role{
		{Index: RoleNone, Name: "no_role", MaxActive: u32(0)},
		{Index: RoleBanned, Name: BannedRoleName, MaxActive: u32(0)},
	}
}

func directMessageRoles() []Role {
	return append(reservedRoles(), Role{
		Index: RoleMember, Name: "member",
		Capabilities:    caps(ownClientCaps, readCaps, writeCaps, metadataCaps),
		MaxParticipants: u32(2),
	})
}

func tr(from RoleIndex, to ...RoleIndex) RoleChangeTargets {
	return RoleChangeTargets{From: from, To: to}
}

// groupRoles returns the roles of the private-group, public-room and
// announcement-channel presets. They differ only in what members may do.
func groupRoles(p Preset) []Role {
	member := Role{
		Index: RoleMember, Name: "member",
		Transitions: []RoleChangeTargets{tr(RoleMember, RoleNone)},
	}
	switch p {
	case PresetPrivateGroup:
		// Members of a private group are trusted: they invite and edit the
		// room's metadata (room-policy Appendix A.1, cooperative room).
		member.Capabilities = caps(ownClientCaps, readCaps, writeCaps, metadataCaps,
			[]Capability{CanAddParticipant, CanRemoveSelf, CanJoinIfPreauthorized})
		member.Transitions = []RoleChangeTargets{tr(RoleNone, RoleMember), tr(RoleMember, RoleNone)}
	case PresetPublicRoom:
		member.Capabilities = caps(ownClientCaps, readCaps, writeCaps, []Capability{CanRemoveSelf, CanJoinIfPreauthorized})
	case PresetAnnouncementChannel:
		member.Description = "reader"
		member.Capabilities = caps(ownClientCaps, readCaps, []Capability{CanRemoveSelf, CanJoinIfPreauthorized})
	}
	moderator := Role{
		Index: RoleModerator, Name: "moderator",
		Capabilities: caps(ownClientCaps, readCaps, writeCaps, metadataCaps, moderationCaps,
			[]Capability{CanRemoveSelf, CanJoinIfPreauthorized}),
		Transitions: []RoleChangeTargets{
			tr(RoleNone, RoleBanned, RoleMember),
			tr(RoleBanned, RoleNone, RoleMember),
			tr(RoleMember, RoleNone, RoleBanned),
			tr(RoleModerator, RoleNone),
			tr(RoleKnocking, RoleNone, RoleMember),
		},
	}
	admin := Role{
		Index: RoleAdmin, Name: "admin",
		Capabilities: caps(ownClientCaps, readCaps, writeCaps, metadataCaps, moderationCaps,
			governanceCaps, []Capability{CanRemoveSelf}),
		// A room always keeps an admin.
		MinParticipants: 1,
		Transitions: []RoleChangeTargets{
			tr(RoleNone, RoleBanned, RoleMember, RoleModerator, RoleAdmin),
			tr(RoleBanned, RoleNone, RoleMember, RoleModerator),
			tr(RoleMember, RoleNone, RoleBanned, RoleModerator, RoleAdmin),
			tr(RoleModerator, RoleNone, RoleBanned, RoleMember, RoleAdmin),
			tr(RoleAdmin, RoleNone, RoleBanned, RoleMember, RoleModerator),
			tr(RoleKnocking, RoleNone, RoleBanned, RoleMember),
		},
	}
	knocking := Role{
		Index: RoleKnocking, Name: "knocking", Description: "asked to join",
		Capabilities: []Capability{CanRemoveSelf},
		MaxActive:    u32(0),
		Transitions:  []RoleChangeTargets{tr(RoleKnocking, RoleNone)},
	}
	return append(reservedRoles(), member, moderator, admin, knocking)
}
