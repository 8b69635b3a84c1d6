package roomstate

import (
	"bytes"
	"fmt"
)

func (s *State) validateHubCandidates(c []ServerID) error {
	seen := make(map[ServerID]bool, len(c))
	for _, id := range c {
		if seen[id] {
			return reject(ReasonMalformed, "hub candidate %x listed twice", id[:4])
		}
		seen[id] = true
		if _, ok := s.Server(id); !ok {
			return reject(ReasonUnknownUser, "hub candidate %x is not a participating server", id[:4])
		}
	}
	return nil
}

// validateJoinRule checks j against the current roles.
func (s *State) validateJoinRule(j JoinRule) error {
	if j.Rule > JoinKnock {
		return fmt.Errorf("unknown join rule %d", j.Rule)
	}
	usable := func(i RoleIndex) bool { return i != RoleNone && i != RoleBanned && s.role(i) != nil }
	if !usable(j.JoinRole) {
		return fmt.Errorf("join role %d is not a usable role", j.JoinRole)
	}
	if j.KnockRole != RoleNone {
		if !usable(j.KnockRole) || s.role(j.KnockRole).allowsClients() {
			return fmt.Errorf("knock role %d must exist and allow no clients", j.KnockRole)
		}
	}
	if j.Rule == JoinKnock && j.KnockRole == RoleNone {
		return fmt.Errorf("knock join rule without a knock role")
	}
	if j.Rule != JoinInvite && s.base.FixedMembership {
		return fmt.Errorf("a fixed-membership room can only be invite-only")
	}
	return nil
}

// validate checks the invariants that tie components together. Decoding
// and room creation run it in full; every Apply ends with it too, but skips
// the per-participant checks (O(participants)), which Apply's operations
// maintain themselves: additions check the URI and duplicates, and roles
// only disappear through a RolesUpdate, which checks every holder.
func (s *State) validate(full bool) error {
	if err := validateRoles(s.roles); err != nil {
		return err
	}
	if full {
		seen := make(map[URI]bool, len(s.participants))
		for _, p := range s.participants {
			if !ValidUserURI(p.User) || seen[p.User] {
				return fmt.Errorf("participant %q invalid or duplicate", p.User)
			}
			seen[p.User] = true
			if p.Role == RoleNone || s.role(p.Role) == nil {
				return fmt.Errorf("participant %s has undefined role %d", p.User, p.Role)
			}
		}
	}
	for _, r := range s.preauth {
		if r.Role == RoleNone || r.Role == RoleBanned || s.role(r.Role) == nil {
			return fmt.Errorf("pre-authorization names unusable role %d", r.Role)
		}
	}
	if s.base.FixedMembership {
		for _, r := range s.roles {
			if r.Index != RoleNone && r.Index != RoleBanned && r.Has(CanAddParticipant) {
				return fmt.Errorf("fixed-membership room: role %q holds canAddParticipant", r.Name)
			}
		}
	}
	if s.base.MaxUsers != nil && s.nonBanned() > *s.base.MaxUsers {
		return fmt.Errorf("more than max_users participants")
	}
	if err := s.validateJoinRule(s.joinRule); err != nil {
		return err
	}
	if err := validateMetadata(s.metadata); err != nil {
		return err
	}
	if len(s.servers) == 0 {
		return fmt.Errorf("no servers")
	}
	for i, sv := range s.servers {
		if i > 0 && bytes.Compare(s.servers[i-1].ID[:], sv.ID[:]) >= 0 {
			return fmt.Errorf("servers not strictly ascending")
		}
		if !validDomain(sv.Domain) {
			return fmt.Errorf("server domain %q", sv.Domain)
		}
	}
	return s.validateHubCandidates(s.hubCandidates)
}

func validateMetadata(m RoomMetadata) error {
	for _, t := range []string{string(m.RoomURI), m.Name, string(m.Avatar), m.Subject, m.Mood} {
		if !validText(t) {
			return fmt.Errorf("metadata field is not valid text")
		}
	}
	if _, _, ok := splitMIMI(string(m.RoomURI)); !ok {
		return fmt.Errorf("room URI %q is not a MIMI URI", m.RoomURI)
	}
	for _, d := range m.Descriptions {
		if !validText(d.MediaType) || !validText(d.LanguageTag) {
			return fmt.Errorf("description media type or language is not valid text")
		}
	}
	return nil
}

func validatePreAuth(rules []PreAuthRule) error {
	for _, r := range rules {
		if len(r.Claims) == 0 {
			return fmt.Errorf("rule without claims")
		}
		if r.Role == RoleNone || r.Role == RoleBanned {
			return fmt.Errorf("rule grants role %d", r.Role)
		}
		for _, c := range r.Claims {
			if !validText(c.ID) || !validText(c.Value) {
				return fmt.Errorf("claim is not valid text")
			}
		}
	}
	return nil
}

func validateBasePolicy(p BaseRoomPolicy) error {
	if !validText(string(p.ParentRoom)) {
		return fmt.Errorf("parent room is not valid text")
	}
	if p.ParentDependent != (p.ParentRoom != "") {
		return fmt.Errorf("parent_room must be set exactly when parent_dependant is true")
	}
	if !strictlyAscending(p.PolicyComponentIDs) {
		return fmt.Errorf("policy component IDs not strictly ascending")
	}
	return nil
}
