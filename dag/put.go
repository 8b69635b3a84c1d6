package dag

import (
	"container/heap"
	"fmt"
	"slices"
	"time"
)

// ReadTx is the read side of a store, as [PutTx] and [MissingTx] see it.
type ReadTx interface {
	// Meta returns the metadata of a stored event.
	Meta(id EventID) (m Meta, ok bool, err error)
	// PendingEvent returns a pending event.
	PendingEvent(id EventID) (e *Event, ok bool, err error)
}

// Tx is the storage a store exposes to [PutTx] inside one atomic update.
// Every store implements its indexes behind it, so that the DAG rules
// (pending, release order, tips) live in one place. PutTx makes every
// rejection decision before its first write, so a store may discard the
// update on any error.
type Tx interface {
	ReadTx
	// PendingCounts returns how many events are pending in the room and from
	// the origin.
	PendingCounts(room RoomID, origin ServerID) (perRoom, perOrigin int, err error)
	// AddPending holds e as pending, waiting for the missing parents; at is
	// its arrival (the zero Time without a clock, see [Limits]).
	AddPending(e *Event, missing []EventID, at time.Time) error
	// RemovePending forgets the pending event e and what it waited for.
	RemovePending(e *Event) error
	// Waiters returns the pending events waiting for parent, ascending.
	Waiters(parent EventID) ([]EventID, error)
	// Insert stores e, whose parents are all stored, at the given depth: it
	// appends e to its room's arrival log, indexes it for topological order
	// and child edges, and makes it a tip in place of its parents.
	Insert(e *Event, depth uint64) error
	// Checkpoint marks a point between two complete updates, where every
	// index is consistent. A store may commit what was written so far here
	// (to bound the size of one transaction); it need not.
	Checkpoint() error
}

// PutTx is the Put algorithm shared by every [Store] (docs/events.md,
// "Store semantics"):
//
//  1. an event already stored or pending is a duplicate;
//  2. the structural and context rules apply ([CheckContext]);
//  3. if a parent is not stored, the event becomes pending, within lim;
//  4. otherwise it is inserted at depth max(parent depth)+1, and every
//     pending event it completes is inserted after it, lowest (depth, ID)
//     first, which is a topological order.
func PutTx(tx Tx, e *Event, lim Limits) (PutResult, error) {
	if e.raw == nil {
		return PutResult{}, ErrNotEncoded
	}
	id := e.ID()
	res := PutResult{ID: id}
	if err := tx.Checkpoint(); err != nil {
		return res, err
	}
	if _, ok, err := tx.Meta(id); err != nil {
		return res, err
	} else if ok {
		res.Status = StatusDuplicate
		return res, nil
	}
	if err := e.checkFields(); err != nil {
		return res, err
	}
	if err := checkRoom(tx, e); err != nil {
		return res, err
	}
	depth, missing, err := parentDepth(tx, e)
	if err != nil {
		return res, err
	}
	if _, ok, err := tx.PendingEvent(id); err != nil {
		return res, err
	} else if ok {
		res.Status, res.Missing = StatusAlreadyPending, missing
		return res, nil
	}
	if len(missing) > 0 {
		lim = lim.WithDefaults()
		nRoom, nOrigin, err := tx.PendingCounts(e.Room, e.Origin)
		if err != nil {
			return res, err
		}
		if nRoom >= lim.PendingPerRoom {
			return res, &PendingFullError{Scope: "room", Room: e.Room, Origin: e.Origin, Limit: lim.PendingPerRoom}
		}
		if nOrigin >= lim.PendingPerOrigin {
			return res, &PendingFullError{Scope: "origin", Room: e.Room, Origin: e.Origin, Limit: lim.PendingPerOrigin}
		}
		var at time.Time
		if lim.Now != nil {
			at = lim.Now()
		}
		if err := tx.AddPending(e, missing, at); err != nil {
			return res, err
		}
		res.Status, res.Missing = StatusPending, missing
		return res, nil
	}
	if err := tx.Insert(e, depth); err != nil {
		return res, err
	}
	res.Status = StatusStored
	if err := release(tx, id, &res); err != nil {
		return res, err
	}
	return res, nil
}

// checkRoom is the first rule of [CheckContext]: a non-create event's room
// must be known.
func checkRoom(tx ReadTx, e *Event) error {
	if e.Kind == KindCreate {
		return nil
	}
	m, ok, err := tx.Meta(e.Room.CreateID())
	if err != nil {
		return fmt.Errorf("dag: look up room %v: %w", e.Room, err)
	}
	if !ok || m.Room != e.Room {
		return reject(ReasonUnknownRoom, "room %v of event %v", e.Room, e.ID())
	}
	return nil
}

// parentDepth applies the second rule of [CheckContext] (no stored parent in
// another room) and returns the depth e gets when stored and its parents
// that are not stored, ascending. It reads each parent once.
func parentDepth(tx ReadTx, e *Event) (depth uint64, missing []EventID, err error) {
	for _, p := range e.Prev {
		m, ok, err := tx.Meta(p)
		if err != nil {
			return 0, nil, fmt.Errorf("dag: parent %v: %w", p, err)
		}
		if !ok {
			missing = append(missing, p)
			continue
		}
		if m.Room != e.Room {
			return 0, nil, reject(ReasonForeignParent, "parent %v of event %v is in room %v, not %v", p, e.ID(), m.Room, e.Room)
		}
		depth = max(depth, m.Depth+1)
	}
	return depth, missing, nil
}

// readyHeap orders pending events that became complete by (depth, ID).
type readyHeap []readyItem

type readyItem struct {
	pos     Position
	ev      *Event
	foreign bool // a parent is in another room: drop instead of storing
}

func (h readyHeap) Len() int           { return len(h) }
func (h readyHeap) Less(i, j int) bool { return h[i].pos.Compare(h[j].pos) < 0 }
func (h readyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)        { *h = append(*h, x.(readyItem)) }
func (h *readyHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// ReleaseTx inserts every pending event that stored (a stored event)
// completes, as PutTx does after inserting stored. A store that commits a
// long release in several transactions (see Tx.Checkpoint) calls it after a
// crash to finish a release that stopped between two of them.
func ReleaseTx(tx Tx, stored EventID) (PutResult, error) {
	res := PutResult{ID: stored, Status: StatusStored}
	err := release(tx, stored, &res)
	return res, err
}

// release inserts, in (depth, ID) order, every pending event whose parents
// are all stored once stored has been stored, and so on transitively.
func release(tx Tx, stored EventID, res *PutResult) error {
	var ready readyHeap
	queued := map[EventID]bool{}
	enqueue := func(parent EventID) error {
		waiters, err := tx.Waiters(parent)
		if err != nil {
			return err
		}
		for _, w := range waiters {
			if queued[w] {
				continue
			}
			ev, ok, err := tx.PendingEvent(w)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			depth, missing, err := parentDepth(tx, ev)
			foreign := false
			if err != nil {
				if r, _ := ReasonOf(err); r != ReasonForeignParent {
					return err
				}
				foreign, missing = true, nil
			}
			if len(missing) > 0 {
				continue
			}
			queued[w] = true
			heap.Push(&ready, readyItem{pos: Position{Depth: depth, ID: w}, ev: ev, foreign: foreign})
		}
		return nil
	}
	if err := enqueue(stored); err != nil {
		return err
	}
	for ready.Len() > 0 {
		it := heap.Pop(&ready).(readyItem)
		if err := tx.Checkpoint(); err != nil {
			return err
		}
		if err := tx.RemovePending(it.ev); err != nil {
			return err
		}
		if it.foreign {
			res.Dropped = append(res.Dropped, it.pos.ID)
			continue
		}
		if err := tx.Insert(it.ev, it.pos.Depth); err != nil {
			return err
		}
		res.Released = append(res.Released, it.pos.ID)
		if err := enqueue(it.pos.ID); err != nil {
			return err
		}
	}
	return nil
}

// MissingTx is the Missing algorithm shared by every [Store]: a breadth-first
// walk from heads through pending events, each level in ascending ID order,
// collecting IDs that are neither stored nor pending. Stored events need no
// walk: a stored event's ancestors are all stored.
func MissingTx(tx ReadTx, heads []EventID, limit int) ([]EventID, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []EventID
	seen := map[EventID]bool{}
	level := SortIDs(slices.Clone(heads))
	for len(level) > 0 {
		var next []EventID
		for _, id := range level {
			if seen[id] {
				continue
			}
			seen[id] = true
			if _, ok, err := tx.Meta(id); err != nil {
				return nil, err
			} else if ok {
				continue
			}
			ev, ok, err := tx.PendingEvent(id)
			if err != nil {
				return nil, err
			}
			if !ok {
				out = append(out, id)
				if len(out) == limit {
					return out, nil
				}
				continue
			}
			next = append(next, ev.Prev...)
		}
		level = SortIDs(next)
	}
	return out, nil
}
