package roomstate

// ActorKind says whether a change comes from a user (through one of its
// clients) or from a server acting as an MLS external sender.
type ActorKind uint8

// The actor kinds.
const (
	ActorUser   ActorKind = 1
	ActorServer ActorKind = 2
)

// Actor names who asks for a change. Authorization is decided inside
// [Apply] from the actor's role (users) or server entry (servers).
type Actor struct {
	Kind ActorKind
	// User is the acting user's MIMI URI (ActorUser).
	User URI
	// Client is the acting client's identifier, if the change arrived in an
	// MLS message from a client; informational for Apply.
	Client ClientID
	// Server is the acting server (ActorServer), or the origin server that
	// relayed a user's change (informational).
	Server ServerID
}

// UserActor returns an Actor for user acting through client.
func UserActor(user URI, client ClientID) Actor {
	return Actor{Kind: ActorUser, User: user, Client: client}
}

// ServerActor returns an Actor for server id acting as external sender.
func ServerActor(id ServerID) Actor { return Actor{Kind: ActorServer, Server: id} }

// Change is one room-state change: what an AppDataUpdate proposal carries,
// plus who proposed it.
type Change struct {
	Actor Actor
	Op    Op
}

// Op is the content of a change: one update of one component. The concrete
// types are *ParticipantUpdate, *MetadataUpdate, *RolesUpdate,
// *PreAuthUpdate, *BasePolicyUpdate, *JoinRuleUpdate and *ServersUpdate.
type Op interface {
	// Component returns the ID of the component the op updates.
	Component() ComponentID
	isOp()
}

// UserRole pairs a user with a role, as in the participant list.
type UserRole struct {
	User URI
	Role RoleIndex
}

// ParticipantUpdate changes the participant list
// (draft-ietf-mimi-protocol-06, Section 7.5, ParticipantListUpdate). The
// operations apply in the draft's order: role changes, then removals, then
// additions, each authorized on its own against the state left by the ones
// before. A user may appear at most once in the whole update.
//
// What each operation means depends on who asks:
//   - RoleChanges to RoleBanned is a ban (canBan), from RoleBanned an unban
//     (canUnBan), one's own role a canChangeOwnRole (pre-authorization),
//     anything else canChangeUserRole; accepting a knock is a role change
//     from the knock role.
//   - Removed of oneself is leaving (canRemoveSelf), of another user
//     removal (canRemoveParticipant), and refusing a knock.
//   - Added of oneself is a self-join (open or knock join rule,
//     canOpenJoin, or pre-authorization); of another user an invite
//     (canAddParticipant); with role RoleBanned a ban of a non-participant.
type ParticipantUpdate struct {
	RoleChanges []UserRole
	Removed     []URI
	Added       []UserRole
}

// MetadataUpdate replaces the room metadata (protocol-06 Section 7.6). Each
// changed field needs its capability (room-policy Section 8.2); the room URI
// never changes.
type MetadataUpdate struct{ Metadata RoomMetadata }

// RolesUpdate replaces the role definitions (room-policy Section 3). It
// needs canChangeRoleDefinitions.
type RolesUpdate struct{ Roles []Role }

// PreAuthUpdate replaces the pre-authorization rules (room-policy Section
// 4). It needs canChangePreauthorizedUserList.
type PreAuthUpdate struct{ Rules []PreAuthRule }

// BasePolicyUpdate replaces the base room policy (room-policy Section 5). It
// needs canChangeRoomMembershipStyle.
type BasePolicyUpdate struct{ Policy BaseRoomPolicy }

// JoinRuleUpdate replaces the join rule. It needs
// canChangeRoomMembershipStyle.
type JoinRuleUpdate struct{ JoinRule JoinRule }

// ServersUpdate changes the participating servers and the hub candidates.
// Removals apply first (a removed server also leaves the hub-candidate
// list), then additions, then, if HubCandidates is non-nil, the new
// candidate list replaces the old one. Adding or removing servers needs
// canChangeServers, except that a server may remove itself; replacing the
// candidates needs canChangeHubCandidates.
type ServersUpdate struct {
	Removed       []ServerID
	Added         []Server
	HubCandidates *[]ServerID
}

// Component returns ComponentParticipantList.
func (*ParticipantUpdate) Component() ComponentID { return ComponentParticipantList }

// Component returns ComponentRoomMetadata.
func (*MetadataUpdate) Component() ComponentID { return ComponentRoomMetadata }

// Component returns ComponentRolesList.
func (*RolesUpdate) Component() ComponentID { return ComponentRolesList }

// Component returns ComponentPreAuthList.
func (*PreAuthUpdate) Component() ComponentID { return ComponentPreAuthList }

// Component returns ComponentBaseRoomPolicy.
func (*BasePolicyUpdate) Component() ComponentID { return ComponentBaseRoomPolicy }

// Component returns ComponentJoinRule.
func (*JoinRuleUpdate) Component() ComponentID { return ComponentJoinRule }

// Component returns ComponentServers.
func (*ServersUpdate) Component() ComponentID { return ComponentServers }

func (*ParticipantUpdate) isOp() {}
func (*MetadataUpdate) isOp()    {}
func (*RolesUpdate) isOp()       {}
func (*PreAuthUpdate) isOp()     {}
func (*BasePolicyUpdate) isOp()  {}
func (*JoinRuleUpdate) isOp()    {}
func (*ServersUpdate) isOp()     {}
