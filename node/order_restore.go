package node

import (
	"fmt"
	"maps"
	"slices"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/feed"
	engine "github.com/rhizome-chat/rhizome/room"
)

// feedByRoom returns each room's feed entries that matter to state and
// order (create, state, commit, proposal, votes, order records) in feed
// order, for the recorded rooms, or for room alone when it is not zero; it
// reads those rooms' entries only (the per-room feed). The feed is the
// record of which events the node accepted and which order records it
// emitted, so a restart rebuilds exactly the state it had.
func (rs *rooms) feedByRoom(room dag.RoomID) (map[dag.RoomID][]feed.Entry, error) {
	out := map[dag.RoomID][]feed.Entry{}
	rooms := []dag.RoomID{room}
	if room.IsZero() {
		recs, err := rs.feed.Rooms()
		if err != nil {
			return nil, err
		}
		rooms = slices.Collect(maps.Keys(recs))
	}
	for _, r := range rooms {
		var after uint64
		for {
			seqs, entries, err := rs.feed.Room(r, after, 1024)
			if err != nil {
				return nil, err
			}
			if len(entries) == 0 {
				break
			}
			for _, e := range entries {
				if e.Order == nil && e.Kind == dag.KindMessage {
					continue // they change neither state nor order (proposals feed the MLS observer)
				}
				out[r] = append(out[r], e)
			}
			after = seqs[len(seqs)-1]
		}
	}
	return out, nil
}

// restoreRoom rebuilds a room's engine from its feed entries (the feed
// events and the order records, in order) and this server's own votes that
// were stored but not yet processed (engine.Restore), then carries out what
// the engine is ready with. It returns the feed entries that brings the
// reported chain up to the machine's, if they differ. The caller holds
// writeMu.
func (rs *rooms) restoreRoom(info *roomInfo, room dag.RoomID, accepted []feed.Entry) ([]feed.Entry, error) {
	var record []engine.Recorded
	for _, fe := range accepted {
		if fe.Order != nil {
			if len(record) == 0 {
				return nil, fmt.Errorf("node: restore room %v: order record before the create event", room)
			}
			record = append(record, engine.Recorded{Order: fe.Order})
			continue
		}
		ev, err := rs.store.Get(fe.Event)
		if err != nil {
			return nil, fmt.Errorf("node: restore room %v: %w", room, err)
		}
		record = append(record, engine.Recorded{Event: ev})
	}
	if len(record) == 0 {
		return nil, nil
	}
	own, err := rs.unprocessedOwnVotes(room, info.processed)
	if err != nil {
		return nil, err
	}
	e, err := engine.Restore(record, own, rs.engineConfig())
	if err != nil {
		return nil, fmt.Errorf("node: restore room %v: %w", room, err)
	}
	info.eng = e
	out, _, err := rs.drain(info)
	var recs []feed.Entry
	for _, fe := range out {
		if fe.Order != nil {
			recs = append(recs, fe)
		}
	}
	return recs, err
}

// unprocessedOwnVotes returns this server's votes stored in the room's
// arrival log after position after (cast just before a crash).
func (rs *rooms) unprocessedOwnVotes(room dag.RoomID, after uint64) ([]*dag.Event, error) {
	var out []*dag.Event
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
			if ev.Origin == rs.self && isVote(ev.Kind) {
				out = append(out, ev)
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
		if info.processed, err = rs.feed.Processed(room); err != nil {
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
		_, err = rs.feed.Append(room, info.processed, recs)
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
