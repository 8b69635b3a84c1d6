package roomstate

import (
	"bytes"
	"slices"
)

// Apply returns the state after change c, or a [*RejectError] if c is not
// authorized or not well formed. It is pure and deterministic: it never
// modifies s (it works on a deep copy, see [State] for the cost), reads no
// clock or randomness, and gives the same result for the same inputs on
// every server and client.
//
// Apply checks everything that can be decided from the room state alone.
// Rules that need the MLS group's client list (active-participant limits,
// removing all of a user's clients, max_clients) are checked by
// [AuthorizeCommit], which calls Apply for each AppDataUpdate it carries.
func Apply(s *State, c Change) (*State, error) {
	if s == nil || c.Op == nil {
		return nil, reject(ReasonMalformed, "nil state or empty change")
	}
	if err := s.checkActor(c.Actor); err != nil {
		return nil, err
	}
	n := s.clone()
	var err error
	switch op := c.Op.(type) {
	case *ParticipantUpdate:
		err = n.applyParticipants(c.Actor, op)
	case *MetadataUpdate:
		err = n.applyMetadata(c.Actor, op)
	case *RolesUpdate:
		err = n.applyRoles(c.Actor, op)
	case *PreAuthUpdate:
		err = n.applyPreAuth(c.Actor, op)
	case *BasePolicyUpdate:
		err = n.applyBasePolicy(c.Actor, op)
	case *JoinRuleUpdate:
		err = n.applyJoinRule(c.Actor, op)
	case *ServersUpdate:
		err = n.applyServers(c.Actor, op)
	default:
		err = reject(ReasonMalformed, "unknown op %T", c.Op)
	}
	if err != nil {
		return nil, err
	}
	// Safety net: every op keeps the cross-component invariants on its own;
	// this catches any combination an op-specific check missed.
	if err := n.validate(false); err != nil {
		return nil, &RejectError{Reason: ReasonInvalidTransition, Detail: "resulting state is inconsistent", Err: err}
	}
	return n, nil
}

// checkActor rejects actors that are malformed, banned, or unknown servers.
func (s *State) checkActor(a Actor) error {
	switch a.Kind {
	case ActorUser:
		if !ValidUserURI(a.User) {
			return reject(ReasonMalformed, "actor %q is not a MIMI user URI", a.User)
		}
		if s.RoleOf(a.User) == RoleBanned {
			return reject(ReasonBanned, "actor %s is banned", a.User)
		}
	case ActorServer:
		if _, ok := s.Server(a.Server); !ok {
			return reject(ReasonUnknownUser, "actor server %x is not a participating server", a.Server[:4])
		}
	default:
		return reject(ReasonMalformed, "actor kind %d", a.Kind)
	}
	return nil
}

// actorRole returns the role of a listed user actor, or an error for
// servers and users who are not participants.
func (s *State) actorRole(a Actor) (*Role, error) {
	if a.Kind != ActorUser {
		return nil, reject(ReasonNotAllowed, "servers may not make this change")
	}
	i := s.RoleOf(a.User)
	if i == RoleNone {
		return nil, reject(ReasonNotAllowed, "actor %s is not a participant", a.User)
	}
	r := s.role(i)
	if r == nil {
		return nil, reject(ReasonInvalidTransition, "actor role %d undefined", i)
	}
	return r, nil
}

func (s *State) requireCap(a Actor, c Capability) (*Role, error) {
	r, err := s.actorRole(a)
	if err != nil {
		return nil, err
	}
	if !r.Has(c) {
		return nil, reject(ReasonNotAllowed, "%s (role %q) lacks %s", a.User, r.Name, c)
	}
	return r, nil
}

// count returns how many participants hold role i.
func (s *State) count(i RoleIndex) uint32 {
	var n uint32
	for _, p := range s.participants {
		if p.Role == i {
			n++
		}
	}
	return n
}

// nonBanned returns how many participants are not banned (room-policy
// Section 5: max_users counts non-banned entries).
func (s *State) nonBanned() uint32 {
	return uint32(len(s.participants)) - s.count(RoleBanned)
}

// checkLeave checks that one holder may leave role i (minimum constraint).
func (s *State) checkLeave(i RoleIndex) error {
	r := s.role(i)
	if r != nil && s.count(i) <= r.MinParticipants {
		return reject(ReasonLimitExceeded, "role %q needs at least %d participants", r.Name, r.MinParticipants)
	}
	return nil
}

// checkEnter checks that one more user may hold role to, coming from role
// from (maximum constraint and the base policy's max_users).
func (s *State) checkEnter(from, to RoleIndex) error {
	r := s.role(to)
	if r.MaxParticipants != nil && s.count(to) >= *r.MaxParticipants {
		return reject(ReasonLimitExceeded, "role %q allows at most %d participants", r.Name, *r.MaxParticipants)
	}
	if (from == RoleNone || from == RoleBanned) && to != RoleBanned && s.base.MaxUsers != nil && s.nonBanned() >= *s.base.MaxUsers {
		return reject(ReasonLimitExceeded, "room allows at most %d users", *s.base.MaxUsers)
	}
	return nil
}

func (s *State) applyParticipants(a Actor, u *ParticipantUpdate) error {
	if len(u.RoleChanges)+len(u.Removed)+len(u.Added) == 0 {
		return reject(ReasonMalformed, "empty participant update")
	}
	seen := make(map[URI]bool)
	note := func(user URI) error {
		if !ValidUserURI(user) {
			return reject(ReasonMalformed, "%q is not a MIMI user URI", user)
		}
		if seen[user] {
			// protocol-06 Section 7.5: a commit touching one user twice is invalid.
			return reject(ReasonMalformed, "user %s appears twice in one update", user)
		}
		seen[user] = true
		return nil
	}
	for _, rc := range u.RoleChanges {
		if err := note(rc.User); err != nil {
			return err
		}
	}
	for _, r := range u.Removed {
		if err := note(r); err != nil {
			return err
		}
	}
	for _, ad := range u.Added {
		if err := note(ad.User); err != nil {
			return err
		}
	}
	// Role changes and removals run in participant-list order, the order
	// of their wire encoding (EncodeOp), so that a change gives the same
	// result before and after a round trip through the wire.
	changes := slices.Clone(u.RoleChanges)
	slices.SortStableFunc(changes, func(x, y UserRole) int { return s.indexOf(x.User) - s.indexOf(y.User) })
	removed := slices.Clone(u.Removed)
	slices.SortStableFunc(removed, func(x, y URI) int { return s.indexOf(x) - s.indexOf(y) })
	for _, rc := range changes {
		if err := s.changeRole(a, rc.User, rc.Role); err != nil {
			return err
		}
	}
	for _, r := range removed {
		if err := s.removeParticipant(a, r); err != nil {
			return err
		}
	}
	for _, ad := range u.Added {
		if err := s.addParticipant(a, ad.User, ad.Role); err != nil {
			return err
		}
	}
	return nil
}

// changeRole implements canChangeUserRole, canBan, canUnBan and
// canChangeOwnRole (room-policy Section 8.1.3).
func (s *State) changeRole(a Actor, target URI, to RoleIndex) error {
	i := s.indexOf(target)
	if i < 0 {
		return reject(ReasonUnknownUser, "%s is not a participant", target)
	}
	cur := s.participants[i].Role
	if to == RoleNone {
		return reject(ReasonMalformed, "role change to 0: use a removal")
	}
	if s.role(to) == nil {
		return reject(ReasonMalformed, "role %d is not defined", to)
	}
	if to == cur {
		return reject(ReasonInvalidTransition, "%s already has role %d", target, to)
	}
	switch {
	case a.Kind == ActorUser && a.User == target:
		// canChangeOwnRole: the target is the first pre-authorized role;
		// authorized_role_changes is not consulted.
		if _, err := s.requireCap(a, CanChangeOwnRole); err != nil {
			return err
		}
		if p, ok := s.PreAuthRole(target); !ok || p != to {
			return reject(ReasonInvalidTransition, "%s is not pre-authorized for role %d", target, to)
		}
	case to == RoleBanned:
		r, err := s.requireCap(a, CanBan)
		if err != nil {
			return err
		}
		if !r.CanMove(cur, RoleBanned) {
			return reject(ReasonInvalidTransition, "role %q may not ban from role %d", r.Name, cur)
		}
	case cur == RoleBanned:
		r, err := s.requireCap(a, CanUnBan)
		if err != nil {
			return err
		}
		if !r.CanMove(RoleBanned, to) {
			return reject(ReasonInvalidTransition, "role %q may not unban to role %d", r.Name, to)
		}
	default:
		r, err := s.requireCap(a, CanChangeUserRole)
		if err != nil {
			return err
		}
		if !r.CanMove(cur, to) {
			return reject(ReasonInvalidTransition, "role %q may not move %d -> %d", r.Name, cur, to)
		}
	}
	if err := s.checkLeave(cur); err != nil {
		return err
	}
	if err := s.checkEnter(cur, to); err != nil {
		return err
	}
	s.participants[i].Role = to
	return nil
}

// removeParticipant implements canRemoveParticipant and canRemoveSelf
// (room-policy Section 8.1.2), and removal by a user's own server.
func (s *State) removeParticipant(a Actor, target URI) error {
	i := s.indexOf(target)
	if i < 0 {
		return reject(ReasonUnknownUser, "%s is not a participant", target)
	}
	cur := s.participants[i].Role
	if s.base.FixedMembership {
		return reject(ReasonNotAllowed, "fixed-membership room: users cannot leave or be removed")
	}
	switch {
	case a.Kind == ActorServer:
		// A server may remove its own users (account deletion), like the
		// DS-initiated removals of protocol-06 Section 5.5.
		sv, _ := s.Server(a.Server)
		if target.Domain() != sv.Domain {
			return reject(ReasonNotAllowed, "server of %s may not remove %s", sv.Domain, target)
		}
	case a.User == target:
		r, err := s.requireCap(a, CanRemoveSelf)
		if err != nil {
			return err
		}
		if !r.CanMove(cur, RoleNone) {
			return reject(ReasonInvalidTransition, "role %q may not leave", r.Name)
		}
	default:
		r, err := s.requireCap(a, CanRemoveParticipant)
		if err != nil {
			return err
		}
		if !r.CanMove(cur, RoleNone) {
			return reject(ReasonInvalidTransition, "role %q may not remove users of role %d", r.Name, cur)
		}
	}
	if err := s.checkLeave(cur); err != nil {
		return err
	}
	s.participants = slices.Delete(s.participants, i, i+1)
	return nil
}

// addParticipant implements canAddParticipant, self-joins (join rule,
// canOpenJoin, canJoinIfPreauthorized) and the ban of a non-participant
// (room-policy Section 8.1.1; canBan with from_role_index 0).
func (s *State) addParticipant(a Actor, target URI, to RoleIndex) error {
	switch s.RoleOf(target) {
	case RoleNone:
	case RoleBanned:
		return reject(ReasonBanned, "%s is banned", target)
	default:
		return reject(ReasonInvalidTransition, "%s is already a participant", target)
	}
	if to == RoleNone || s.role(to) == nil {
		return reject(ReasonMalformed, "role %d is not defined", to)
	}
	if a.Kind != ActorUser {
		return reject(ReasonNotAllowed, "servers may not add participants")
	}
	if s.base.FixedMembership {
		return reject(ReasonNotAllowed, "fixed-membership room: nobody can be added")
	}
	if a.User == target {
		if !s.maySelfJoin(target, to) {
			return reject(ReasonNotAllowed, "%s may not join as role %d (join rule %s)", target, to, s.joinRule.Rule)
		}
	} else if to == RoleBanned {
		r, err := s.requireCap(a, CanBan)
		if err != nil {
			return err
		}
		if !r.CanMove(RoleNone, RoleBanned) {
			return reject(ReasonInvalidTransition, "role %q may not ban non-participants", r.Name)
		}
	} else {
		r, err := s.requireCap(a, CanAddParticipant)
		if err != nil {
			return err
		}
		if !r.CanMove(RoleNone, to) {
			return reject(ReasonInvalidTransition, "role %q may not add users as role %d", r.Name, to)
		}
	}
	if err := s.checkEnter(RoleNone, to); err != nil {
		return err
	}
	s.participants = append(s.participants, Participant{User: target, Role: to})
	return nil
}

// maySelfJoin reports whether a user who is not listed may add itself with
// role to.
func (s *State) maySelfJoin(user URI, to RoleIndex) bool {
	if to == RoleBanned {
		return false
	}
	// Pre-authorization (room-policy Section 4): first matching rule, and
	// the role must hold canJoinIfPreauthorized (Section 8.1.1).
	if p, ok := s.PreAuthRole(user); ok && p == to && s.role(to).Has(CanJoinIfPreauthorized) {
		return true
	}
	switch {
	case s.joinRule.Rule == JoinOpen && to == s.joinRule.JoinRole:
		return true
	case s.joinRule.Rule == JoinKnock && to == s.joinRule.KnockRole:
		return true
	}
	// canOpenJoin on role 0 (room-policy Section 8.1.1), honoured for
	// policies written for other MIMI implementations.
	r0 := s.role(RoleNone)
	return r0.Has(CanOpenJoin) && r0.CanMove(RoleNone, to)
}

func (s *State) applyMetadata(a Actor, u *MetadataUpdate) error {
	m := u.Metadata
	if err := validateMetadata(m); err != nil {
		return &RejectError{Reason: ReasonMalformed, Detail: "room metadata", Err: err}
	}
	if m.RoomURI != s.metadata.RoomURI {
		return reject(ReasonInvalidTransition, "the room URI cannot change")
	}
	old := s.metadata
	need := []struct {
		changed bool
		c       Capability
	}{
		{m.Name != old.Name, CanChangeRoomName},
		{!m.equalDescriptions(old), CanChangeRoomDescription},
		{m.Avatar != old.Avatar, CanChangeRoomAvatar},
		{m.Subject != old.Subject, CanChangeRoomSubject},
		{m.Mood != old.Mood, CanChangeRoomMood},
	}
	for _, n := range need {
		if n.changed {
			if _, err := s.requireCap(a, n.c); err != nil {
				return err
			}
		}
	}
	if _, err := s.actorRole(a); err != nil {
		return err
	}
	s.metadata = m.clone()
	return nil
}

func (m RoomMetadata) equalDescriptions(o RoomMetadata) bool {
	return slices.EqualFunc(m.Descriptions, o.Descriptions, func(a, b RichDescription) bool {
		return a.MediaType == b.MediaType && a.LanguageTag == b.LanguageTag && bytes.Equal(a.Content, b.Content)
	})
}

func (s *State) applyRoles(a Actor, u *RolesUpdate) error {
	if _, err := s.requireCap(a, CanChangeRoleDefinitions); err != nil {
		return err
	}
	if err := validateRoles(u.Roles); err != nil {
		return &RejectError{Reason: ReasonMalformed, Detail: "role definitions", Err: err}
	}
	next := make([]Role, len(u.Roles))
	for i, r := range u.Roles {
		next[i] = r.clone()
	}
	old := s.roles
	s.roles = next
	for _, p := range s.participants {
		if s.role(p.Role) == nil {
			s.roles = old
			return reject(ReasonInvalidTransition, "participant %s holds role %d, which the update removes", p.User, p.Role)
		}
	}
	for _, r := range s.roles {
		n := s.count(r.Index)
		if n < r.MinParticipants || (r.MaxParticipants != nil && n > *r.MaxParticipants) {
			s.roles = old
			return reject(ReasonLimitExceeded, "role %q would hold %d participants, outside its limits", r.Name, n)
		}
	}
	return nil
}

func (s *State) applyPreAuth(a Actor, u *PreAuthUpdate) error {
	if _, err := s.requireCap(a, CanChangePreauthorizedUserList); err != nil {
		return err
	}
	if err := validatePreAuth(u.Rules); err != nil {
		return &RejectError{Reason: ReasonMalformed, Detail: "pre-authorization rules", Err: err}
	}
	for _, r := range u.Rules {
		if s.role(r.Role) == nil {
			return reject(ReasonMalformed, "pre-authorization names undefined role %d", r.Role)
		}
	}
	s.preauth = (&State{preauth: u.Rules}).PreAuth()
	return nil
}

func (s *State) applyBasePolicy(a Actor, u *BasePolicyUpdate) error {
	if _, err := s.requireCap(a, CanChangeRoomMembershipStyle); err != nil {
		return err
	}
	if err := validateBasePolicy(u.Policy); err != nil {
		return &RejectError{Reason: ReasonMalformed, Detail: "base room policy", Err: err}
	}
	if u.Policy.MaxUsers != nil && s.nonBanned() > *u.Policy.MaxUsers {
		return reject(ReasonLimitExceeded, "room already has %d users", s.nonBanned())
	}
	s.base = u.Policy.clone()
	return nil
}

func (s *State) applyJoinRule(a Actor, u *JoinRuleUpdate) error {
	if _, err := s.requireCap(a, CanChangeRoomMembershipStyle); err != nil {
		return err
	}
	if err := s.validateJoinRule(u.JoinRule); err != nil {
		return &RejectError{Reason: ReasonMalformed, Detail: "join rule", Err: err}
	}
	s.joinRule = u.JoinRule
	return nil
}

// vacatedOnly reports whether u only removes vacated servers: servers of
// s whose domain is the home of no listed user (of any role, banned
// included), changed by a participant. Such a removal needs no
// canChangeServers: MIMI (protocol-06 Section 7.4) requires a follower to
// be taken out when its last user leaves, so it is a consequence of that
// user's departure, not a governance decision, and a commit that removes
// the last user of a domain (a kick, or the commit of a leaver's
// SelfRemove, whose committer may hold no server rights) takes the server
// out with it. A server with a user in the room still needs the
// capability.
func (s *State) vacatedOnly(a Actor, u *ServersUpdate) bool {
	if len(u.Added) != 0 || u.HubCandidates != nil || len(u.Removed) == 0 {
		return false
	}
	if _, err := s.actorRole(a); err != nil {
		return false
	}
	for _, id := range u.Removed {
		sv, ok := s.Server(id)
		if !ok {
			return false
		}
		for _, p := range s.participants {
			if p.User.Domain() == sv.Domain {
				return false
			}
		}
	}
	return true
}

func (s *State) applyServers(a Actor, u *ServersUpdate) error {
	if len(u.Removed)+len(u.Added) == 0 && u.HubCandidates == nil {
		return reject(ReasonMalformed, "empty servers update")
	}
	if a.Kind == ActorServer {
		if len(u.Added) != 0 || u.HubCandidates != nil || len(u.Removed) != 1 || u.Removed[0] != a.Server {
			return reject(ReasonNotAllowed, "a server may only remove itself")
		}
	} else {
		if len(u.Removed)+len(u.Added) > 0 && !s.vacatedOnly(a, u) {
			if _, err := s.requireCap(a, CanChangeServers); err != nil {
				return err
			}
		}
		if u.HubCandidates != nil {
			if _, err := s.requireCap(a, CanChangeHubCandidates); err != nil {
				return err
			}
		}
	}
	seen := make(map[ServerID]bool)
	for _, id := range u.Removed {
		if seen[id] {
			return reject(ReasonMalformed, "server %x named twice", id[:4])
		}
		seen[id] = true
		if _, ok := s.Server(id); !ok {
			return reject(ReasonUnknownUser, "server %x is not participating", id[:4])
		}
		s.servers = slices.DeleteFunc(s.servers, func(sv Server) bool { return sv.ID == id })
		s.hubCandidates = slices.DeleteFunc(s.hubCandidates, func(c ServerID) bool { return c == id })
	}
	for _, sv := range u.Added {
		if seen[sv.ID] {
			return reject(ReasonMalformed, "server %x named twice", sv.ID[:4])
		}
		seen[sv.ID] = true
		if !validDomain(sv.Domain) {
			return reject(ReasonMalformed, "server domain %q", sv.Domain)
		}
		if _, ok := s.Server(sv.ID); ok {
			return reject(ReasonInvalidTransition, "server %x is already participating", sv.ID[:4])
		}
		s.servers = append(s.servers, sv)
	}
	slices.SortFunc(s.servers, func(x, y Server) int { return bytes.Compare(x.ID[:], y.ID[:]) })
	if len(s.servers) == 0 {
		return reject(ReasonLimitExceeded, "a room needs at least one server")
	}
	if u.HubCandidates != nil {
		if err := s.validateHubCandidates(*u.HubCandidates); err != nil {
			return err
		}
		s.hubCandidates = slices.Clone(*u.HubCandidates)
	}
	return nil
}
