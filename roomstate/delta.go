package roomstate

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// IndexRole is a role change in a ParticipantListUpdate: the user at
// UserIndex of the current participant list gets Role.
type IndexRole struct {
	UserIndex uint32
	Role      RoleIndex
}

// ParticipantListUpdate is the wire form of a participant-list change, the
// update an AppDataUpdate proposal for participant_list carries
// (draft-ietf-mimi-protocol-06, Section 7.5):
//
//	struct { uint32 user_index; uint32 role_index; } UserindexRolePair;
//	struct {
//	  UserindexRolePair changedRoleParticipants<V>;
//	  uint32 removedIndices<V>;
//	  UserRolePair addedParticipants<V>;
//	} ParticipantListUpdate;
//
// Indices refer to the participant list before the update. Rhizome requires
// changedRoleParticipants and removedIndices strictly ascending by index so
// that every update has exactly one encoding.
type ParticipantListUpdate struct {
	ChangedRoles   []IndexRole
	RemovedIndices []uint32
	Added          []UserRole
}

// MarshalParticipantListUpdate encodes u.
func MarshalParticipantListUpdate(u ParticipantListUpdate) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, c := range u.ChangedRoles {
				b.AddUint32(c.UserIndex)
				b.AddUint32(uint32(c.Role))
			}
		})
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, i := range u.RemovedIndices {
				b.AddUint32(i)
			}
		})
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, a := range u.Added {
				tlspl.AddOpaque(b, []byte(a.User))
				b.AddUint32(uint32(a.Role))
			}
		})
	})
}

// ParseParticipantListUpdate strictly decodes a ParticipantListUpdate:
// ascending unique indices, an index in at most one list, valid and unique
// added users, no role 0, and at least one operation.
func ParseParticipantListUpdate(data []byte) (ParticipantListUpdate, error) {
	const what = "roomstate.ParticipantListUpdate"
	var u ParticipantListUpdate
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
			var c IndexRole
			var r uint32
			if !s.ReadUint32(&c.UserIndex) || !s.ReadUint32(&r) {
				return false
			}
			c.Role = RoleIndex(r)
			u.ChangedRoles = append(u.ChangedRoles, c)
			return true
		}) && tlspl.ReadList(s, func(s *cryptobyte.String) bool {
			var i uint32
			if !s.ReadUint32(&i) {
				return false
			}
			u.RemovedIndices = append(u.RemovedIndices, i)
			return true
		}) && tlspl.ReadList(s, func(s *cryptobyte.String) bool {
			var user []byte
			var r uint32
			if !tlspl.ReadOpaque(s, &user) || !s.ReadUint32(&r) {
				return false
			}
			u.Added = append(u.Added, UserRole{User: URI(user), Role: RoleIndex(r)})
			return true
		})
	})
	if err != nil {
		return ParticipantListUpdate{}, err
	}
	if err := u.check(); err != nil {
		return ParticipantListUpdate{}, decodeErr(what, err)
	}
	return u, nil
}

func (u ParticipantListUpdate) check() error {
	if len(u.ChangedRoles)+len(u.RemovedIndices)+len(u.Added) == 0 {
		return errors.New("empty update")
	}
	for i, c := range u.ChangedRoles {
		if i > 0 && u.ChangedRoles[i-1].UserIndex >= c.UserIndex {
			return errors.New("changed roles not strictly ascending")
		}
		if c.Role == RoleNone {
			return errors.New("role change to 0")
		}
		if _, found := slices.BinarySearch(u.RemovedIndices, c.UserIndex); found {
			return errors.New("index both changed and removed")
		}
	}
	if !strictlyAscending(u.RemovedIndices) {
		return errors.New("removed indices not strictly ascending")
	}
	seen := make(map[URI]bool, len(u.Added))
	for _, a := range u.Added {
		if !ValidUserURI(a.User) || seen[a.User] || a.Role == RoleNone {
			return fmt.Errorf("added participant %q invalid, duplicate or role 0", a.User)
		}
		seen[a.User] = true
	}
	return nil
}

// ---- ServersUpdate (Rhizome, 0xF001) ----

// struct { ServerID ids<V>; } HubCandidateList;
// struct {
//   ServerID removed<V>;
//   Server added<V>;
//   optional<HubCandidateList> hub_candidates;
// } ServersUpdate;

// MarshalServersUpdate encodes u.
func MarshalServersUpdate(u ServersUpdate) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		addServerIDs(b, u.Removed)
		addServerList(b, u.Added)
		tlspl.AddOptional(b, u.HubCandidates != nil)
		if u.HubCandidates != nil {
			addServerIDs(b, *u.HubCandidates)
		}
	})
}

// ParseServersUpdate strictly decodes a ServersUpdate: no server named
// twice, valid domains, and at least one operation.
func ParseServersUpdate(data []byte) (ServersUpdate, error) {
	const what = "roomstate.ServersUpdate"
	var u ServersUpdate
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		if !readServerIDs(s, &u.Removed) || !readServerList(s, &u.Added) {
			return false
		}
		var present bool
		if !tlspl.ReadOptional(s, &present) {
			return false
		}
		if present {
			hc := []ServerID{}
			if !readServerIDs(s, &hc) {
				return false
			}
			u.HubCandidates = &hc
		}
		return true
	})
	if err != nil {
		return ServersUpdate{}, err
	}
	if len(u.Removed)+len(u.Added) == 0 && u.HubCandidates == nil {
		return ServersUpdate{}, decodeErr(what, errors.New("empty update"))
	}
	seen := make(map[ServerID]bool)
	for _, id := range u.Removed {
		if seen[id] {
			return ServersUpdate{}, decodeErr(what, errors.New("server named twice"))
		}
		seen[id] = true
	}
	for _, sv := range u.Added {
		if seen[sv.ID] || !validDomain(sv.Domain) {
			return ServersUpdate{}, decodeErr(what, errors.New("server named twice or bad domain"))
		}
		seen[sv.ID] = true
	}
	if u.HubCandidates != nil {
		hc := make(map[ServerID]bool)
		for _, id := range *u.HubCandidates {
			if hc[id] {
				return ServersUpdate{}, decodeErr(what, errors.New("hub candidate twice"))
			}
			hc[id] = true
		}
	}
	return u, nil
}

// ---- ops <-> AppDataUpdate ----

// EncodeOp encodes op as the update field of an AppDataUpdate proposal for
// its component, relative to state s (participant-list updates refer to
// users by their index in s). Role changes and removals are written in
// ascending index order, which is also the order [Apply] uses.
func EncodeOp(s *State, op Op) (ComponentID, []byte, error) {
	var data []byte
	var err error
	switch o := op.(type) {
	case *ParticipantUpdate:
		var w ParticipantListUpdate
		w, err = s.participantWire(o)
		if err == nil {
			data, err = MarshalParticipantListUpdate(w)
		}
	case *MetadataUpdate:
		data, err = MarshalRoomMetadata(o.Metadata)
	case *RolesUpdate:
		data, err = MarshalRoles(o.Roles)
	case *PreAuthUpdate:
		data, err = MarshalPreAuth(o.Rules)
	case *BasePolicyUpdate:
		data, err = MarshalBasePolicy(o.Policy)
	case *JoinRuleUpdate:
		data, err = MarshalJoinRule(o.JoinRule)
	case *ServersUpdate:
		data, err = MarshalServersUpdate(*o)
	default:
		return 0, nil, reject(ReasonMalformed, "unknown op %T", op)
	}
	if err != nil {
		return 0, nil, err
	}
	return op.Component(), data, nil
}

func (s *State) participantWire(o *ParticipantUpdate) (ParticipantListUpdate, error) {
	var w ParticipantListUpdate
	for _, rc := range o.RoleChanges {
		i := s.indexOf(rc.User)
		if i < 0 {
			return w, reject(ReasonUnknownUser, "%s is not a participant", rc.User)
		}
		w.ChangedRoles = append(w.ChangedRoles, IndexRole{UserIndex: uint32(i), Role: rc.Role})
	}
	for _, r := range o.Removed {
		i := s.indexOf(r)
		if i < 0 {
			return w, reject(ReasonUnknownUser, "%s is not a participant", r)
		}
		w.RemovedIndices = append(w.RemovedIndices, uint32(i))
	}
	slices.SortFunc(w.ChangedRoles, func(a, b IndexRole) int { return cmpUint(a.UserIndex, b.UserIndex) })
	slices.Sort(w.RemovedIndices)
	w.Added = slices.Clone(o.Added)
	if err := w.check(); err != nil {
		return w, &RejectError{Reason: ReasonMalformed, Detail: "participant update", Err: err}
	}
	return w, nil
}

// DecodeOp strictly decodes the update field of an AppDataUpdate proposal
// for component id, relative to state s. Decoding failures are
// *RejectError values with ReasonMalformed wrapping the *tlspl.DecodeError;
// an index outside the participant list gives ReasonUnknownUser.
func DecodeOp(s *State, id ComponentID, update []byte) (Op, error) {
	wrap := func(err error) error {
		var re *RejectError
		if errors.As(err, &re) {
			return err
		}
		return &RejectError{Reason: ReasonMalformed, Detail: fmt.Sprintf("update for component 0x%04x", uint32(id)), Err: err}
	}
	switch id {
	case ComponentParticipantList:
		w, err := ParseParticipantListUpdate(update)
		if err != nil {
			return nil, wrap(err)
		}
		u := &ParticipantUpdate{Added: w.Added}
		for _, c := range w.ChangedRoles {
			if int64(c.UserIndex) >= int64(len(s.participants)) {
				return nil, reject(ReasonUnknownUser, "user index %d out of range", c.UserIndex)
			}
			u.RoleChanges = append(u.RoleChanges, UserRole{User: s.participants[c.UserIndex].User, Role: c.Role})
		}
		for _, i := range w.RemovedIndices {
			if int64(i) >= int64(len(s.participants)) {
				return nil, reject(ReasonUnknownUser, "user index %d out of range", i)
			}
			u.Removed = append(u.Removed, s.participants[i].User)
		}
		return u, nil
	case ComponentRoomMetadata:
		m, err := ParseRoomMetadata(update)
		if err != nil {
			return nil, wrap(err)
		}
		return &MetadataUpdate{Metadata: m}, nil
	case ComponentRolesList:
		r, err := ParseRoles(update)
		if err != nil {
			return nil, wrap(err)
		}
		return &RolesUpdate{Roles: r}, nil
	case ComponentPreAuthList:
		r, err := ParsePreAuth(update)
		if err != nil {
			return nil, wrap(err)
		}
		return &PreAuthUpdate{Rules: r}, nil
	case ComponentBaseRoomPolicy:
		p, err := ParseBasePolicy(update)
		if err != nil {
			return nil, wrap(err)
		}
		return &BasePolicyUpdate{Policy: p}, nil
	case ComponentJoinRule:
		j, err := ParseJoinRule(update)
		if err != nil {
			return nil, wrap(err)
		}
		return &JoinRuleUpdate{JoinRule: j}, nil
	case ComponentServers:
		u, err := ParseServersUpdate(update)
		if err != nil {
			return nil, wrap(err)
		}
		return &u, nil
	}
	return nil, reject(ReasonMalformed, "component 0x%04x is not part of room state", uint32(id))
}

// ApplyUpdate decodes an AppDataUpdate-style delta (component id and update
// bytes) relative to s and applies it for actor: the application logic an
// MLS client runs for each AppDataUpdate proposal (draft-ietf-mls-extensions
// Section 4.7). It returns the new state, or a *RejectError, which makes
// the whole commit invalid.
func ApplyUpdate(s *State, actor Actor, id ComponentID, update []byte) (*State, error) {
	op, err := DecodeOp(s, id, update)
	if err != nil {
		return nil, err
	}
	return Apply(s, Change{Actor: actor, Op: op})
}
