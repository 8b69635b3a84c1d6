package roomstate

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Components encodes the state as app_data_dictionary entries, one per
// component, in ascending component ID order (the order the dictionary
// requires, draft-ietf-mls-extensions Section 4.6). The encoding is
// canonical: two states are [State.Equal] exactly when their Components are
// byte-wise equal. Putting these entries into the GroupContext makes every
// member's key schedule depend on the room state (RFC 9420, Section 8), so
// members who disagree about it derive different epoch secrets.
func (s *State) Components() ([]ComponentData, error) {
	out := make([]ComponentData, 0, len(stateComponents))
	for _, id := range stateComponents {
		data, err := s.component(id)
		if err != nil {
			return nil, fmt.Errorf("roomstate: encode component 0x%04x: %w", uint32(id), err)
		}
		out = append(out, ComponentData{ID: id, Data: data})
	}
	return out, nil
}

// component encodes the current data of one component.
func (s *State) component(id ComponentID) ([]byte, error) {
	switch id {
	case ComponentParticipantList:
		return MarshalParticipantList(s.participants)
	case ComponentRoomMetadata:
		return MarshalRoomMetadata(s.metadata)
	case ComponentRolesList:
		return MarshalRoles(s.roles)
	case ComponentPreAuthList:
		return MarshalPreAuth(s.preauth)
	case ComponentBaseRoomPolicy:
		return MarshalBasePolicy(s.base)
	case ComponentJoinRule:
		return MarshalJoinRule(s.joinRule)
	case ComponentServers:
		return MarshalServers(ServerSet{Servers: s.servers, HubCandidates: s.hubCandidates})
	}
	return nil, fmt.Errorf("roomstate: component 0x%04x is not part of room state", uint32(id))
}

// FromComponents decodes a state from app_data_dictionary entries, for
// example those of a GroupContext received in a Welcome. The entries must be
// strictly ascending by ID (as in the dictionary); entries of components
// that are not room state (app_components, safe_aad, ...) are skipped;
// every room-state component must be present, and the state must be
// consistent across components. Errors are *tlspl.DecodeError values
// wrapping tlspl.ErrMalformed.
func FromComponents(entries []ComponentData) (*State, error) {
	const what = "roomstate.State"
	s := &State{}
	have := 0
	for i, e := range entries {
		if i > 0 && entries[i-1].ID >= e.ID {
			return nil, decodeErr(what, fmt.Errorf("dictionary entries not strictly ascending"))
		}
		var err error
		switch e.ID {
		case ComponentParticipantList:
			s.participants, err = ParseParticipantList(e.Data)
		case ComponentRoomMetadata:
			s.metadata, err = ParseRoomMetadata(e.Data)
		case ComponentRolesList:
			s.roles, err = ParseRoles(e.Data)
		case ComponentPreAuthList:
			s.preauth, err = ParsePreAuth(e.Data)
		case ComponentBaseRoomPolicy:
			s.base, err = ParseBasePolicy(e.Data)
		case ComponentJoinRule:
			s.joinRule, err = ParseJoinRule(e.Data)
		case ComponentServers:
			var ss ServerSet
			ss, err = ParseServers(e.Data)
			s.servers, s.hubCandidates = ss.Servers, ss.HubCandidates
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		have++
	}
	if have != len(stateComponents) {
		return nil, decodeErr(what, fmt.Errorf("%d of %d room-state components present", have, len(stateComponents)))
	}
	if err := s.validate(true); err != nil {
		return nil, decodeErr(what, err)
	}
	return s, nil
}

// MarshalComponents encodes entries as the body of the app_data_dictionary
// extension: struct { ComponentData component_data<V>; } AppDataDictionary.
// The mls package owns the extension itself; this is for hashing, tests and
// snapshots.
func MarshalComponents(entries []ComponentData) ([]byte, error) {
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, e := range entries {
				b.AddUint32(uint32(e.ID))
				tlspl.AddOpaque(b, e.Data)
			}
		})
	})
}

// ParseComponents strictly decodes the body of an app_data_dictionary
// extension (struct { ComponentData component_data<V>; }) into entries,
// which must be strictly ascending by ID (draft-ietf-mls-extensions
// Section 4.6: sorted, at most one entry per ID).
func ParseComponents(data []byte) ([]ComponentData, error) {
	const what = "roomstate.AppDataDictionary"
	var out []ComponentData
	err := tlspl.Unmarshal(data, what, func(s *cryptobyte.String) bool {
		return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
			var id uint32
			var d []byte
			if !s.ReadUint32(&id) || !tlspl.ReadOpaque(s, &d) {
				return false
			}
			if n := len(out); n > 0 && out[n-1].ID >= ComponentID(id) {
				return false
			}
			out = append(out, ComponentData{ID: ComponentID(id), Data: d})
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
