package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Own commits: built from a plan with seeded randomness (so the replay log
// can rebuild them), submitted, and followed until the canonical order
// applies them or they lose their slot and are rebuilt.

// buildCommit makes the commit of plan on the room's current epoch with
// seeded randomness, and the room-state changes stapled to it, planned on
// st: the state the commit is judged against (the epoch's with the state
// events it adopts; room.pendingState before it is submitted).
func (c *Client) buildCommit(r *room, st *roomstate.State, plan *commitPlan, seed []byte) (*mls.PendingCommit, []clientapi.Change, error) {
	changes, err := planChanges(st, actorJSON{User: c.id.UserURI, Client: c.id.DeviceURI}, plan)
	if err != nil {
		return nil, nil, err
	}
	inGroup := map[string]bool{}
	for _, l := range r.g.Members() {
		if d, ok := leafDevice(r.g, l); ok {
			inGroup[d] = true
		}
	}
	var props []mls.Proposal
	for _, raw := range plan.KeyPackages {
		m, err := mls.UnmarshalMLSMessage(raw)
		if err != nil || m.KeyPackage == nil {
			return nil, nil, fmt.Errorf("client: claimed KeyPackage does not decode: %v", err)
		}
		if inGroup[string(m.KeyPackage.LeafNode.Credential.Identity)] {
			continue
		}
		props = append(props, &mls.AddProposal{KeyPackage: *m.KeyPackage})
	}
	for _, u := range plan.Remove {
		for _, l := range r.g.Members() {
			if d, ok := leafDevice(r.g, l); ok && userOfDevice(d) == u {
				props = append(props, &mls.RemoveProposal{Removed: l})
			}
		}
	}
	byRef := plan.ByReference
	for _, u := range plan.Departed {
		if st.RoleOf(roomstate.URI(u)) != roomstate.RoleNone {
			continue // listed again: not ours to remove
		}
		for _, l := range r.g.Members() {
			if d, ok := leafDevice(r.g, l); !ok || userOfDevice(d) != u {
				continue
			}
			if slices.Contains(r.selfRemoved, l) {
				byRef = true // its SelfRemove, committed by reference
			} else {
				props = append(props, &mls.RemoveProposal{Removed: l})
			}
		}
	}
	if len(props) == 0 && !byRef && !plan.Update {
		return nil, nil, fmt.Errorf("%w: nothing to commit", ErrBadInput)
	}
	pc, err := r.g.Commit(newSeededRand(seed), &mls.CommitOptions{Proposals: props, NoPending: !byRef, ForcePath: plan.Update})
	if err != nil {
		return nil, nil, fmt.Errorf("client: build commit: %w", err)
	}
	return pc, changes, nil
}

// submitPlan builds, submits and follows one own commit until it is
// applied, rebuilding it on the new tip when it loses a race.
func (c *Client) submitPlan(ctx context.Context, room string, plan *commitPlan) (string, error) {
	for attempt := 0; attempt < maxCommitAttempts; attempt++ {
		c.mu.Lock()
		r, err := c.joinedRoom(room)
		if err != nil {
			c.mu.Unlock()
			return "", err
		}
		seed := make([]byte, 32)
		if _, err := c.rand.Read(seed); err != nil {
			c.mu.Unlock()
			return "", err
		}
		pc, changes, err := c.buildCommit(r, r.pendingState(), plan, seed)
		if err != nil {
			c.mu.Unlock()
			return "", err
		}
		req := clientapi.CommitRequest{Parent: r.epoch, Changes: changes}
		if req.Commit, err = pc.Message.Marshal(); err != nil {
			c.mu.Unlock()
			return "", err
		}
		if pc.Welcome != nil {
			req.Welcome, err = (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatWelcome, Welcome: pc.Welcome}).Marshal()
			if err != nil {
				c.mu.Unlock()
				return "", err
			}
		}
		if r.epoch == r.info.CreateID {
			// The group's first commit: servers verify commits as MLS
			// external observers, starting from the epoch-0 GroupInfo.
			if req.GroupInfo, err = groupInfoMessage(r.g); err != nil {
				c.mu.Unlock()
				return "", err
			}
		}
		hash := commitHash(req.Commit)
		p := &pendingCommit{Parent: r.epoch, Seed: seed, Plan: plan}
		b := newBatch()
		b.putJSON(keyPending(room, hash), p)
		if err := c.st.commit(b); err != nil { // before submitting: the commit must be mergeable after a crash
			c.mu.Unlock()
			return "", err
		}
		r.pending[hash] = p
		a := c.api()
		c.mu.Unlock()

		var resp clientapi.Submitted
		err = a.postJSON(ctx, "/v1/rooms/"+url.PathEscape(room)+"/commits", req, &resp)
		if err != nil {
			c.dropPending(room, hash)
			if clientapi.HasCode(err, clientapi.CodeStaleParent) {
				if err := c.catchUp(ctx, room); err != nil {
					return "", err
				}
				continue
			}
			return "", err
		}
		var lost bool
		err = c.await(ctx, "the commit to be applied", func() bool {
			rr := c.rooms[room]
			lost = p.Lost
			return containsStr(rr.chain, resp.Event) || lost || rr.left
		})
		if err != nil {
			return "", err
		}
		if !lost {
			return resp.Event, nil
		}
		c.mu.Lock()
		r.repropose = removePending(r.repropose, p) // rebuilt here, not in the background
		c.mu.Unlock()
	}
	return "", ErrCommitLost
}

func removePending(xs []*pendingCommit, p *pendingCommit) []*pendingCommit {
	out := xs[:0]
	for _, x := range xs {
		if x != p {
			out = append(out, x)
		}
	}
	return out
}

func (c *Client) dropPending(room, hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rooms[room]; r != nil {
		delete(r.pending, hash)
	}
	b := newBatch()
	b.del(keyPending(room, hash))
	_ = c.st.commit(b)
}

// catchUp waits until this device has applied the room's canonical tip as
// the node reports it (GET /v1/rooms/{room}/order).
func (c *Client) catchUp(ctx context.Context, room string) error {
	c.mu.Lock()
	a := c.api()
	c.mu.Unlock()
	var o clientapi.Order
	if err := a.get(ctx, "/v1/rooms/"+url.PathEscape(room)+"/order", &o); err != nil {
		return err
	}
	return c.await(ctx, "the canonical tip "+o.Tip, func() bool {
		r := c.rooms[room]
		return r.epoch == o.Tip || containsStr(r.chain, o.Tip)
	})
}

// planChanges returns the room-state changes stapled to the commit of plan,
// each encoded against and checked on the state the ones before it leave,
// as the node applies them: first the participant change, then the servers
// change. The servers change puts in the servers the plan adds and takes
// out the servers of every domain whose last participant the commit
// removes or whose departed users' clients it removes (plan.Departed):
// such a server is vacated, and roomstate lets any participant remove it
// (plan.Vacate; older plans did only when me had canChangeServers). A
// commit carrying a servers change installs the room's new electorate
// (docs/consensus.md, rule M1), so a server leaves the electorate with
// the commit that removes its domain's last user.
func planChanges(st *roomstate.State, me actorJSON, plan *commitPlan) ([]clientapi.Change, error) {
	var changes []clientapi.Change
	stage := func(op roomstate.Op) error {
		comp, update, err := roomstate.EncodeOp(st, op)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		next, err := roomstate.ApplyUpdate(st, me.actor(), comp, update)
		if err != nil {
			return fmt.Errorf("%w: the room does not allow it: %v", ErrBadInput, err)
		}
		st = next
		changes = append(changes, clientapi.Change{Component: uint16(comp), Update: update})
		return nil
	}
	if len(plan.Add)+len(plan.Remove) > 0 {
		up := &roomstate.ParticipantUpdate{}
		for _, u := range plan.Remove {
			up.Removed = append(up.Removed, roomstate.URI(u))
		}
		for _, u := range plan.Add {
			up.Added = append(up.Added, roomstate.UserRole{User: roomstate.URI(u), Role: roomstate.RoleMember})
		}
		if err := stage(up); err != nil {
			return nil, err
		}
	}
	su := &roomstate.ServersUpdate{}
	for _, s := range plan.AddServers {
		id, err := parseServerID(s.ID)
		if err != nil {
			return nil, err
		}
		su.Added = append(su.Added, roomstate.Server{ID: id, Domain: s.Domain})
	}
	if plan.Vacate || st.Has(roomstate.URI(me.User), roomstate.CanChangeServers) {
		su.Removed = vacatedServers(st, slices.Concat(plan.Remove, plan.Departed))
	}
	if len(su.Added)+len(su.Removed) > 0 {
		if err := stage(su); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// vacatedServers returns the servers of st, in ID order, whose domain is
// the home of one of the removed users and no longer of any participant.
func vacatedServers(st *roomstate.State, removed []string) []roomstate.ServerID {
	left := map[string]bool{}
	for _, u := range removed {
		left[roomstate.URI(u).Domain()] = true
	}
	for _, p := range st.Participants() {
		delete(left, p.User.Domain())
	}
	var out []roomstate.ServerID
	for _, s := range st.Servers() {
		if left[s.Domain] {
			out = append(out, s.ID)
		}
	}
	return out
}

// parseServerID decodes a server ID given as 64 hex digits.
func parseServerID(s string) (roomstate.ServerID, error) {
	var id roomstate.ServerID
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != len(id) {
		return id, fmt.Errorf("%w: server ID %q is not 64 hex digits", ErrBadInput, s)
	}
	copy(id[:], raw)
	return id, nil
}

// groupInfoMessage is the group's current GroupInfo with its ratchet tree,
// as an MLSMessage.
func groupInfoMessage(g *mls.Group) ([]byte, error) {
	gi, err := g.GroupInfo(true)
	if err != nil {
		return nil, fmt.Errorf("client: group info: %w", err)
	}
	return (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatGroupInfo, GroupInfo: gi}).Marshal()
}
