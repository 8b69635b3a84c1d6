package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"

	"github.com/rhizome-chat/rhizome/clientapi"
)

// processOrder follows the canonical order of a room as the node's
// ordering layer reports it (stream line of type "order"): it moves the
// group back to the fork point if epochs were undone, keeping their
// secrets until retain_until_ms for late messages, applies the canonical
// commits in order, queues the re-send of own messages sent in undone
// epochs (same MIMI message ID) and the re-proposal of own undone commits.
// Once a room has seen an order line, its commits are applied only by
// order lines.
func (c *Client) processOrder(ctx context.Context, b *batch, l *clientapi.StreamLine) error {
	r := c.rooms[l.Room]
	if r == nil {
		return c.adoptRoom(ctx, b, l.Room, l.Cursor)
	}
	if r.left {
		return nil
	}
	if !r.ordered {
		r.ordered, r.info.Ordered = true, true
		b.putJSON(keyRoomInfo(r.info.Room), &r.info)
	}
	now := c.now()
	retain := l.RetainUntilMS
	if retain <= now.UnixMilli() {
		retain = now.Add(c.opts.RetainFor).UnixMilli()
	}
	var undone []string
	if len(l.Undone) > 0 {
		// The oldest undone commit is last; its parent is the fork point.
		oldest := l.Undone[len(l.Undone)-1]
		if s, ok := r.snaps[oldest]; ok && r.g != nil {
			if _, back := r.snaps[s.parent]; !back {
				// We joined on the undone branch (or it is beyond our
				// rewind horizon): start the room over from its history;
				// the re-proposed invitation brings a new Welcome.
				return c.rejoin(ctx, b, r, l.Cursor, append(slices.Clone(l.Undone), r.joinedAt))
			}
			undone = append(undone, r.chain[slices.Index(r.chain, s.parent)+1:]...)
			if err := c.moveTo(b, r, s.parent, retain); err != nil {
				c.skipf("room %s: order line %d: %v", r.info.Room, l.Cursor, err)
				return nil
			}
		}
	}
	for _, id := range l.Applied {
		if r.commits[id] == nil {
			// Its event line was not streamed to us (we were not a
			// participant when it arrived): read it from the history.
			if err := c.fetchCommits(ctx, b, r, l.Cursor); err != nil {
				return err
			}
			break
		}
	}
	for _, id := range l.Applied {
		if ce := r.commits[id]; ce != nil && r.g != nil && ce.Parent != r.epoch && !containsStr(r.chain, ce.Parent) && !containsStr(r.chain, id) {
			// The canonical chain continues from an epoch we never had
			// (our join was undone while we were not told): start over.
			return c.rejoin(ctx, b, r, l.Cursor, []string{r.joinedAt})
		}
		if containsStr(r.chain, id) && id != r.epoch {
			// Applied by us on another path: move to it first.
			if err := c.moveTo(b, r, id, retain); err != nil {
				c.skipf("room %s: order line %d: %v", r.info.Room, l.Cursor, err)
				return nil
			}
			continue
		}
		if id == r.epoch {
			continue
		}
		ce := r.commits[id]
		if ce == nil {
			c.skipf("room %s: order line %d applies unknown commit %s", r.info.Room, l.Cursor, id)
			return nil
		}
		if ce.Parent != r.epoch && containsStr(r.chain, ce.Parent) {
			undone = append(undone, r.chain[slices.Index(r.chain, ce.Parent)+1:]...)
			if err := c.moveTo(b, r, ce.Parent, retain); err != nil {
				c.skipf("room %s: order line %d: %v", r.info.Room, l.Cursor, err)
				return nil
			}
		}
		// A commit with a Welcome for us in a room we know but have not
		// joined is handled by tryCommit's join path.
		if err := c.applyCanonical(b, r, ce); err != nil {
			return err
		}
	}
	if len(undone) == 0 {
		return nil
	}
	// Own commits among the undone epochs are re-proposed on the new tip.
	for _, id := range undone {
		if containsStr(r.chain, id) {
			continue // re-applied on the winning branch
		}
		if ce := r.commits[id]; ce != nil && ce.Actor.Client == c.id.DeviceURI {
			if p := c.planOf(r, id); p != nil {
				r.repropose = append(r.repropose, &pendingCommit{Plan: p})
			}
		}
		for _, p := range r.pending {
			if p.Event == id {
				p.Lost = true
			}
		}
	}
	ids, err := c.sentInEpochs(r.info.Room, undone)
	if err != nil {
		return err
	}
	sort.Strings(ids)
	r.resend = append(r.resend, ids...)
	return nil
}

// moveTo undoes the room's epochs after target (a fork point on its chain).
func (c *Client) moveTo(b *batch, r *room, target string, retainMS int64) error {
	if target == r.epoch {
		return nil
	}
	c.reorgs++
	return c.logAndApply(b, r, &logEntry{Op: "undo", Parent: target, RetainMS: retainMS, AtMS: c.now().UnixMilli()})
}

// planOf finds the plan of an own applied commit in the room's log.
func (c *Client) planOf(r *room, event string) *commitPlan {
	var plan *commitPlan
	_ = c.st.scan(roomPrefix(r.info.Room)+"log/", func(_, v []byte) error {
		var e logEntry
		if json.Unmarshal(v, &e) == nil && e.Op == "commit" && e.Event == event && e.Plan != nil {
			plan = e.Plan
		}
		return nil
	})
	return plan
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// rejoin forgets the room's group and replay log and reads the room's
// history again (adoptRoom): the device follows the room state and joins
// from the next Welcome for one of its KeyPackages, but never from the
// commits in undone (the undone join). Its sent log and the
// delivered-message index stay, so nothing is delivered twice.
func (c *Client) rejoin(ctx context.Context, b *batch, r *room, upto uint64, undone []string) error {
	room := r.info.Room
	if c.noJoin[room] == nil {
		c.noJoin[room] = map[string]bool{}
	}
	for _, id := range undone {
		if id != "" {
			c.noJoin[room][id] = true
		}
	}
	for _, pfx := range []string{"log/", "ce/", "pend/"} {
		err := c.st.scan(roomPrefix(room)+pfx, func(k, _ []byte) error {
			b.del(k)
			return nil
		})
		if err != nil {
			return err
		}
	}
	b.del(keyRoomInfo(room))
	for _, s := range r.snaps {
		s.snap.Erase()
	}
	delete(c.rooms, room)
	c.reorgs++
	if err := c.adoptRoom(ctx, b, room, upto); err != nil {
		c.rooms[room] = r // the line is retried; memory as before
		return err
	}
	if nr := c.rooms[room]; nr != nil {
		b.putJSON(keyRoomInfo(room), &nr.info)
	}
	return nil
}

// fetchCommits reads the room's history up to the line at cursor upto and
// records every commit event in it.
func (c *Client) fetchCommits(ctx context.Context, b *batch, r *room, upto uint64) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.WaitTimeout)
	defer cancel()
	errDone := errors.New("done")
	err := c.readStream(ctx, c.api(), "?since=0&room="+url.QueryEscape(r.info.Room), func(l *clientapi.StreamLine) error {
		if l.Cursor >= upto {
			return errDone
		}
		if l.Type == clientapi.LineEvent && l.Kind == "commit" {
			if ce := commitFromLine(l); ce != nil && r.commits[ce.ID] == nil {
				r.commits[ce.ID] = ce
				b.putJSON(keyCommitEvent(r.info.Room, ce.ID), ce)
			}
		}
		return nil
	})
	if errors.Is(err, errDone) {
		return nil
	}
	if err == nil {
		err = errors.New("stream ended")
	}
	return fmt.Errorf("client: commits of room %s: %w", r.info.Room, err)
}
