package client

import (
	"context"
	"fmt"
	"net/url"

	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Own commits: built from a plan with seeded randomness (so the replay log
// can rebuild them), submitted, and followed until the canonical order
// applies them or they lose their slot and are rebuilt.

// buildCommit makes the commit of plan on the room's current epoch with
// seeded randomness, and the room-state changes stapled to it.
func (c *Client) buildCommit(r *room, plan *commitPlan, seed []byte) (*mls.PendingCommit, []changeJSON, error) {
	me := actorJSON{User: c.id.UserURI, Client: c.id.DeviceURI}
	var changes []changeJSON
	if len(plan.Add)+len(plan.Remove) > 0 {
		up := &roomstate.ParticipantUpdate{}
		for _, u := range plan.Remove {
			up.Removed = append(up.Removed, roomstate.URI(u))
		}
		for _, u := range plan.Add {
			up.Added = append(up.Added, roomstate.UserRole{User: roomstate.URI(u), Role: roomstate.RoleMember})
		}
		comp, update, err := roomstate.EncodeOp(r.state, up)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		if _, err := roomstate.ApplyUpdate(r.state, me.actor(), comp, update); err != nil {
			return nil, nil, fmt.Errorf("%w: the room does not allow it: %v", ErrBadInput, err)
		}
		changes = append(changes, changeJSON{Component: uint16(comp), Update: update})
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
	if len(props) == 0 && !plan.ByReference && !plan.Update {
		return nil, nil, fmt.Errorf("%w: nothing to commit", ErrBadInput)
	}
	pc, err := r.g.Commit(newSeededRand(seed), &mls.CommitOptions{Proposals: props, NoPending: !plan.ByReference, ForcePath: plan.Update})
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
		pc, changes, err := c.buildCommit(r, plan, seed)
		if err != nil {
			c.mu.Unlock()
			return "", err
		}
		req := commitReq{Parent: r.epoch, Changes: changes}
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

		var resp submitResp
		err = a.postJSON(ctx, "/v1/rooms/"+url.PathEscape(room)+"/commits", req, &resp)
		if err != nil {
			c.dropPending(room, hash)
			if isCode(err, "stale_parent") {
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
	var o orderJSON
	if err := a.get(ctx, "/v1/rooms/"+url.PathEscape(room)+"/order", &o); err != nil {
		return err
	}
	return c.await(ctx, "the canonical tip "+o.Tip, func() bool {
		r := c.rooms[room]
		return r.epoch == o.Tip || containsStr(r.chain, o.Tip)
	})
}
