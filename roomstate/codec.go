package roomstate

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// ComponentID identifies an MLS application component in the
// app_data_dictionary GroupContext extension (draft-ietf-mls-extensions,
// "Component IDs": uint32 ComponentID, a four-byte value; earlier drafts and
// some implementations used uint16).
type ComponentID uint32

// The components a room's state is made of. The MIMI IDs are the drafts'
// suggested values (draft-ietf-mimi-protocol-06 Section 10,
// draft-ietf-mimi-room-policy-03 Section 10.1); the drafts may still change
// them. The 0xF0xx IDs are Rhizome's own components for what the drafts do
// not define (join rules, the server set and hub candidates).
const (
	ComponentParticipantList ComponentID = 0x0022 // participant_list
	ComponentRoomMetadata    ComponentID = 0x0023 // room_metadata
	ComponentRolesList       ComponentID = 0x0025 // roles_list
	ComponentPreAuthList     ComponentID = 0x0026 // preauth_list
	ComponentBaseRoomPolicy  ComponentID = 0x0027 // base_room_policy
	ComponentJoinRule        ComponentID = 0xF000 // Rhizome join_rule
	ComponentServers         ComponentID = 0xF001 // Rhizome servers
)

// stateComponents lists the components of a State in canonical
// (ascending) order.
var stateComponents = []ComponentID{
	ComponentParticipantList,
	ComponentRoomMetadata,
	ComponentRolesList,
	ComponentPreAuthList,
	ComponentBaseRoomPolicy,
	ComponentJoinRule,
	ComponentServers,
}

// ComponentData is one entry of the app_data_dictionary extension
// (draft-ietf-mls-extensions Section 4.6: struct { ComponentID
// component_id; opaque data<V>; } ComponentData).
type ComponentData struct {
	ID   ComponentID
	Data []byte
}

// decodeErr builds the typed error every Parse function returns: a
// *tlspl.DecodeError wrapping tlspl.ErrMalformed, with the reason.
func decodeErr(what string, err error) error {
	return &tlspl.DecodeError{What: what, Err: fmt.Errorf("%w: %v", tlspl.ErrMalformed, err)}
}

// ---- participant_list (protocol-06 Section 7.5) ----

// struct { opaque user<V>; uint32 role_index; } UserRolePair;
// struct { UserRolePair participants<V>; } ParticipantListData;

// MarshalParticipantList encodes ParticipantListData.
func MarshalParticipantList(ps []Participant) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, p := range ps {
				tlspl.AddOpaque(b, []byte(p.User))
				b.AddUint32(uint32(p.Role))
			}
		})
	})
}

// ParseParticipantList strictly decodes ParticipantListData: valid user
// URIs, no user twice, no role 0 (role 0 means "not listed").
func ParseParticipantList(data []byte) ([]Participant, error) {
	const what = "roomstate.ParticipantListData"
	var ps []Participant
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
			var u []byte
			var r uint32
			if !tlspl.ReadOpaque(s, &u) || !s.ReadUint32(&r) {
				return false
			}
			ps = append(ps, Participant{User: URI(u), Role: RoleIndex(r)})
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	seen := make(map[URI]bool, len(ps))
	for _, p := range ps {
		if !ValidUserURI(p.User) || seen[p.User] || p.Role == RoleNone {
			return nil, decodeErr(what, fmt.Errorf("participant %q invalid, duplicate or role 0", p.User))
		}
		seen[p.User] = true
	}
	return ps, nil
}

// ---- room_metadata (protocol-06 Section 7.6) ----

// MarshalRoomMetadata encodes RoomMetaData.
func MarshalRoomMetadata(m RoomMetadata) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		tlspl.AddOpaque(b, []byte(m.RoomURI))
		tlspl.AddOpaque(b, []byte(m.Name))
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, d := range m.Descriptions {
				tlspl.AddOpaque(b, []byte(d.MediaType))
				tlspl.AddOpaque(b, []byte(d.LanguageTag))
				tlspl.AddOpaque(b, d.Content)
			}
		})
		tlspl.AddOpaque(b, []byte(m.Avatar))
		tlspl.AddOpaque(b, []byte(m.Subject))
		tlspl.AddOpaque(b, []byte(m.Mood))
	})
}

// ParseRoomMetadata strictly decodes RoomMetaData. Text fields must be
// UTF-8 without control characters and the room URI a MIMI URI.
func ParseRoomMetadata(data []byte) (RoomMetadata, error) {
	const what = "roomstate.RoomMetaData"
	var m RoomMetadata
	var room, name, avatar, subject, mood []byte
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return tlspl.ReadOpaque(s, &room) && tlspl.ReadOpaque(s, &name) &&
			tlspl.ReadList(s, func(s *cryptobyte.String) bool {
				var mt, lt, c []byte
				if !tlspl.ReadOpaque(s, &mt) || !tlspl.ReadOpaque(s, &lt) || !tlspl.ReadOpaque(s, &c) {
					return false
				}
				m.Descriptions = append(m.Descriptions, RichDescription{MediaType: string(mt), LanguageTag: string(lt), Content: c})
				return true
			}) &&
			tlspl.ReadOpaque(s, &avatar) && tlspl.ReadOpaque(s, &subject) && tlspl.ReadOpaque(s, &mood)
	})
	if err != nil {
		return RoomMetadata{}, err
	}
	m.RoomURI, m.Name, m.Avatar, m.Subject, m.Mood = URI(room), string(name), URI(avatar), string(subject), string(mood)
	if err := validateMetadata(m); err != nil {
		return RoomMetadata{}, decodeErr(what, err)
	}
	return m, nil
}

// ---- roles_list (room-policy-03 Section 3) ----

// MarshalRoles encodes RoleData.
func MarshalRoles(roles []Role) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, r := range roles {
				b.AddUint32(uint32(r.Index))
				tlspl.AddOpaque(b, []byte(r.Name))
				tlspl.AddOpaque(b, []byte(r.Description))
				tlspl.AddVector(b, func(b *cryptobyte.Builder) {
					for _, c := range r.Capabilities {
						b.AddUint16(uint16(c))
					}
				})
				b.AddUint32(r.MinParticipants)
				addOptUint32(b, r.MaxParticipants)
				b.AddUint32(r.MinActive)
				addOptUint32(b, r.MaxActive)
				tlspl.AddVector(b, func(b *cryptobyte.Builder) {
					for _, t := range r.Transitions {
						b.AddUint32(uint32(t.From))
						tlspl.AddVector(b, func(b *cryptobyte.Builder) {
							for _, to := range t.To {
								b.AddUint32(uint32(to))
							}
						})
					}
				})
			}
		})
	})
}

// ParseRoles strictly decodes RoleData and checks it (see validateRoles):
// canonical order, role 0 present, role 1 named "banned", known targets.
func ParseRoles(data []byte) ([]Role, error) {
	const what = "roomstate.RoleData"
	var roles []Role
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
			var r Role
			var idx uint32
			var name, desc []byte
			if !s.ReadUint32(&idx) || !tlspl.ReadOpaque(s, &name) || !tlspl.ReadOpaque(s, &desc) {
				return false
			}
			if !tlspl.ReadList(s, func(s *cryptobyte.String) bool {
				var c uint16
				if !s.ReadUint16(&c) {
					return false
				}
				r.Capabilities = append(r.Capabilities, Capability(c))
				return true
			}) {
				return false
			}
			if !s.ReadUint32(&r.MinParticipants) || !readOptUint32(s, &r.MaxParticipants) ||
				!s.ReadUint32(&r.MinActive) || !readOptUint32(s, &r.MaxActive) {
				return false
			}
			if !tlspl.ReadList(s, func(s *cryptobyte.String) bool {
				var t RoleChangeTargets
				var from uint32
				if !s.ReadUint32(&from) {
					return false
				}
				t.From = RoleIndex(from)
				if !tlspl.ReadList(s, func(s *cryptobyte.String) bool {
					var to uint32
					if !s.ReadUint32(&to) {
						return false
					}
					t.To = append(t.To, RoleIndex(to))
					return true
				}) {
					return false
				}
				r.Transitions = append(r.Transitions, t)
				return true
			}) {
				return false
			}
			r.Index, r.Name, r.Description = RoleIndex(idx), string(name), string(desc)
			roles = append(roles, r)
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	if err := validateRoles(roles); err != nil {
		return nil, decodeErr(what, err)
	}
	return roles, nil
}

func addOptUint32(b *cryptobyte.Builder, v *uint32) {
	tlspl.AddOptional(b, v != nil)
	if v != nil {
		b.AddUint32(*v)
	}
}

func readOptUint32(s *cryptobyte.String, out **uint32) bool {
	var present bool
	if !tlspl.ReadOptional(s, &present) {
		return false
	}
	if !present {
		*out = nil
		return true
	}
	var v uint32
	if !s.ReadUint32(&v) {
		return false
	}
	*out = &v
	return true
}

// ---- preauth_list (room-policy-03 Section 4, Rhizome variant) ----

// struct { uint16 credential_type; opaque id<V>; } ClaimId;
// struct { ClaimId claim_id; opaque claim_value<V>; } Claim;
// struct { Claim claimset<V>; uint32 target_role_index; } PreAuthRoleEntry;
// struct { PreAuthRoleEntry preauthorized_entries<V>; } PreAuthData;
//
// The draft embeds a whole Role in PreAuthRoleEntry; Rhizome names the role
// by index so that a role is defined once (see docs/roomstate.md).

// MarshalPreAuth encodes PreAuthData.
func MarshalPreAuth(rules []PreAuthRule) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, r := range rules {
				tlspl.AddVector(b, func(b *cryptobyte.Builder) {
					for _, c := range r.Claims {
						b.AddUint16(c.CredentialType)
						tlspl.AddOpaque(b, []byte(c.ID))
						tlspl.AddOpaque(b, []byte(c.Value))
					}
				})
				b.AddUint32(uint32(r.Role))
			}
		})
	})
}

// ParsePreAuth strictly decodes PreAuthData. Every rule needs at least one
// claim and a role other than 0 and 1.
func ParsePreAuth(data []byte) ([]PreAuthRule, error) {
	const what = "roomstate.PreAuthData"
	var rules []PreAuthRule
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
			var r PreAuthRule
			if !tlspl.ReadList(s, func(s *cryptobyte.String) bool {
				var c Claim
				var id, v []byte
				if !s.ReadUint16(&c.CredentialType) || !tlspl.ReadOpaque(s, &id) || !tlspl.ReadOpaque(s, &v) {
					return false
				}
				c.ID, c.Value = string(id), string(v)
				r.Claims = append(r.Claims, c)
				return true
			}) {
				return false
			}
			var role uint32
			if !s.ReadUint32(&role) {
				return false
			}
			r.Role = RoleIndex(role)
			rules = append(rules, r)
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	if err := validatePreAuth(rules); err != nil {
		return nil, decodeErr(what, err)
	}
	return rules, nil
}

// ---- base_room_policy (room-policy-03 Section 5) ----

// MarshalBasePolicy encodes BaseRoomPolicy. parent_room is a single Uri,
// empty when the room has no parent (the draft's "Uri parent_room<V>" with
// "otherwise the field is zero-length").
func MarshalBasePolicy(p BaseRoomPolicy) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		tlspl.AddBool(b, p.FixedMembership)
		tlspl.AddBool(b, p.ParentDependent)
		tlspl.AddOpaque(b, []byte(p.ParentRoom))
		tlspl.AddBool(b, p.MultiDevice)
		addOptUint32(b, p.MaxClients)
		addOptUint32(b, p.MaxUsers)
		tlspl.AddBool(b, p.PseudonymsAllowed)
		tlspl.AddBool(b, p.PersistentRoom)
		tlspl.AddBool(b, p.Discoverable)
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, id := range p.PolicyComponentIDs {
				b.AddUint32(uint32(id))
			}
		})
	})
}

// ParseBasePolicy strictly decodes BaseRoomPolicy.
func ParseBasePolicy(data []byte) (BaseRoomPolicy, error) {
	const what = "roomstate.BaseRoomPolicy"
	var p BaseRoomPolicy
	var parent []byte
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return tlspl.ReadBool(s, &p.FixedMembership) && tlspl.ReadBool(s, &p.ParentDependent) &&
			tlspl.ReadOpaque(s, &parent) && tlspl.ReadBool(s, &p.MultiDevice) &&
			readOptUint32(s, &p.MaxClients) && readOptUint32(s, &p.MaxUsers) &&
			tlspl.ReadBool(s, &p.PseudonymsAllowed) && tlspl.ReadBool(s, &p.PersistentRoom) &&
			tlspl.ReadBool(s, &p.Discoverable) &&
			tlspl.ReadList(s, func(s *cryptobyte.String) bool {
				var id uint32
				if !s.ReadUint32(&id) {
					return false
				}
				p.PolicyComponentIDs = append(p.PolicyComponentIDs, ComponentID(id))
				return true
			})
	})
	if err != nil {
		return BaseRoomPolicy{}, err
	}
	p.ParentRoom = URI(parent)
	if err := validateBasePolicy(p); err != nil {
		return BaseRoomPolicy{}, decodeErr(what, err)
	}
	return p, nil
}

// ---- join_rule (Rhizome, 0xF000) ----

// enum { invite(0), open(1), knock(2), (255) } JoinRuleKind;
// struct { JoinRuleKind rule; uint32 join_role; uint32 knock_role; } JoinRule;

// MarshalJoinRule encodes JoinRule.
func MarshalJoinRule(j JoinRule) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(j.Rule))
		b.AddUint32(uint32(j.JoinRole))
		b.AddUint32(uint32(j.KnockRole))
	})
}

// ParseJoinRule strictly decodes JoinRule. Whether the roles exist is
// checked against the roles when a whole state is decoded.
func ParseJoinRule(data []byte) (JoinRule, error) {
	const what = "roomstate.JoinRule"
	var j JoinRule
	var rule uint8
	var jr, kr uint32
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return s.ReadUint8(&rule) && s.ReadUint32(&jr) && s.ReadUint32(&kr)
	})
	if err != nil {
		return JoinRule{}, err
	}
	j = JoinRule{Rule: JoinRuleKind(rule), JoinRole: RoleIndex(jr), KnockRole: RoleIndex(kr)}
	if j.Rule > JoinKnock {
		return JoinRule{}, decodeErr(what, fmt.Errorf("unknown join rule %d", rule))
	}
	return j, nil
}

// ---- servers (Rhizome, 0xF001) ----

// opaque ServerID[32];
// struct { ServerID id; opaque domain<V>; } Server;
// struct { Server servers<V>; ServerID hub_candidates<V>; } Servers;

// ServerSet is the content of the servers component.
type ServerSet struct {
	Servers       []Server   // strictly ascending by ID
	HubCandidates []ServerID // ordered, unique, each in Servers
}

// MarshalServers encodes the servers component.
func MarshalServers(ss ServerSet) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		addServerList(b, ss.Servers)
		addServerIDs(b, ss.HubCandidates)
	})
}

// ParseServers strictly decodes the servers component: at least one server,
// strictly ascending IDs, valid domains, hub candidates unique and
// participating.
func ParseServers(data []byte) (ServerSet, error) {
	const what = "roomstate.Servers"
	var ss ServerSet
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return readServerList(s, &ss.Servers) && readServerIDs(s, &ss.HubCandidates)
	})
	if err != nil {
		return ServerSet{}, err
	}
	st := &State{servers: ss.Servers}
	if len(ss.Servers) == 0 {
		return ServerSet{}, decodeErr(what, fmt.Errorf("no servers"))
	}
	for i, sv := range ss.Servers {
		if (i > 0 && bytes.Compare(ss.Servers[i-1].ID[:], sv.ID[:]) >= 0) || !validDomain(sv.Domain) {
			return ServerSet{}, decodeErr(what, fmt.Errorf("servers not strictly ascending or bad domain"))
		}
	}
	if err := st.validateHubCandidates(ss.HubCandidates); err != nil {
		return ServerSet{}, decodeErr(what, err)
	}
	return ss, nil
}

func addServerList(b *cryptobyte.Builder, svs []Server) {
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, sv := range svs {
			b.AddBytes(sv.ID[:])
			tlspl.AddOpaque(b, []byte(sv.Domain))
		}
	})
}

func readServerList(s *cryptobyte.String, out *[]Server) bool {
	return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
		var sv Server
		var d []byte
		if !s.CopyBytes(sv.ID[:]) || !tlspl.ReadOpaque(s, &d) {
			return false
		}
		sv.Domain = string(d)
		*out = append(*out, sv)
		return true
	})
}

func addServerIDs(b *cryptobyte.Builder, ids []ServerID) {
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, id := range ids {
			b.AddBytes(id[:])
		}
	})
}

func readServerIDs(s *cryptobyte.String, out *[]ServerID) bool {
	return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
		var id ServerID
		if !s.CopyBytes(id[:]) {
			return false
		}
		*out = append(*out, id)
		return true
	})
}
