package roomstate

import (
	"bytes"
	"slices"
)

// RoleIndex names a role in the roles_list component. Index 0 means "not in
// the participant list" and index 1, when the role exists, is the role named
// "banned" (draft-ietf-mimi-room-policy-03, Sections 3 and 8.1.3).
type RoleIndex uint32

// The two reserved role indices.
const (
	RoleNone   RoleIndex = 0
	RoleBanned RoleIndex = 1
)

// BannedRoleName is the name role 1 must carry for canBan and canUnBan to
// work (room-policy Section 8.1.3).
const BannedRoleName = "banned"

// ServerID identifies a server: its Ed25519 public key, which is also its
// libp2p peer identity.
type ServerID [32]byte

// Server is one participating server of a room: its key and the provider
// domain whose users it serves (the domain part of their MIMI URIs). The
// domain lets a server act for its own users as an MLS external sender, for
// example to remove a deleted device (draft-ietf-mimi-protocol-06, Section
// 5.5).
type Server struct {
	ID     ServerID
	Domain string
}

// Participant is one entry of the participant list: a user and its single
// role (draft-ietf-mimi-protocol-06, Section 7.5, UserRolePair).
type Participant struct {
	User URI
	Role RoleIndex
}

// RichDescription is one room description in a given media type and
// language (protocol-06 Section 7.6).
type RichDescription struct {
	MediaType   string // empty means text/plain;charset=utf-8
	LanguageTag string
	Content     []byte
}

// RoomMetadata is the room_metadata component (protocol-06 Section 7.6).
// Rhizome's "topic" is the draft's room_subject.
type RoomMetadata struct {
	RoomURI      URI
	Name         string
	Descriptions []RichDescription
	Avatar       URI // an https URI resolving to an avatar image, or empty
	Subject      string
	Mood         string
}

// JoinRuleKind says how users who are not in the participant list can get
// in. The drafts leave invite and knock flows open (protocol-06 Section 1.1);
// this is Rhizome's own component (see [ComponentJoinRule]).
type JoinRuleKind uint8

// The join rules.
const (
	// JoinInvite: users enter only when a participant adds them, or through
	// a pre-authorization rule.
	JoinInvite JoinRuleKind = 0
	// JoinOpen: any user who is not banned may add itself with the join
	// rule's JoinRole.
	JoinOpen JoinRuleKind = 1
	// JoinKnock: any user who is not banned may add itself with the join
	// rule's KnockRole (a role without clients); a participant then
	// accepts (role change) or refuses (removal).
	JoinKnock JoinRuleKind = 2
)

var joinRuleNames = [...]string{JoinInvite: "invite", JoinOpen: "open", JoinKnock: "knock"}

// String returns "invite", "open" or "knock".
func (k JoinRuleKind) String() string {
	if int(k) < len(joinRuleNames) {
		return joinRuleNames[k]
	}
	return "joinrule(?)"
}

// JoinRule is the join_rule component.
type JoinRule struct {
	Rule      JoinRuleKind
	JoinRole  RoleIndex // role given to open self-joiners
	KnockRole RoleIndex // role given to knockers; its max active participants is 0
}

// BaseRoomPolicy is the base_room_policy component
// (draft-ietf-mimi-room-policy-03, Section 5).
type BaseRoomPolicy struct {
	// FixedMembership: nobody can be added after creation and users can
	// neither leave nor be removed (direct messages).
	FixedMembership bool
	// ParentDependent and ParentRoom are carried but not enforced: Rhizome
	// has no sub-rooms yet.
	ParentDependent bool
	ParentRoom      URI
	// MultiDevice: a user may have more than one client in the MLS group.
	MultiDevice bool
	// MaxClients and MaxUsers are hard limits when non-nil. MaxUsers counts
	// non-banned participants.
	MaxClients *uint32
	MaxUsers   *uint32
	// PseudonymsAllowed, PersistentRoom and Discoverable are carried for
	// clients; the reducer does not act on them.
	PseudonymsAllowed bool
	PersistentRoom    bool
	Discoverable      bool
	// PolicyComponentIDs lists the policy components in force, ascending.
	PolicyComponentIDs []ComponentID
}

// Claim kinds Rhizome understands in pre-authorization rules. The drafts
// leave claims open ("TODO refactor Claims", room-policy Section 4); both of
// ours are read from the user's MIMI URI, so they need no credential parsing.
const (
	// ClaimDomain matches when the user's URI domain equals the value.
	ClaimDomain = "mimi-domain"
	// ClaimUser matches when the user's URI equals the value.
	ClaimUser = "mimi-user"
)

// CredentialTypeBasic is the MLS basic credential type (RFC 9420, Section
// 5.3), under which Rhizome files its claims.
const CredentialTypeBasic uint16 = 1

// Claim is one condition of a pre-authorization rule (room-policy Section 4).
type Claim struct {
	CredentialType uint16
	ID             string
	Value          string
}

// PreAuthRule pre-authorizes every user matching all of Claims for Role.
// The first matching rule wins. Unlike the draft, which embeds a whole Role,
// the rule names a role index (see docs/roomstate.md).
type PreAuthRule struct {
	Claims []Claim
	Role   RoleIndex
}

// Matches reports whether user satisfies every claim of r. A rule with an
// unknown claim never matches; a rule without claims matches nobody (an
// empty claim set would pre-authorize the whole world, which is what the
// open join rule is for).
func (r PreAuthRule) Matches(user URI) bool {
	if len(r.Claims) == 0 {
		return false
	}
	for _, c := range r.Claims {
		if c.CredentialType != CredentialTypeBasic {
			return false
		}
		switch c.ID {
		case ClaimDomain:
			if user.Domain() != c.Value {
				return false
			}
		case ClaimUser:
			if string(user) != c.Value {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// State is the state of one room after the changes applied so far. A State
// is immutable once built: [Apply] returns a new State and never changes its
// input, so a *State can be shared between goroutines and kept as a snapshot
// (for example per epoch or per DAG branch).
//
// Copy cost: Apply deep-copies the whole state, O(participants + roles +
// rules + servers) time and memory per change. A room with 10,000
// participants costs well under a megabyte per copy; callers that keep many
// snapshots should keep the encoded components instead.
type State struct {
	participants  []Participant // the participant list, in list order
	roles         []Role        // ascending by Index, includes role 0
	metadata      RoomMetadata
	preauth       []PreAuthRule // in rule order
	base          BaseRoomPolicy
	joinRule      JoinRule
	servers       []Server   // ascending by ID
	hubCandidates []ServerID // ordered, a subset of servers
}

// clone returns a deep copy of s.
func (s *State) clone() *State {
	c := &State{
		participants:  slices.Clone(s.participants),
		roles:         make([]Role, len(s.roles)),
		metadata:      s.metadata.clone(),
		preauth:       make([]PreAuthRule, len(s.preauth)),
		base:          s.base.clone(),
		joinRule:      s.joinRule,
		servers:       slices.Clone(s.servers),
		hubCandidates: slices.Clone(s.hubCandidates),
	}
	for i, r := range s.roles {
		c.roles[i] = r.clone()
	}
	for i, r := range s.preauth {
		c.preauth[i] = PreAuthRule{Claims: slices.Clone(r.Claims), Role: r.Role}
	}
	return c
}

func (m RoomMetadata) clone() RoomMetadata {
	c := m
	c.Descriptions = make([]RichDescription, len(m.Descriptions))
	for i, d := range m.Descriptions {
		c.Descriptions[i] = RichDescription{MediaType: d.MediaType, LanguageTag: d.LanguageTag, Content: bytes.Clone(d.Content)}
	}
	return c
}

func (p BaseRoomPolicy) clone() BaseRoomPolicy {
	c := p
	if p.MaxClients != nil {
		v := *p.MaxClients
		c.MaxClients = &v
	}
	if p.MaxUsers != nil {
		v := *p.MaxUsers
		c.MaxUsers = &v
	}
	c.PolicyComponentIDs = slices.Clone(p.PolicyComponentIDs)
	return c
}

// Participants returns a copy of the participant list, in list order. It
// includes banned users (role 1) and inactive participants.
func (s *State) Participants() []Participant { return slices.Clone(s.participants) }

// RoleOf returns the role of user: RoleNone if the user is not listed.
func (s *State) RoleOf(user URI) RoleIndex {
	if i := s.indexOf(user); i >= 0 {
		return s.participants[i].Role
	}
	return RoleNone
}

// indexOf returns the position of user in the participant list, or -1.
// Linear: participant lists are at most a few thousand entries, and a map
// would have to be rebuilt on every copy.
func (s *State) indexOf(user URI) int {
	for i, p := range s.participants {
		if p.User == user {
			return i
		}
	}
	return -1
}

// Roles returns a copy of the role definitions, ascending by index.
func (s *State) Roles() []Role {
	out := make([]Role, len(s.roles))
	for i, r := range s.roles {
		out[i] = r.clone()
	}
	return out
}

// Role returns a copy of the role with index i.
func (s *State) Role(i RoleIndex) (Role, bool) {
	r := s.role(i)
	if r == nil {
		return Role{}, false
	}
	return r.clone(), true
}

// role returns the role with index i, or nil. Callers must not modify it.
func (s *State) role(i RoleIndex) *Role {
	j, ok := slices.BinarySearchFunc(s.roles, i, func(r Role, i RoleIndex) int {
		return cmpUint(uint32(r.Index), uint32(i))
	})
	if !ok {
		return nil
	}
	return &s.roles[j]
}

// RoleByName returns the index of the role named name.
func (s *State) RoleByName(name string) (RoleIndex, bool) {
	for _, r := range s.roles {
		if r.Name == name {
			return r.Index, true
		}
	}
	return 0, false
}

// Has reports whether user's current role holds capability c. Users who are
// not listed hold the capabilities of role 0.
func (s *State) Has(user URI, c Capability) bool {
	r := s.role(s.RoleOf(user))
	return r != nil && r.Has(c)
}

// Metadata returns a copy of the room metadata.
func (s *State) Metadata() RoomMetadata { return s.metadata.clone() }

// PreAuth returns a copy of the pre-authorization rules, in order.
func (s *State) PreAuth() []PreAuthRule {
	out := make([]PreAuthRule, len(s.preauth))
	for i, r := range s.preauth {
		out[i] = PreAuthRule{Claims: slices.Clone(r.Claims), Role: r.Role}
	}
	return out
}

// PreAuthRole returns the role of the first pre-authorization rule user
// matches (room-policy Section 4).
func (s *State) PreAuthRole(user URI) (RoleIndex, bool) {
	for _, r := range s.preauth {
		if r.Matches(user) {
			return r.Role, true
		}
	}
	return 0, false
}

// BasePolicy returns a copy of the base room policy.
func (s *State) BasePolicy() BaseRoomPolicy { return s.base.clone() }

// JoinRule returns the join rule.
func (s *State) JoinRule() JoinRule { return s.joinRule }

// Servers returns a copy of the participating servers, ascending by ID.
func (s *State) Servers() []Server { return slices.Clone(s.servers) }

// Server returns the participating server with the given ID.
func (s *State) Server(id ServerID) (Server, bool) {
	i, ok := slices.BinarySearchFunc(s.servers, id, func(sv Server, id ServerID) int {
		return bytes.Compare(sv.ID[:], id[:])
	})
	if !ok {
		return Server{}, false
	}
	return s.servers[i], true
}

// HubCandidates returns a copy of the ordered hub-candidate list. An empty
// list means the consensus layer's default order applies.
func (s *State) HubCandidates() []ServerID { return slices.Clone(s.hubCandidates) }

// Equal reports whether s and t hold the same room state, field by field
// (a nil and an empty list are equal). Two states are Equal exactly when
// their [State.Components] encodings are byte-wise equal (tested).
func (s *State) Equal(t *State) bool {
	if s == nil || t == nil {
		return s == t
	}
	return slices.Equal(s.participants, t.participants) &&
		slices.EqualFunc(s.roles, t.roles, Role.equal) &&
		s.metadata.equal(t.metadata) &&
		slices.EqualFunc(s.preauth, t.preauth, func(a, b PreAuthRule) bool {
			return a.Role == b.Role && slices.Equal(a.Claims, b.Claims)
		}) &&
		s.base.equal(t.base) &&
		s.joinRule == t.joinRule &&
		slices.Equal(s.servers, t.servers) &&
		slices.Equal(s.hubCandidates, t.hubCandidates)
}

func (m RoomMetadata) equal(o RoomMetadata) bool {
	return m.RoomURI == o.RoomURI && m.Name == o.Name && m.Avatar == o.Avatar &&
		m.Subject == o.Subject && m.Mood == o.Mood &&
		slices.EqualFunc(m.Descriptions, o.Descriptions, func(a, b RichDescription) bool {
			return a.MediaType == b.MediaType && a.LanguageTag == b.LanguageTag && bytes.Equal(a.Content, b.Content)
		})
}

func (p BaseRoomPolicy) equal(o BaseRoomPolicy) bool {
	return p.FixedMembership == o.FixedMembership && p.ParentDependent == o.ParentDependent &&
		p.ParentRoom == o.ParentRoom && p.MultiDevice == o.MultiDevice &&
		optEqual(p.MaxClients, o.MaxClients) && optEqual(p.MaxUsers, o.MaxUsers) &&
		p.PseudonymsAllowed == o.PseudonymsAllowed && p.PersistentRoom == o.PersistentRoom &&
		p.Discoverable == o.Discoverable && slices.Equal(p.PolicyComponentIDs, o.PolicyComponentIDs)
}

func optEqual(a, b *uint32) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func cmpUint(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
