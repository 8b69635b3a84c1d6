package room

import (
	"errors"
	"fmt"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
)

// Recorded is one entry of what the host recorded for a room, in feed
// order: an accepted event, or an order record it emitted.
type Recorded struct {
	Event *dag.Event
	Order *OrderRecord
}

// Restore rebuilds a room's engine from its record: the accepted events
// (the create event first) and order records in the order the host
// recorded them, then this server's own votes that were stored but not
// yet stepped (cast just before a crash), so that it never votes twice.
// It hands the machine every accepted commit and vote at once
// (Machine.Restore, docs/consensus.md section 6 item 9). The Ready holds
// the actions now due and the order record that brings the recorded chain
// up to the machine's, if they differ, and in NewServers every server of
// every room state the record accepted (the servers that may write to the
// room, as before the restart).
func Restore(record []Recorded, own []*dag.Event, cfg Config) (*Engine, error) {
	if len(record) == 0 || record[0].Event == nil {
		return nil, fmt.Errorf("room: restore: the record does not start with the create event")
	}
	e, err := New(record[0].Event, cfg)
	if err != nil {
		return nil, fmt.Errorf("room: restore: %w", err)
	}
	e.ready = Ready{NewServers: e.ready.NewServers}
	var events []consensus.Event
	for _, r := range record[1:] {
		if r.Order != nil {
			if err := e.replayRecord(r.Order); err != nil {
				return nil, err
			}
			e.noteServers(e.b.current()) // as report does
			continue
		}
		ev := r.Event
		switch ev.Kind {
		case dag.KindCreate:
			return nil, fmt.Errorf("room: restore room %v: a second create event %v", e.room, ev.ID())
		case dag.KindCommit:
			acc, err := e.authorizeEvent(ev)
			if err != nil {
				// It was accepted before; order it anyway, without a
				// membership change, so that the machine sees the same
				// commits as before.
				c, derr := roomevent.DecodeCommit(ev.Content)
				if derr != nil {
					return nil, fmt.Errorf("room: restore room %v: accepted commit %v: %w", e.room, ev.ID(), derr)
				}
				acc = e.commitInput(ev, c, nil, e.b.adoptable(ev, c.Parent))
			}
			e.b.appendEntry(*acc.entry)
			if acc.after != nil {
				e.b.remember(ev.ID(), acc.after)
			}
			e.noteServers(acc.after)
			if acc.group != nil {
				e.keepGroup(acc.groupAt, acc.group, acc.committer)
			}
			events = append(events, *acc.input)
		case dag.KindProposal:
			// Proposals change no state, but commits of their epoch may
			// include them by reference.
			if acc, err := e.authorizeEvent(ev); err == nil && acc.group != nil {
				e.keepGroup(acc.groupAt, acc.group, acc.committer)
				e.noteProposal(acc.groupAt, ev.ID(), acc.propRef)
			}
		case dag.KindState:
			// It changes no state: the commits that adopt it come after it
			// in the record (they name it among their DAG parents).
			c, err := roomevent.DecodeState(ev.Content)
			if err != nil {
				return nil, fmt.Errorf("room: restore room %v: accepted state event %v: %w", e.room, ev.ID(), err)
			}
			e.b.appendEntry(StateEntry{ID: ev.ID(), Kind: dag.KindState, Actor: actorOf(ev, c.Sender), Changes: c.Changes})
		case dag.KindSeal, dag.KindAck, dag.KindSuspect:
			in, err := voteInput(ev)
			if err != nil {
				return nil, fmt.Errorf("room: restore room %v: accepted vote %v: %w", e.room, ev.ID(), err)
			}
			events = append(events, in)
		}
	}
	for _, ev := range own {
		if in, err := voteInput(ev); err == nil && ev.Origin == cfg.Self {
			events = append(events, in)
		}
	}
	e.b.recompute()
	e.version++
	acts, errs := e.m.Restore(events)
	for _, err := range errs {
		var re *consensus.RejectError
		if errors.As(err, &re) {
			e.ready.Rejected = append(e.ready.Rejected, Rejection{Event: did(re.ID), Err: rejectErr(ReasonVote, err)})
		}
	}
	e.perform(acts)
	e.ready.StateChanged = true
	return e, nil
}
