package roomstate

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// apply runs a state-only change through Apply and, as a cross-check,
// through its wire form (EncodeOp + ApplyUpdate); both must agree.
func (h *harness) apply(a Actor, op Op) error {
	h.t.Helper()
	next, err := Apply(h.state, Change{Actor: a, Op: op})
	id, upd, encErr := EncodeOp(h.state, op)
	if encErr == nil {
		viaWire, wireErr := ApplyUpdate(h.state, a, id, upd)
		if (err == nil) != (wireErr == nil) || ReasonOf(err) != ReasonOf(wireErr) {
			h.fatalf("Apply and ApplyUpdate disagree: %v vs %v", err, wireErr)
		}
		if err == nil && !viaWire.Equal(next) {
			h.fatalf("Apply and ApplyUpdate give different states")
		}
	} else if err == nil {
		h.fatalf("Apply accepted a change EncodeOp refuses: %v", encErr)
	}
	// The realistic path: the actor's client commits the change as an
	// AppDataUpdate. AuthorizeCommit must agree with Apply, except that it
	// may also refuse for reasons only the MLS group shows (client limits).
	if cs := h.clientsOf(a.User); len(cs) > 0 && a.Kind == ActorUser && encErr == nil {
		snd := MemberSender(cs[0])
		if i := slices.IndexFunc(cs, func(c Client) bool { return c.ID == a.Client }); i >= 0 {
			snd = MemberSender(cs[i])
		}
		h.viaCommit++
		viaCommit, _, cerr := AuthorizeCommit(h.state, h.roster, Commit{Committer: snd, Proposals: []Proposal{
			{Type: ProposalAppDataUpdate, Sender: snd, Component: id, Update: upd},
		}})
		switch {
		case err != nil && ReasonOf(cerr) != ReasonOf(err):
			h.fatalf("Apply refused with %s but the commit gave %v", ReasonOf(err), cerr)
		case err == nil && cerr == nil && !viaCommit.Equal(next):
			h.fatalf("Apply and AuthorizeCommit give different states")
		case err == nil && cerr != nil:
			return cerr
		}
	}
	if err != nil {
		return err
	}
	h.state = next
	return nil
}

// applyOnly applies a change without any commit, as a server does when it
// accepts a proposal before a commit covers it (protocol-06 Section 7.1).
func (h *harness) applyOnly(a Actor, op Op) error {
	next, err := Apply(h.state, Change{Actor: a, Op: op})
	if err != nil {
		return err
	}
	h.state = next
	return nil
}

// commit runs a commit description through AuthorizeCommit.
func (h *harness) commit(c Commit) error {
	h.t.Helper()
	next, roster, err := AuthorizeCommit(h.state, h.roster, c)
	if err != nil {
		return err
	}
	// Invariant: an accepted commit leaves members and state consistent.
	if err := CheckRoster(next, roster); err != nil {
		h.fatalf("accepted commit left an inconsistent group: %v", err)
	}
	h.state, h.roster = next, roster
	return nil
}

// appData builds an AppDataUpdate proposal from sender for op. Encoding
// fails for a participant update naming a user who is not listed (the wire
// form refers to users by list index); that is the sender's error, so it is
// returned like a rejection.
func (h *harness) appData(snd Sender, op Op) (Proposal, error) {
	h.t.Helper()
	id, upd, err := EncodeOp(h.state, op)
	if err != nil {
		return Proposal{}, err
	}
	return Proposal{Type: ProposalAppDataUpdate, Sender: snd, Component: id, Update: upd}, nil
}

func (h *harness) removes(snd Sender, user URI, keep string) []Proposal {
	var ps []Proposal
	for _, c := range h.clientsOf(user) {
		if keep != "" && c == clientOf(keep) {
			continue
		}
		ps = append(ps, Proposal{Type: ProposalRemove, Sender: snd, Client: c})
	}
	return ps
}

func (h *harness) do(actor, cmd string, args []string) error {
	h.t.Helper()
	m, pos := kv(args)
	arg := func(i int) string {
		if i >= len(pos) {
			h.fatalf("%s: missing argument %d", cmd, i+1)
		}
		return pos[i]
	}
	if strings.HasPrefix(actor, "@") {
		return h.doServer(serverID(actor[1:]), cmd, m, arg)
	}
	userName, _, _ := strings.Cut(actor, "/")
	user := userURI(userName)
	client, active := h.actorClient(actor)
	act := UserActor(user, client.ID)
	mustClient := func() Sender {
		if !active {
			h.fatalf("%s has no client in the group", actor)
		}
		return MemberSender(client)
	}
	roleArg := func(def string) RoleIndex {
		if v, ok := m["as"]; ok {
			return h.role(v)
		}
		return h.role(def)
	}
	switch cmd {
	case "invite":
		return h.apply(act, &ParticipantUpdate{Added: []UserRole{{userURI(arg(0)), roleArg("member")}}})
	case "add":
		snd := mustClient()
		target := arg(0)
		pa, err := h.appData(snd, &ParticipantUpdate{Added: []UserRole{{userURI(target), roleArg("member")}}})
		if err != nil {
			return err
		}
		ps := []Proposal{pa}
		for _, d := range devices(target, m["devices"]) {
			ps = append(ps, Proposal{Type: ProposalAdd, Sender: snd, Client: clientOf(d)})
		}
		return h.commit(Commit{Committer: snd, Proposals: ps})
	case "add-clients":
		snd := mustClient()
		var ps []Proposal
		for _, d := range devices(arg(0), m["devices"]) {
			ps = append(ps, Proposal{Type: ProposalAdd, Sender: snd, Client: clientOf(d)})
		}
		return h.commit(Commit{Committer: snd, Proposals: ps})
	case "add-device":
		snd := mustClient()
		return h.commit(Commit{Committer: snd, Proposals: []Proposal{
			{Type: ProposalAdd, Sender: snd, Client: clientOf(userName + "/" + arg(0))},
		}})
	case "join", "knock":
		to := roleArg("member")
		if cmd == "knock" {
			to = h.state.JoinRule().KnockRole
		}
		op := &ParticipantUpdate{Added: []UserRole{{user, to}}}
		devs := devices(userName, m["devices"])
		if len(devs) == 0 {
			return h.apply(act, op)
		}
		// External commit by the joining client (protocol-06 Section 3.6).
		c := clientOf(devs[0])
		snd := Sender{Kind: SenderNewMemberCommit, Client: c.ID, User: c.User}
		pa, err := h.appData(snd, op)
		if err != nil {
			return err
		}
		return h.commit(Commit{Committer: snd, Proposals: []Proposal{{Type: ProposalExternalInit, Sender: snd}, pa}})
	case "rejoin-device":
		// External commit of a new client of an already listed user.
		c := clientOf(userName + "/" + arg(0))
		snd := Sender{Kind: SenderNewMemberCommit, Client: c.ID, User: c.User}
		return h.commit(Commit{Committer: snd, Proposals: []Proposal{{Type: ProposalExternalInit, Sender: snd}}})
	case "accept", "promote", "demote", "unban", "set-role-of":
		to := roleArg("member")
		if len(pos) > 1 {
			to = h.role(pos[1])
		}
		return h.apply(act, &ParticipantUpdate{RoleChanges: []UserRole{{userURI(arg(0)), to}}})
	case "refuse":
		return h.apply(act, &ParticipantUpdate{Removed: []URI{userURI(arg(0))}})
	case "kick":
		snd := mustClient()
		return h.commit(Commit{Committer: snd, Proposals: h.removes(snd, userURI(arg(0)), m["keep"])})
	case "preban":
		// Ban a user who is not listed (canBan with 0 -> banned).
		return h.apply(act, &ParticipantUpdate{Added: []UserRole{{userURI(arg(0)), RoleBanned}}})
	case "remove", "ban", "remove-only", "ban-only":
		// The -only forms apply the participant change alone, as a server
		// does when it accepts the proposal before any commit covers it
		// (protocol-06 Section 7.1).
		only := strings.HasSuffix(cmd, "-only")
		cmd = strings.TrimSuffix(cmd, "-only")
		target := userURI(arg(0))
		op := &ParticipantUpdate{Removed: []URI{target}}
		if cmd == "ban" {
			op = &ParticipantUpdate{RoleChanges: []UserRole{{target, RoleBanned}}}
		}
		if only {
			return h.applyOnly(act, op)
		}
		if !active {
			return h.apply(act, op)
		}
		snd := MemberSender(client)
		pa, err := h.appData(snd, op)
		if err != nil {
			return err
		}
		ps := append([]Proposal{pa}, h.removes(snd, target, m["keep"])...)
		return h.commit(Commit{Committer: snd, Proposals: ps})
	case "leave":
		op := &ParticipantUpdate{Removed: []URI{user}}
		mine := h.clientsOf(user)
		if len(mine) == 0 {
			return h.apply(act, op)
		}
		// The leaver proposes; another member commits (protocol-06 Section 3.5).
		pa, err := h.appData(MemberSender(mine[0]), op)
		if err != nil {
			return err
		}
		ps := []Proposal{pa}
		for _, c := range mine {
			ps = append(ps, Proposal{Type: ProposalSelfRemove, Sender: MemberSender(c)})
		}
		return h.commit(Commit{Committer: MemberSender(h.otherCommitter(user)), Proposals: ps})
	case "remove-device":
		snd := mustClient()
		return h.commit(Commit{Committer: snd, Proposals: []Proposal{
			{Type: ProposalRemove, Sender: snd, Client: clientOf(userName + "/" + arg(0))},
		}})
	case "send":
		if !active {
			return AuthorizeMessage(h.state, h.roster, clientOf(userName+"/none").ID)
		}
		return AuthorizeMessage(h.state, h.roster, client.ID)
	case "commit":
		snd := mustClient()
		return h.commit(Commit{Committer: snd, Proposals: []Proposal{{Type: ProposalUpdate, Sender: snd}}})
	case "propose":
		snd := mustClient()
		p := Proposal{Type: proposalType(h, arg(0)), Sender: snd}
		if v, ok := m["client"]; ok {
			p.Client = clientOf(v)
		}
		return AuthorizeProposal(h.state, h.roster, p)
	case "set":
		return h.set(act, arg(0), arg(1))
	case "set-role":
		return h.setRole(act, arg(0), m)
	case "preauth":
		rules := h.state.PreAuth()
		if len(pos) > 0 && pos[0] == "clear" {
			rules = nil
		} else {
			var c Claim
			if d, ok := m["domain"]; ok {
				c = Claim{CredentialType: CredentialTypeBasic, ID: ClaimDomain, Value: d}
			} else {
				c = Claim{CredentialType: CredentialTypeBasic, ID: ClaimUser, Value: string(userURI(m["user"]))}
			}
			rules = append(rules, PreAuthRule{Claims: []Claim{c}, Role: h.role(m["role"])})
		}
		return h.apply(act, &PreAuthUpdate{Rules: rules})
	case "add-server":
		sv, ok := h.servers[arg(0)]
		if !ok {
			h.fatalf("undeclared server %q", arg(0))
		}
		return h.apply(act, &ServersUpdate{Added: []Server{sv}})
	case "remove-server":
		return h.apply(act, &ServersUpdate{Removed: h.serverList(arg(0))})
	case "hub-candidates":
		hc := h.serverList(arg(0))
		return h.apply(act, &ServersUpdate{HubCandidates: &hc})
	}
	h.fatalf("unknown command %q", cmd)
	return nil
}

func proposalType(h *harness, name string) ProposalType {
	for i, n := range proposalNames {
		if n == name {
			return ProposalType(i)
		}
	}
	h.fatalf("unknown proposal type %q", name)
	return 0
}

func (h *harness) serverList(spec string) []ServerID {
	if spec == "none" {
		return []ServerID{}
	}
	var out []ServerID
	for _, n := range strings.Split(spec, ",") {
		out = append(out, serverID(n))
	}
	return out
}

// doServer runs a command by a server acting as external sender.
func (h *harness) doServer(id ServerID, cmd string, m map[string]string, arg func(int) string) error {
	act := ServerActor(id)
	switch cmd {
	case "remove-server":
		return h.apply(act, &ServersUpdate{Removed: []ServerID{serverID(arg(0))}})
	case "add-server":
		return h.apply(act, &ServersUpdate{Added: []Server{h.servers[arg(0)]}})
	case "remove", "ban":
		target := userURI(arg(0))
		op := Op(&ParticipantUpdate{Removed: []URI{target}})
		if cmd == "ban" {
			op = &ParticipantUpdate{RoleChanges: []UserRole{{target, RoleBanned}}}
		}
		snd := ServerSender(id)
		pa, err := h.appData(snd, op)
		if err != nil {
			return err
		}
		ps := append([]Proposal{pa}, h.removes(snd, target, "")...)
		return h.commit(Commit{Committer: MemberSender(h.otherCommitter(target)), Proposals: ps})
	case "remove-client":
		c := clientOf(arg(0))
		return h.commit(Commit{Committer: MemberSender(h.otherCommitter(c.User)), Proposals: []Proposal{
			{Type: ProposalRemove, Sender: ServerSender(id), Client: c},
		}})
	case "propose":
		p := Proposal{Type: proposalType(h, arg(0)), Sender: ServerSender(id)}
		if v, ok := m["client"]; ok {
			p.Client = clientOf(v)
		}
		return AuthorizeProposal(h.state, h.roster, p)
	}
	h.fatalf("unknown server command %q", cmd)
	return nil
}

func (h *harness) set(act Actor, what, value string) error {
	md := h.state.Metadata()
	switch what {
	case "name":
		md.Name = value
	case "topic":
		md.Subject = value
	case "avatar":
		md.Avatar = URI(value)
	case "mood":
		md.Mood = value
	case "join-rule":
		jr := h.state.JoinRule()
		switch value {
		case "invite":
			jr.Rule = JoinInvite
		case "open":
			jr.Rule = JoinOpen
		case "knock":
			jr.Rule = JoinKnock
		default:
			h.fatalf("unknown join rule %q", value)
		}
		return h.apply(act, &JoinRuleUpdate{JoinRule: jr})
	case "max-users":
		p := h.state.BasePolicy()
		if value == "none" {
			p.MaxUsers = nil
		} else {
			n, _ := strconv.Atoi(value)
			p.MaxUsers = u32(uint32(n))
		}
		return h.apply(act, &BasePolicyUpdate{Policy: p})
	case "multi-device":
		p := h.state.BasePolicy()
		p.MultiDevice = value == "true"
		return h.apply(act, &BasePolicyUpdate{Policy: p})
	default:
		h.fatalf("unknown setting %q", what)
	}
	return h.apply(act, &MetadataUpdate{Metadata: md})
}

// setRole edits one role definition: max=N|none min=N max-active=N|none
// min-active=N add=cap remove=cap.
func (h *harness) setRole(act Actor, name string, m map[string]string) error {
	roles := h.state.Roles()
	idx := slices.IndexFunc(roles, func(r Role) bool { return r.Name == name })
	if idx < 0 {
		h.fatalf("unknown role %q", name)
	}
	r := &roles[idx]
	num := func(v string) *uint32 {
		if v == "none" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			h.fatalf("bad number %q", v)
		}
		return u32(uint32(n))
	}
	for k, v := range m {
		switch k {
		case "max":
			r.MaxParticipants = num(v)
		case "min":
			r.MinParticipants = *num(v)
		case "max-active":
			r.MaxActive = num(v)
		case "min-active":
			r.MinActive = *num(v)
		case "add", "remove":
			c, ok := ParseCapability(v)
			if !ok {
				h.fatalf("unknown capability %q", v)
			}
			if k == "add" {
				r.Capabilities = caps(r.Capabilities, []Capability{c})
			} else {
				r.Capabilities = slices.DeleteFunc(r.Capabilities, func(x Capability) bool { return x == c })
			}
		default:
			h.fatalf("unknown role field %q", k)
		}
	}
	return h.apply(act, &RolesUpdate{Roles: roles})
}

// expect checks an assertion about the current state:
//
//	expect participant U role=R | expect participant U absent
//	expect participants U=R,U=R,...     (the whole list, in order)
//	expect clients U N                  (U's clients in the MLS group)
//	expect members N                    (all clients in the MLS group)
//	expect join-rule R
//	expect name|topic|avatar "text"
//	expect servers a,b | expect hub-candidates a,b|none
//	expect equal CHECKPOINT | expect not-equal CHECKPOINT
//	expect roundtrip                    (components decode to an equal state)
func (h *harness) expect(w []string) {
	h.t.Helper()
	s := h.state
	m, pos := kv(w)
	switch pos[0] {
	case "participant":
		u := userURI(pos[1])
		got := s.RoleOf(u)
		if len(pos) > 2 && pos[2] == "absent" {
			if got != RoleNone {
				h.errorf("expect %s absent, has role %d", u, got)
			}
			return
		}
		if want := h.role(m["role"]); got != want {
			h.errorf("expect %s role %s (%d), got %d", u, m["role"], want, got)
		}
	case "participants":
		var parts []string
		for _, p := range s.Participants() {
			r, _ := s.Role(p.Role)
			parts = append(parts, shortName(p.User)+"="+r.Name)
		}
		want := w[1]
		if got := strings.Join(parts, ","); got != want {
			h.errorf("expect participants %s, got %s", want, got)
		}
	case "clients":
		n, _ := strconv.Atoi(pos[2])
		if got := len(h.clientsOf(userURI(pos[1]))); got != n {
			h.errorf("expect %d clients of %s, got %d", n, pos[1], got)
		}
	case "members":
		n, _ := strconv.Atoi(pos[1])
		if len(h.roster) != n {
			h.errorf("expect %d members, got %d", n, len(h.roster))
		}
	case "join-rule":
		if got := s.JoinRule().Rule.String(); got != pos[1] {
			h.errorf("expect join rule %s, got %s", pos[1], got)
		}
	case "name", "topic", "avatar":
		md := s.Metadata()
		got := map[string]string{"name": md.Name, "topic": md.Subject, "avatar": string(md.Avatar)}[pos[0]]
		if got != pos[1] {
			h.errorf("expect %s %q, got %q", pos[0], pos[1], got)
		}
	case "servers":
		var got []string
		for _, sv := range s.Servers() {
			got = append(got, strings.TrimRight(string(sv.ID[:]), "\x00"))
		}
		if strings.Join(got, ",") != pos[1] {
			h.errorf("expect servers %s, got %s", pos[1], strings.Join(got, ","))
		}
	case "hub-candidates":
		if !slices.Equal(s.HubCandidates(), h.serverList(pos[1])) {
			h.errorf("expect hub candidates %s, got %d entries", pos[1], len(s.HubCandidates()))
		}
	case "equal", "not-equal":
		cp, ok := h.checkpoints[pos[1]]
		if !ok {
			h.fatalf("no checkpoint %q", pos[1])
		}
		eq := s.Equal(cp.state)
		if encEq := bytes.Equal(h.encode(s), h.encode(cp.state)); eq != encEq {
			h.errorf("Equal (%v) and encoding equality (%v) disagree", eq, encEq)
		}
		if eq != (pos[0] == "equal") {
			h.errorf("expect %s %s: Equal is %v", pos[0], pos[1], eq)
		}
	case "roundtrip":
		cs, err := s.Components()
		if err != nil {
			h.fatalf("components: %v", err)
		}
		back, err := FromComponents(cs)
		if err != nil {
			h.fatalf("FromComponents: %v", err)
		}
		if !back.Equal(s) {
			h.errorf("round trip changed the state")
		}
	default:
		h.fatalf("unknown expectation %s", fmt.Sprint(w))
	}
}
