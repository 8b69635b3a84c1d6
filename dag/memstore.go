package dag

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// MemStore is an in-memory [Store]. It keeps everything in maps behind one
// mutex; it is meant for tests, the simulator and short-lived nodes, and
// passes the same suite (dag/dagtest) as the durable badger store. Each
// room's tips are a set, so an insert changes only its own and its
// parents' entries; Tips sorts the set. Pending events expire only when
// its Limits have a clock (Limits.Now).
type MemStore struct {
	mu     sync.RWMutex
	lim    Limits
	closed bool

	events   map[EventID]*Event
	meta     map[EventID]Meta
	children map[EventID][]EventID // sorted
	rooms    map[RoomID]*memRoom

	pending       map[EventID]*Event
	pendingAt     map[EventID]time.Time // arrival; zero without a clock
	waiters       map[EventID][]EventID // missing parent -> pending events, sorted
	pendingRoom   map[RoomID]int
	pendingOrigin map[ServerID]int
}

type memRoom struct {
	log  []EventID // log[i] has Seq i+1
	topo []Position
	tips map[EventID]bool
}

// NewMemStore returns an empty in-memory store with the given pending limits
// (zero fields take [DefaultLimits]).
func NewMemStore(lim Limits) *MemStore {
	return &MemStore{
		lim:           lim.WithDefaults(),
		events:        map[EventID]*Event{},
		meta:          map[EventID]Meta{},
		children:      map[EventID][]EventID{},
		rooms:         map[RoomID]*memRoom{},
		pending:       map[EventID]*Event{},
		pendingAt:     map[EventID]time.Time{},
		waiters:       map[EventID][]EventID{},
		pendingRoom:   map[RoomID]int{},
		pendingOrigin: map[ServerID]int{},
	}
}

var _ Store = (*MemStore)(nil)

// memTx implements Tx on the store's maps; the caller holds the write lock.
type memTx struct{ s *MemStore }

func (t memTx) Meta(id EventID) (Meta, bool, error) {
	m, ok := t.s.meta[id]
	return m, ok, nil
}

func (t memTx) PendingEvent(id EventID) (*Event, bool, error) {
	e, ok := t.s.pending[id]
	return e, ok, nil
}

func (t memTx) PendingCounts(room RoomID, origin ServerID) (int, int, error) {
	return t.s.pendingRoom[room], t.s.pendingOrigin[origin], nil
}

func (t memTx) AddPending(e *Event, missing []EventID, at time.Time) error {
	id := e.ID()
	t.s.pending[id] = e
	t.s.pendingAt[id] = at
	for _, p := range missing {
		t.s.waiters[p] = insertSorted(t.s.waiters[p], id)
	}
	t.s.pendingRoom[e.Room]++
	t.s.pendingOrigin[e.Origin]++
	return nil
}

func (t memTx) RemovePending(e *Event) error {
	id := e.ID()
	if _, ok := t.s.pending[id]; !ok {
		return nil
	}
	delete(t.s.pending, id)
	delete(t.s.pendingAt, id)
	for _, p := range e.Prev {
		w := t.s.waiters[p]
		if i, ok := slices.BinarySearchFunc(w, id, EventID.Compare); ok {
			w = slices.Delete(w, i, i+1)
		}
		if len(w) == 0 {
			delete(t.s.waiters, p)
		} else {
			t.s.waiters[p] = w
		}
	}
	decr(t.s.pendingRoom, e.Room)
	decr(t.s.pendingOrigin, e.Origin)
	return nil
}

func decr[K comparable](m map[K]int, k K) {
	if m[k] <= 1 {
		delete(m, k)
	} else {
		m[k]--
	}
}

func (t memTx) Waiters(parent EventID) ([]EventID, error) {
	return slices.Clone(t.s.waiters[parent]), nil
}

func (t memTx) Insert(e *Event, depth uint64) error {
	id := e.ID()
	room := e.RoomID()
	r := t.s.rooms[room]
	if r == nil {
		r = &memRoom{tips: map[EventID]bool{}}
		t.s.rooms[room] = r
	}
	r.log = append(r.log, id)
	pos := Position{Depth: depth, ID: id}
	i, _ := slices.BinarySearchFunc(r.topo, pos, Position.Compare)
	r.topo = slices.Insert(r.topo, i, pos)
	for _, p := range e.Prev {
		t.s.children[p] = insertSorted(t.s.children[p], id)
		delete(r.tips, p)
	}
	r.tips[id] = true
	t.s.events[id] = e
	t.s.meta[id] = Meta{Room: room, Depth: depth, Seq: uint64(len(r.log))}
	return nil
}

func (memTx) Checkpoint() error { return nil }

func insertSorted(ids []EventID, id EventID) []EventID {
	i, found := slices.BinarySearchFunc(ids, id, EventID.Compare)
	if found {
		return ids
	}
	return slices.Insert(ids, i, id)
}

// Put implements [Store].
func (s *MemStore) Put(e *Event) (PutResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return PutResult{}, ErrClosed
	}
	return PutTx(memTx{s}, e, s.lim)
}

// PutAll implements [Store].
func (s *MemStore) PutAll(evs []*Event) ([]PutResult, []error) {
	res, errs := make([]PutResult, len(evs)), make([]error, len(evs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range evs {
		if s.closed {
			errs[i] = ErrClosed
			continue
		}
		res[i], errs[i] = PutTx(memTx{s}, e, s.lim)
	}
	return res, errs
}

// Room implements [Store] and [Lookup].
func (s *MemStore) Room(id EventID) (RoomID, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.meta[id]
	return m.Room, ok, nil
}

// Get implements [Store].
func (s *MemStore) Get(id EventID) (*Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.events[id]
	if !ok {
		return nil, fmt.Errorf("get %v: %w", id, ErrNotFound)
	}
	return e, nil
}

// Has implements [Store].
func (s *MemStore) Has(id EventID) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.events[id]
	return ok, nil
}

// Meta implements [Store].
func (s *MemStore) Meta(id EventID) (Meta, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.meta[id]
	if !ok {
		return Meta{}, fmt.Errorf("meta %v: %w", id, ErrNotFound)
	}
	return m, nil
}

// Tips implements [Store].
func (s *MemStore) Tips(room RoomID) ([]EventID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rooms[room]
	if r == nil {
		return nil, nil
	}
	return slices.SortedFunc(maps.Keys(r.tips), EventID.Compare), nil
}

// TipsAfter implements [Store]. It sorts the room's tips.
func (s *MemStore) TipsAfter(room RoomID, after EventID, limit int) ([]EventID, bool, error) {
	tips, err := s.Tips(room)
	if err != nil || limit <= 0 {
		return nil, false, err
	}
	i, found := slices.BinarySearchFunc(tips, after, EventID.Compare)
	if found {
		i++
	}
	page := tips[i:]
	return page[:min(len(page), limit)], len(page) > limit, nil
}

// Parents implements [Store].
func (s *MemStore) Parents(id EventID) ([]EventID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.events[id]
	if !ok {
		return nil, fmt.Errorf("parents of %v: %w", id, ErrNotFound)
	}
	return slices.Clone(e.Prev), nil
}

// Children implements [Store].
func (s *MemStore) Children(id EventID) ([]EventID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.events[id]; !ok {
		return nil, fmt.Errorf("children of %v: %w", id, ErrNotFound)
	}
	return slices.Clone(s.children[id]), nil
}

// Topo implements [Store].
func (s *MemStore) Topo(room RoomID, after Position, limit int) ([]*Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rooms[room]
	if r == nil || limit <= 0 {
		return nil, nil
	}
	i, found := slices.BinarySearchFunc(r.topo, after, Position.Compare)
	if found {
		i++
	}
	var out []*Event
	for ; i < len(r.topo) && len(out) < limit; i++ {
		out = append(out, s.events[r.topo[i].ID])
	}
	return out, nil
}

// Log implements [Store].
func (s *MemStore) Log(room RoomID, after uint64, limit int) ([]LogEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rooms[room]
	if r == nil || limit <= 0 {
		return nil, nil
	}
	var out []LogEntry
	for seq := after + 1; seq <= uint64(len(r.log)) && len(out) < limit; seq++ {
		out = append(out, LogEntry{Seq: seq, ID: r.log[seq-1]})
	}
	return out, nil
}

// Missing implements [Store].
func (s *MemStore) Missing(heads []EventID, limit int) ([]EventID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return MissingTx(memTx{s}, heads, limit)
}

// Pending implements [Store].
func (s *MemStore) Pending(room RoomID) ([]EventID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []EventID
	for _, id := range slices.SortedFunc(maps.Keys(s.pending), EventID.Compare) {
		if s.pending[id].Room == room {
			out = append(out, id)
		}
	}
	return out, nil
}

// ExpirePending implements [Store]. Pending events stamped without a clock
// (the zero Time) never expire.
func (s *MemStore) ExpirePending(now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	cutoff := now.Add(-s.lim.PendingTTL)
	n := 0
	for id, at := range s.pendingAt {
		if at.IsZero() || at.After(cutoff) {
			continue
		}
		if err := (memTx{s}).RemovePending(s.pending[id]); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// PurgeRoom implements [Store].
func (s *MemStore) PurgeRoom(room RoomID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if r := s.rooms[room]; r != nil {
		for _, id := range r.log {
			delete(s.events, id)
			delete(s.meta, id)
			delete(s.children, id) // children are in the same room
		}
		delete(s.rooms, room)
	}
	for _, e := range s.pending {
		if e.RoomID() == room {
			if err := (memTx{s}).RemovePending(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close implements [Store]. Later calls to Put fail with [ErrClosed].
func (s *MemStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
