package roomstate

import (
	"fmt"
	"slices"
)

// ClientID identifies one MLS client (device), for example the MIMI client
// URI "mimi://example.com/d/alice/phone" from its credential.
type ClientID string

// Client is one member of the room's MLS group as room state sees it: the
// client and the user it belongs to (both from its credential).
type Client struct {
	ID   ClientID
	User URI
}

// SenderKind is the MLS sender type of a proposal or commit (RFC 9420,
// Section 6: member, external, new_member_proposal, new_member_commit).
type SenderKind uint8

// The sender kinds.
const (
	SenderMember            SenderKind = 1
	SenderExternal          SenderKind = 2
	SenderNewMemberProposal SenderKind = 3
	SenderNewMemberCommit   SenderKind = 4
)

// Sender says who sent an MLS proposal or commit.
type Sender struct {
	Kind SenderKind
	// Client and User identify a member or new-member sender.
	Client ClientID
	User   URI
	// Server identifies an external sender: one of the room's servers
	// (RFC 9420, Section 12.1.8.1; servers are never members).
	Server ServerID
}

// MemberSender returns the Sender for member client c.
func MemberSender(c Client) Sender { return Sender{Kind: SenderMember, Client: c.ID, User: c.User} }

// ServerSender returns the Sender for server id acting as external sender.
func ServerSender(id ServerID) Sender { return Sender{Kind: SenderExternal, Server: id} }

// ProposalType is the type of an MLS proposal (RFC 9420 Section 12.1 and
// draft-ietf-mls-extensions).
type ProposalType uint8

// The proposal types room state distinguishes.
const (
	ProposalAdd ProposalType = iota + 1
	ProposalUpdate
	ProposalRemove
	ProposalPSK
	ProposalReInit
	ProposalExternalInit
	ProposalGroupContextExtensions
	ProposalAppDataUpdate
	ProposalAppEphemeral
	ProposalSelfRemove
)

var proposalNames = [...]string{
	ProposalAdd: "Add", ProposalUpdate: "Update", ProposalRemove: "Remove", ProposalPSK: "PSK",
	ProposalReInit: "ReInit", ProposalExternalInit: "ExternalInit",
	ProposalGroupContextExtensions: "GroupContextExtensions", ProposalAppDataUpdate: "AppDataUpdate",
	ProposalAppEphemeral: "AppEphemeral", ProposalSelfRemove: "SelfRemove",
}

// String returns the proposal type's RFC name.
func (t ProposalType) String() string {
	if int(t) < len(proposalNames) && proposalNames[t] != "" {
		return proposalNames[t]
	}
	return fmt.Sprintf("ProposalType(%d)", uint8(t))
}

// Proposal summarizes one MLS proposal for authorization. The mls layer
// resolves leaf indices and credentials into Clients before asking.
type Proposal struct {
	Type   ProposalType
	Sender Sender
	// Client is the added client (Add) or the removed client (Remove).
	Client Client
	// Component and Update are the AppDataUpdate's component_id and update
	// (op update(1)); remove(2) operations are not used for room state.
	Component ComponentID
	Update    []byte
}

// Commit summarizes an MLS commit: its committer and every proposal it
// covers (by value or by reference), in commit order.
type Commit struct {
	Committer Sender
	Proposals []Proposal
}

// AuthorizeCommit checks commit c against state s and the MLS group's
// current members (roster), and returns the room state and the members after
// it. It is what every server and client runs before accepting a commit.
// Rules:
//
//   - Only members, or a new member joining by external commit, commit;
//     a member whose user is removed or banned may not commit.
//   - Each proposal's sender must be eligible: a server (external sender)
//     must participate and may send only Remove and AppDataUpdate; clients
//     of removed or banned users may send only Remove (of their own
//     clients) and SelfRemove (protocol-06 Section 5.3).
//   - AppDataUpdates apply in commit order through [ApplyUpdate], with the
//     proposal's sender as actor. A user is touched at most once; role
//     definitions and pre-authorization do not change together with the
//     participant list (room-policy Sections 3 and 4); at most one metadata
//     update (protocol-06 Section 7.6).
//   - Adding a client of user U needs U in the participant list after the
//     commit; if U was not listed before, the participant add in the same
//     commit authorizes the client adds (room-policy Section 8.1.1);
//     otherwise the adder must be U's own client with canAddOwnClient, or
//     hold canAddParticipant with a 0 -> role(U) transition.
//   - Removing a client of a user who stays listed needs canRemoveOwnClient
//     (own client), canKick (another user's), or, for a server, that the
//     user is on the server's domain. After the commit no removed or banned
//     user (no role that allows clients) has clients left.
//   - Active-participant limits of each role, the base policy's
//     multi_device and max_clients hold after the commit.
//
// On rejection, s and roster are unchanged and the error is a *RejectError.
func AuthorizeCommit(s *State, roster []Client, c Commit) (*State, []Client, error) {
	if s == nil {
		return nil, nil, reject(ReasonMalformed, "nil state")
	}
	members := make(map[ClientID]URI, len(roster))
	for _, m := range roster {
		members[m.ID] = m.User
	}
	// The committer.
	switch c.Committer.Kind {
	case SenderMember:
		if err := s.checkMemberSender(members, c.Committer); err != nil {
			return nil, nil, err
		}
		if err := s.checkActiveUser(c.Committer.User, "commit"); err != nil {
			return nil, nil, err
		}
	case SenderNewMemberCommit:
		if _, ok := members[c.Committer.Client]; ok {
			return nil, nil, reject(ReasonMalformed, "external committer %s is already a member", c.Committer.Client)
		}
		if !ValidUserURI(c.Committer.User) {
			return nil, nil, reject(ReasonMalformed, "external committer user %q", c.Committer.User)
		}
		inits := 0
		for _, p := range c.Proposals {
			if p.Type == ProposalExternalInit {
				inits++
			}
		}
		if inits != 1 {
			return nil, nil, reject(ReasonMalformed, "external commit needs exactly one ExternalInit")
		}
	default:
		return nil, nil, reject(ReasonNotAllowed, "sender kind %d may not commit", c.Committer.Kind)
	}
	for i, p := range c.Proposals {
		if err := s.checkProposalSender(members, c.Committer, p); err != nil {
			return nil, nil, fmt.Errorf("proposal %d (%s): %w", i, p.Type, err)
		}
	}

	// Room-state changes, in commit order (draft-ietf-mls-extensions
	// Section 4.7 processes AppDataUpdates after the RFC 9420 proposals;
	// their effect on room state does not depend on the roster).
	next := s
	touched := make(map[URI]bool)
	var rolesUpd, preauthUpd, participantUpd, nonRemoval, policyUpd bool
	metadataUpd := 0
	for i, p := range c.Proposals {
		if p.Type != ProposalAppDataUpdate {
			continue
		}
		op, err := DecodeOp(next, p.Component, p.Update)
		if err != nil {
			return nil, nil, fmt.Errorf("proposal %d (AppDataUpdate): %w", i, err)
		}
		switch o := op.(type) {
		case *ParticipantUpdate:
			participantUpd = true
			users := slices.Concat(userRoles(o.RoleChanges), o.Removed, userRoles(o.Added))
			if len(o.RoleChanges)+len(o.Added) > 0 {
				nonRemoval = true
			}
			for _, u := range users {
				if touched[u] {
					return nil, nil, reject(ReasonMalformed, "commit touches %s more than once", u)
				}
				touched[u] = true
			}
		case *RolesUpdate:
			rolesUpd = true
		case *PreAuthUpdate:
			preauthUpd = true
		case *MetadataUpdate:
			metadataUpd++
		case *BasePolicyUpdate:
			policyUpd = true
		}
		next, err = Apply(next, Change{Actor: actorOf(p.Sender), Op: op})
		if err != nil {
			return nil, nil, fmt.Errorf("proposal %d (AppDataUpdate): %w", i, err)
		}
	}
	switch {
	case rolesUpd && participantUpd:
		return nil, nil, reject(ReasonMalformed, "role definitions and the participant list change in one commit")
	case preauthUpd && nonRemoval:
		return nil, nil, reject(ReasonMalformed, "pre-authorization and participant additions or role changes in one commit")
	case metadataUpd > 1:
		return nil, nil, reject(ReasonMalformed, "more than one room metadata update in one commit")
	}

	// The roster: removals, then additions (RFC 9420 Section 12.3).
	type add struct {
		client Client
		by     Sender
	}
	removed := make(map[ClientID]Sender)
	var adds []add
	for _, p := range c.Proposals {
		switch p.Type {
		case ProposalRemove, ProposalSelfRemove:
			target := p.Client
			if p.Type == ProposalSelfRemove {
				target = Client{ID: p.Sender.Client, User: p.Sender.User}
			}
			user, ok := members[target.ID]
			if !ok {
				return nil, nil, reject(ReasonUnknownUser, "removed client %s is not a member", target.ID)
			}
			if user != target.User {
				return nil, nil, reject(ReasonMalformed, "client %s belongs to %s, not %s", target.ID, user, target.User)
			}
			if _, dup := removed[target.ID]; dup {
				return nil, nil, reject(ReasonMalformed, "client %s removed twice", target.ID)
			}
			removed[target.ID] = p.Sender
		case ProposalAdd:
			adds = append(adds, add{client: p.Client, by: p.Sender})
		}
	}
	if c.Committer.Kind == SenderNewMemberCommit {
		adds = append(adds, add{client: Client{ID: c.Committer.Client, User: c.Committer.User}, by: c.Committer})
	}
	after := make([]Client, 0, len(roster)+len(adds))
	for _, m := range roster {
		if _, gone := removed[m.ID]; !gone {
			after = append(after, m)
		}
	}
	present := make(map[ClientID]bool, len(after))
	for _, m := range after {
		present[m.ID] = true
	}
	for _, a := range adds {
		if !ValidUserURI(a.client.User) || a.client.ID == "" {
			return nil, nil, reject(ReasonMalformed, "added client %q of %q", a.client.ID, a.client.User)
		}
		if present[a.client.ID] {
			return nil, nil, reject(ReasonMalformed, "client %s added twice or already a member", a.client.ID)
		}
		present[a.client.ID] = true
		after = append(after, a.client)
	}

	// Client additions.
	for _, a := range adds {
		if err := authorizeClientAdd(s, next, a.client, a.by); err != nil {
			return nil, nil, err
		}
	}
	// Client removals, in roster order for a deterministic first error.
	for _, m := range roster {
		by, ok := removed[m.ID]
		if !ok {
			continue
		}
		if err := authorizeClientRemove(next, m, by); err != nil {
			return nil, nil, err
		}
	}
	// Completeness: removed and banned users keep no clients
	// (protocol-06 Section 5.3, room-policy Section 8.1.2).
	for _, m := range after {
		if r := next.role(next.RoleOf(m.User)); r == nil || r.Index == RoleNone || !r.allowsClients() {
			return nil, nil, reject(ReasonIncomplete, "client %s of %s remains but %s may not have clients", m.ID, m.User, m.User)
		}
	}
	if err := checkClientLimits(s, roster, next, after); err != nil {
		return nil, nil, err
	}
	if rolesUpd || policyUpd {
		// New limits apply in full to the group as the commit leaves it
		// (for example multi_device turned off while a user has two
		// clients: the same commit must remove the extra ones).
		if err := checkClientLimits(next, nil, next, after); err != nil {
			return nil, nil, err
		}
	}
	return next, after, nil
}

// AuthorizeProposal checks a proposal received on its own (by reference),
// before any commit covers it: its sender's eligibility and, for an
// AppDataUpdate, that it applies to s (protocol-06 Section 7.1: the hub
// judges state changes when it accepts the proposal). Adds and Removes can
// only be fully judged with their commit ([AuthorizeCommit]).
func AuthorizeProposal(s *State, roster []Client, p Proposal) error {
	members := make(map[ClientID]URI, len(roster))
	for _, m := range roster {
		members[m.ID] = m.User
	}
	if err := s.checkProposalSender(members, Sender{}, p); err != nil {
		return err
	}
	if p.Type == ProposalAppDataUpdate {
		_, err := ApplyUpdate(s, actorOf(p.Sender), p.Component, p.Update)
		return err
	}
	return nil
}

// AuthorizeMessage checks that member client may send an application
// message: it is a member, its user is an active participant and not
// banned, and its role holds canSendMessage (room-policy Section 8.3: the
// one message capability servers can enforce).
func AuthorizeMessage(s *State, roster []Client, client ClientID) error {
	i := slices.IndexFunc(roster, func(m Client) bool { return m.ID == client })
	if i < 0 {
		return reject(ReasonUnknownUser, "client %s is not a member", client)
	}
	user := roster[i].User
	if err := s.checkActiveUser(user, "send"); err != nil {
		return err
	}
	if !s.Has(user, CanSendMessage) {
		return reject(ReasonNotAllowed, "%s lacks canSendMessage", user)
	}
	return nil
}

// checkActiveUser rejects users who are banned or not listed.
func (s *State) checkActiveUser(user URI, what string) error {
	switch s.RoleOf(user) {
	case RoleBanned:
		return reject(ReasonBanned, "%s is banned and may not %s", user, what)
	case RoleNone:
		return reject(ReasonNotAllowed, "%s is not a participant and may not %s", user, what)
	}
	return nil
}

func (s *State) checkMemberSender(members map[ClientID]URI, snd Sender) error {
	user, ok := members[snd.Client]
	if !ok {
		return reject(ReasonUnknownUser, "sender %s is not a member", snd.Client)
	}
	if user != snd.User {
		return reject(ReasonMalformed, "sender %s belongs to %s, not %s", snd.Client, user, snd.User)
	}
	return nil
}

// checkProposalSender applies the per-sender rules to one proposal.
// committer is the commit's committer (zero for a standalone proposal).
func (s *State) checkProposalSender(members map[ClientID]URI, committer Sender, p Proposal) error {
	snd := p.Sender
	switch snd.Kind {
	case SenderExternal:
		if _, ok := s.Server(snd.Server); !ok {
			return reject(ReasonUnknownUser, "external sender %x is not a participating server", snd.Server[:4])
		}
		// RFC 9420 Section 12.1.8 and mls-extensions allow external Add,
		// Remove, PSK, ReInit, GroupContextExtensions, AppDataUpdate and
		// AppEphemeral; Rhizome servers need and may use only two.
		if p.Type != ProposalRemove && p.Type != ProposalAppDataUpdate {
			return reject(ReasonNotAllowed, "a server may not send %s", p.Type)
		}
		return nil
	case SenderNewMemberCommit:
		if committer.Kind != SenderNewMemberCommit || snd != committer {
			return reject(ReasonMalformed, "new_member_commit sender outside its external commit")
		}
		switch p.Type {
		case ProposalExternalInit, ProposalAppDataUpdate, ProposalPSK:
			return nil
		case ProposalRemove:
			// Resync: a rejoining client removes its user's stale clients.
			if p.Client.User != snd.User {
				return reject(ReasonNotAllowed, "an external commit may remove only its own user's clients")
			}
			return nil
		}
		return reject(ReasonNotAllowed, "an external commit may not carry %s", p.Type)
	case SenderNewMemberProposal:
		if p.Type != ProposalAdd || p.Client.ID != snd.Client || p.Client.User != snd.User {
			return reject(ReasonNotAllowed, "a new_member_proposal may only add its sender")
		}
		return nil
	case SenderMember:
	default:
		return reject(ReasonMalformed, "sender kind %d", snd.Kind)
	}
	if err := s.checkMemberSender(members, snd); err != nil {
		return err
	}
	if role := s.RoleOf(snd.User); role == RoleNone || role == RoleBanned {
		// protocol-06 Section 5.3: removed or banned users' clients may
		// only send Remove and SelfRemove, for their own clients.
		if p.Type == ProposalSelfRemove || (p.Type == ProposalRemove && p.Client.User == snd.User) {
			return nil
		}
		if role == RoleBanned {
			return reject(ReasonBanned, "%s is banned and may only remove its own clients", snd.User)
		}
		return reject(ReasonNotAllowed, "%s was removed and may only remove its own clients", snd.User)
	}
	switch p.Type {
	case ProposalExternalInit:
		return reject(ReasonMalformed, "ExternalInit from a member")
	case ProposalReInit:
		if !s.Has(snd.User, CanSendMLSReinitProposal) {
			return reject(ReasonNotAllowed, "%s lacks canSendMLSReinitProposal", snd.User)
		}
	case ProposalGroupContextExtensions:
		// Room state changes only through AppDataUpdate; GCE is left for
		// external_senders, which follows the server set.
		if !s.Has(snd.User, CanChangeServers) {
			return reject(ReasonNotAllowed, "%s lacks canChangeServers for GroupContextExtensions", snd.User)
		}
	}
	return nil
}

// authorizeClientAdd decides whether sender by may add client c, given the
// state before (prev) and after (next) the commit's room-state changes.
func authorizeClientAdd(prev, next *State, c Client, by Sender) error {
	roleAfter := next.RoleOf(c.User)
	switch roleAfter {
	case RoleNone:
		return reject(ReasonIncomplete, "adds client %s of %s without adding %s to the participant list", c.ID, c.User, c.User)
	case RoleBanned:
		return reject(ReasonBanned, "adds client %s of banned %s", c.ID, c.User)
	}
	r := next.role(roleAfter)
	if !r.allowsClients() {
		return reject(ReasonNotAllowed, "role %q of %s allows no clients", r.Name, c.User)
	}
	if prev.RoleOf(c.User) == RoleNone {
		return nil // the participant add in this commit authorizes the clients
	}
	switch {
	case by.Kind == SenderExternal:
		return reject(ReasonNotAllowed, "servers may not add clients")
	case by.User == c.User:
		if !next.Has(c.User, CanAddOwnClient) {
			return reject(ReasonNotAllowed, "%s lacks canAddOwnClient", c.User)
		}
	default:
		ar := next.role(next.RoleOf(by.User))
		if ar == nil || !ar.Has(CanAddParticipant) || !ar.CanMove(RoleNone, roleAfter) {
			return reject(ReasonNotAllowed, "%s may not add clients of %s", by.User, c.User)
		}
	}
	return nil
}

// authorizeClientRemove decides whether sender by may remove member m.
func authorizeClientRemove(next *State, m Client, by Sender) error {
	if r := next.role(next.RoleOf(m.User)); r == nil || r.Index == RoleNone || !r.allowsClients() {
		return nil // required: the user is removed or banned in this commit
	}
	switch {
	case by.Kind == SenderExternal:
		sv, _ := next.Server(by.Server)
		if m.User.Domain() != sv.Domain {
			return reject(ReasonNotAllowed, "server of %s may not remove clients of %s", sv.Domain, m.User)
		}
	case by.User == m.User:
		if !next.Has(m.User, CanRemoveOwnClient) {
			return reject(ReasonNotAllowed, "%s lacks canRemoveOwnClient", m.User)
		}
	default:
		if !next.Has(by.User, CanKick) {
			return reject(ReasonNotAllowed, "%s lacks canKick", by.User)
		}
	}
	return nil
}

// checkClientLimits enforces per-role active participant limits, the base
// policy's multi_device and max_clients, comparing before and after so that
// a commit is only blamed for limits it moves towards violating.
func checkClientLimits(prev *State, before []Client, next *State, after []Client) error {
	activeBefore, perUserBefore := activeCounts(prev, before)
	activeAfter, perUserAfter := activeCounts(next, after)
	for _, r := range next.roles {
		b, a := activeBefore[r.Index], activeAfter[r.Index]
		if a > b && r.MaxActive != nil && a > *r.MaxActive {
			return reject(ReasonLimitExceeded, "role %q allows at most %d active participants", r.Name, *r.MaxActive)
		}
		if a < b && a < r.MinActive {
			return reject(ReasonLimitExceeded, "role %q needs at least %d active participants", r.Name, r.MinActive)
		}
	}
	if !next.base.MultiDevice {
		for _, m := range after {
			if n := perUserAfter[m.User]; n > 1 && n > perUserBefore[m.User] {
				return reject(ReasonLimitExceeded, "single-device room: %s would have %d clients", m.User, n)
			}
		}
	}
	if mc := next.base.MaxClients; mc != nil && len(after) > len(before) && uint32(len(after)) > *mc {
		return reject(ReasonLimitExceeded, "room allows at most %d clients", *mc)
	}
	return nil
}

// activeCounts returns the number of active users per role and the number
// of clients per user.
func activeCounts(s *State, roster []Client) (map[RoleIndex]uint32, map[URI]uint32) {
	perUser := make(map[URI]uint32)
	for _, m := range roster {
		perUser[m.User]++
	}
	perRole := make(map[RoleIndex]uint32)
	counted := make(map[URI]bool, len(perUser))
	for _, m := range roster {
		if !counted[m.User] {
			counted[m.User] = true
			perRole[s.RoleOf(m.User)]++
		}
	}
	return perRole, perUser
}

func actorOf(snd Sender) Actor {
	if snd.Kind == SenderExternal {
		return ServerActor(snd.Server)
	}
	return UserActor(snd.User, snd.Client)
}

func userRoles(urs []UserRole) []URI {
	out := make([]URI, len(urs))
	for i, ur := range urs {
		out[i] = ur.User
	}
	return out
}

// SameRoster reports whether rosters a and b hold the same clients, in any
// order (MLS fills blank leaves first, so a group's leaf order need not be
// the order AuthorizeCommit lists the roster in): servers and clients hold
// the group a commit leaves to the roster AuthorizeCommit authorized.
func SameRoster(a, b []Client) bool {
	if len(a) != len(b) {
		return false
	}
	n := make(map[Client]int, len(a))
	for _, c := range a {
		n[c]++
	}
	for _, c := range b {
		if n[c]--; n[c] < 0 {
			return false
		}
	}
	return true
}

// CheckRoster checks that the MLS group's members agree with state s: no
// client twice, every client belongs to a listed user whose role allows
// clients, and the active-participant limits, multi_device and max_clients
// hold. Use it for the initial members of a new room (which no commit
// authorizes) and for a state received in a Welcome.
func CheckRoster(s *State, roster []Client) error {
	seen := make(map[ClientID]bool, len(roster))
	for _, m := range roster {
		if seen[m.ID] || m.ID == "" {
			return reject(ReasonMalformed, "client %q listed twice or empty", m.ID)
		}
		seen[m.ID] = true
		r := s.role(s.RoleOf(m.User))
		switch {
		case r == nil || r.Index == RoleNone:
			return reject(ReasonUnknownUser, "client %s belongs to %s, who is not a participant", m.ID, m.User)
		case r.Index == RoleBanned:
			return reject(ReasonBanned, "client %s belongs to banned %s", m.ID, m.User)
		case !r.allowsClients():
			return reject(ReasonNotAllowed, "role %q of %s allows no clients", r.Name, m.User)
		}
	}
	// Compare against an empty group: every limit counts.
	return checkClientLimits(s, nil, s, roster)
}
