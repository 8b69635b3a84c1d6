package roomstate

import (
	"fmt"
	"slices"
)

// RoleChangeTargets says that a holder of the role may move a user whose
// current role is From to any role in To (room-policy Section 3,
// SingleSourceRoleChangeTargets). To may contain RoleNone (removal) and
// RoleBanned (ban).
type RoleChangeTargets struct {
	From RoleIndex
	To   []RoleIndex // strictly ascending
}

// Role is one role definition of the roles_list component
// (draft-ietf-mimi-room-policy-03, Section 3).
type Role struct {
	Index        RoleIndex
	Name         string
	Description  string
	Capabilities []Capability // strictly ascending
	// MinParticipants and MaxParticipants bound how many users hold the
	// role; MaxParticipants nil means no limit.
	MinParticipants uint32
	MaxParticipants *uint32
	// MinActive and MaxActive bound how many of them have at least one
	// client in the MLS group. MaxActive 0 means holders may have no
	// clients at all (role 0, banned, knocking).
	MinActive uint32
	MaxActive *uint32
	// Transitions are the authorized_role_changes, strictly ascending by
	// From.
	Transitions []RoleChangeTargets
}

// Has reports whether the role holds capability c.
func (r *Role) Has(c Capability) bool {
	_, ok := slices.BinarySearch(r.Capabilities, c)
	return ok
}

// CanMove reports whether the role's authorized_role_changes allow moving a
// user from role from to role to.
func (r *Role) CanMove(from, to RoleIndex) bool {
	for _, t := range r.Transitions {
		if t.From == from {
			_, ok := slices.BinarySearch(t.To, to)
			return ok
		}
	}
	return false
}

// allowsClients reports whether holders of the role may have clients.
func (r *Role) allowsClients() bool {
	return r.MaxActive == nil || *r.MaxActive > 0
}

func (r Role) clone() Role {
	c := r
	c.Capabilities = slices.Clone(r.Capabilities)
	if r.MaxParticipants != nil {
		v := *r.MaxParticipants
		c.MaxParticipants = &v
	}
	if r.MaxActive != nil {
		v := *r.MaxActive
		c.MaxActive = &v
	}
	c.Transitions = make([]RoleChangeTargets, len(r.Transitions))
	for i, t := range r.Transitions {
		c.Transitions[i] = RoleChangeTargets{From: t.From, To: slices.Clone(t.To)}
	}
	return c
}

func (r Role) equal(o Role) bool {
	return r.Index == o.Index && r.Name == o.Name && r.Description == o.Description &&
		slices.Equal(r.Capabilities, o.Capabilities) &&
		r.MinParticipants == o.MinParticipants && optEqual(r.MaxParticipants, o.MaxParticipants) &&
		r.MinActive == o.MinActive && optEqual(r.MaxActive, o.MaxActive) &&
		slices.EqualFunc(r.Transitions, o.Transitions, func(a, b RoleChangeTargets) bool {
			return a.From == b.From && slices.Equal(a.To, b.To)
		})
}

// validateRoles checks a role set on its own: canonical order, role 0
// present without clients, role 1 (if present) named "banned" without
// clients, canOpenJoin only on role 0 (room-policy Section 8.1.1), min <=
// max, and every transition naming existing roles.
func validateRoles(roles []Role) error {
	if len(roles) == 0 || roles[0].Index != RoleNone {
		return fmt.Errorf("role 0 missing")
	}
	exists := func(i RoleIndex) bool {
		_, ok := slices.BinarySearchFunc(roles, i, func(r Role, i RoleIndex) int { return cmpUint(uint32(r.Index), uint32(i)) })
		return ok
	}
	for i := range roles {
		r := &roles[i]
		if i > 0 && roles[i-1].Index >= r.Index {
			return fmt.Errorf("roles not strictly ascending at index %d", r.Index)
		}
		if !validText(r.Name) || !validText(r.Description) {
			return fmt.Errorf("role %d: name or description is not valid text", r.Index)
		}
		if !strictlyAscending(r.Capabilities) {
			return fmt.Errorf("role %d: capabilities not strictly ascending", r.Index)
		}
		if r.Index != RoleNone && r.Has(CanOpenJoin) {
			return fmt.Errorf("role %d: canOpenJoin on a non-zero role", r.Index)
		}
		if (r.Index == RoleNone || r.Index == RoleBanned) && r.allowsClients() {
			return fmt.Errorf("role %d: must have maximum active participants 0", r.Index)
		}
		if r.Index == RoleBanned && r.Name != BannedRoleName {
			return fmt.Errorf("role 1 must be named %q", BannedRoleName)
		}
		if r.MaxParticipants != nil && *r.MaxParticipants < r.MinParticipants {
			return fmt.Errorf("role %d: maximum participants below minimum", r.Index)
		}
		if r.MaxActive != nil && *r.MaxActive < r.MinActive {
			return fmt.Errorf("role %d: maximum active participants below minimum", r.Index)
		}
		for j, t := range r.Transitions {
			if j > 0 && r.Transitions[j-1].From >= t.From {
				return fmt.Errorf("role %d: transitions not strictly ascending", r.Index)
			}
			if !strictlyAscending(t.To) || len(t.To) == 0 {
				return fmt.Errorf("role %d: transition targets empty or not strictly ascending", r.Index)
			}
			if !exists(t.From) {
				return fmt.Errorf("role %d: transition from unknown role %d", r.Index, t.From)
			}
			for _, to := range t.To {
				if !exists(to) || to == t.From {
					return fmt.Errorf("role %d: transition %d -> %d names an unknown role or no change", r.Index, t.From, to)
				}
			}
		}
	}
	return nil
}

func strictlyAscending[T ~uint16 | ~uint32](s []T) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}
