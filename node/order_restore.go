package node

import (
	"fmt"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
)

// feedByRoom reads the whole delivery feed and returns each room's entries
// that matter to state and order (create, state, commit, votes, order
// records) in feed order (only room's when room is not zero). The feed is the record
// of which events the node accepted and which order records it emitted, so
// a restart rebuilds exactly the state it had.
func (rs *rooms) feedByRoom(room dag.RoomID) (map[dag.RoomID][]feedEntry, error) {
	out := map[dag.RoomID][]feedEntry{}
	var after uint64
	for {
		seqs, entries, err := rs.db.feed(after, 1024)
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return out, nil
		}
		for _, e := range entries {
			if e.Order == nil && (e.Kind == dag.KindMessage || e.Kind == dag.KindProposal) {
				continue // they change neither state nor order
			}
			if room.IsZero() || e.Room == room {
				out[e.Room] = append(out[e.Room], e)
			}
		}
		after = seqs[len(seqs)-1]
	}
}

// restoreRoom rebuilds a room's state and ordering machine from its feed
// entries (the accepted events and the order records, in order), then hands
// the machine every accepted commit and vote at once (Machine.Restore,
// docs/consensus.md section 6 item 9), together with this server's own
// votes that were stored but not yet processed, so that it never votes
// twice. It performs the actions due and returns the order record that
// brings the reported chain up to the machine's, if they differ. The caller
// holds writeMu.
func (rs *rooms) restoreRoom(info *roomInfo, room dag.RoomID, feed []feedEntry) ([]feedEntry, error) {
	var events []consensus.Event
	for _, fe := range feed {
		if fe.Order != nil {
			if info.ord == nil {
				return nil, fmt.Errorf("node: restore room %v: order record before the create event", room)
			}
			if err := info.ord.replayRecord(fe.Order); err != nil {
				return nil, err
			}
			continue
		}
		ev, err := rs.store.Get(fe.Event)
		if err != nil {
			return nil, fmt.Errorf("node: restore room %v: %w", room, err)
		}
		if ev.Kind == dag.KindCreate {
			st, err := authorize(nil, ev, rs.store)
			if err != nil {
				return nil, fmt.Errorf("node: restore room %v: create event: %w", room, err)
			}
			if info.ord, err = newRoomOrder(room, ev, st, rs.self, rs.params); err != nil {
				return nil, err
			}
			continue
		}
		o := info.ord
		if o == nil {
			return nil, fmt.Errorf("node: restore room %v: event %v before the create event", room, ev.ID())
		}
		switch ev.Kind {
		case dag.KindCommit:
			cev, entry, err := rs.commitEvent(o, ev)
			if err != nil {
				// It was accepted before the restart; order it anyway,
				// without a membership change, so that the machine sees
				// the same commits as before.
				rs.log.Warn("restore: accepted commit no longer authorizes", "room", room, "event", ev.ID(), "err", err)
				c, derr := roomevent.DecodeCommit(ev.Content)
				if derr != nil {
					return nil, fmt.Errorf("node: restore room %v: accepted commit %v: %w", room, ev.ID(), derr)
				}
				cev = consensus.Event{ID: cid(ev.ID()), From: consensus.ServerID(ev.Origin), Commit: &consensus.Commit{Parent: cid(c.Parent)}}
				entry = stateEntry{id: ev.ID(), kind: dag.KindCommit, parent: c.Parent, actor: actorOf(ev, c.Sender), changes: c.Changes}
			}
			events = append(events, cev)
			o.appendEntry(entry)
		case dag.KindState:
			c, err := roomevent.DecodeState(ev.Content)
			if err != nil {
				return nil, fmt.Errorf("node: restore room %v: accepted state event %v: %w", room, ev.ID(), err)
			}
			o.appendEntry(stateEntry{id: ev.ID(), kind: dag.KindState, actor: actorOf(ev, c.Sender), changes: c.Changes})
		case dag.KindSeal, dag.KindAck, dag.KindSuspect:
			cev, err := voteEvent(ev)
			if err != nil {
				return nil, fmt.Errorf("node: restore room %v: accepted vote %v: %w", room, ev.ID(), err)
			}
			events = append(events, cev)
		}
	}
	if info.ord == nil {
		return nil, nil
	}
	own, err := rs.unprocessedOwnVotes(room, info.processed)
	if err != nil {
		return nil, err
	}
	events = append(events, own...)
	o := info.ord
	o.recompute()
	acts, errs := o.m.Restore(events)
	for _, err := range errs {
		rs.log.Warn("restore: vote not taken", "room", room, "err", err)
	}
	return rs.perform(o, acts), nil
}

// unprocessedOwnVotes returns this server's votes stored in the room's
// arrival log after position after (cast just before a crash).
func (rs *rooms) unprocessedOwnVotes(room dag.RoomID, after uint64) ([]consensus.Event, error) {
	var out []consensus.Event
	for {
		entries, err := rs.store.Log(room, after, logBatch)
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return out, nil
		}
		for _, e := range entries {
			after = e.Seq
			ev, err := rs.store.Get(e.ID)
			if err != nil {
				return nil, err
			}
			if ev.Origin != rs.self || !isVote(ev.Kind) {
				continue
			}
			if cev, err := voteEvent(ev); err == nil {
				out = append(out, cev)
			}
		}
	}
}

// reloadLocked rebuilds a room's in-memory state from disk after a failure
// left it partly updated (a feed append that did not commit). The caller
// holds writeMu.
func (rs *rooms) reloadLocked(room dag.RoomID) {
	rs.mu.RLock()
	old := rs.m[room]
	rs.mu.RUnlock()
	if old == nil {
		return
	}
	info := &roomInfo{via: old.via}
	err := func() error {
		var err error
		if info.processed, err = rs.db.processed(room); err != nil {
			return err
		}
		feeds, err := rs.feedByRoom(room)
		if err != nil {
			return err
		}
		recs, err := rs.restoreRoom(info, room, feeds[room])
		if err != nil || len(recs) == 0 {
			return err
		}
		_, err = rs.db.appendFeed(room, info.processed, recs)
		return err
	}()
	if err != nil {
		rs.log.Error("reload room", "room", room, "err", err)
		return
	}
	rs.mu.Lock()
	rs.m[room] = info
	rs.mu.Unlock()
	rs.publishView(info)
	rs.pokeRoom(room)
}
