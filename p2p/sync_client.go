package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
)

// ErrRefused is wrapped by [*RefusedError].
var ErrRefused = errors.New("p2p: request refused")

// RefusedError is a peer's refusal of a sync request, with its status.
type RefusedError struct {
	Status  SyncStatus
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("p2p: request refused: %s: %s", e.Status, e.Message)
}

// Unwrap returns [ErrRefused].
func (e *RefusedError) Unwrap() error { return ErrRefused }

// OffenseError reports that a peer's answer broke the protocol. The offense
// has been recorded against the peer.
type OffenseError struct {
	Peer    peer.ID
	Offense Offense
	Err     error
}

func (e *OffenseError) Error() string {
	return fmt.Sprintf("p2p: peer %s: %s: %v", e.Peer.ShortString(), e.Offense, e.Err)
}

// Unwrap returns the underlying error.
func (e *OffenseError) Unwrap() error { return e.Err }

// Pull parameters (docs/protocol.md, "Sync").
const (
	// initialMissingLimit is the first get_missing limit; each round
	// doubles it up to MaxMissingLimit.
	initialMissingLimit = 16
	// maxPullRounds bounds the get_missing rounds of one pull; a pull that
	// has not closed the gap by then is continued by the next one.
	maxPullRounds = 64
	// maxPullBuffer bounds the bytes of events one pull holds before
	// storing them (they are stored parents first, once the gap is closed).
	maxPullBuffer = 128 << 20
	// maxTentative bounds the events one pull holds whose origin is not
	// (yet) a writer of the room. Past it such events are not held: the
	// walk goes on through their parents (an ancestor may add their origin
	// to the room), and a follow-up pull fetches them again once the
	// ancestors are stored.
	maxTentative = 256
)

// request sends one sync request to p on a new stream and returns the
// response. A status other than ok is returned as a [*RefusedError]; an
// undecodable answer is an offense.
func (m *Mesh) request(ctx context.Context, p peer.ID, req *SyncRequest) (*SyncResponse, error) {
	body, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	s, err := m.h.NewStream(network.WithNoDial(ctx, "sync"), p, SyncProtocol)
	if err != nil {
		return nil, fmt.Errorf("p2p: open sync stream to %s: %w", p.ShortString(), err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := writeFrame(s, body); err != nil {
		s.Reset()
		return nil, fmt.Errorf("p2p: send %s: %w", req.Kind, err)
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, fmt.Errorf("p2p: send %s: %w", req.Kind, err)
	}
	raw, err := readFrame(bufio.NewReader(s), MaxResponseSize)
	if err != nil {
		s.Reset()
		if errors.Is(err, ErrFrameTooLarge) {
			return nil, m.offense(p, OffenseOversize, err)
		}
		if errors.Is(err, ErrMalformedFrame) {
			return nil, m.offense(p, OffenseMalformed, err)
		}
		return nil, fmt.Errorf("p2p: read %s answer: %w", req.Kind, err)
	}
	resp, err := UnmarshalSyncResponse(raw)
	if err != nil {
		return nil, m.offense(p, OffenseMalformed, err)
	}
	if resp.Kind != req.Kind {
		return nil, m.offense(p, OffenseMalformed, fmt.Errorf("%w: %s answer to a %s request", ErrMalformedMessage, resp.Kind, req.Kind))
	}
	if resp.Status != StatusOK {
		return nil, &RefusedError{Status: resp.Status, Message: resp.Message}
	}
	return resp, nil
}

func (m *Mesh) offense(p peer.ID, o Offense, err error) error {
	m.offend(p, o, err)
	return &OffenseError{Peer: p, Offense: o, Err: err}
}

// maxHeadPages bounds the pages of one heads exchange: 64 pages of
// MaxRequestIDs, 16,384 heads. Of a room with more tips, an exchange sees
// the lowest 16,384; the others are seen as the responder's own events
// merge its tips (docs/protocol.md 3.3).
const maxHeadPages = 64

// Heads asks p for its forward extremities of room, page after page (at
// most maxHeadPages), and returns them ascending. The answer is a hint,
// never trusted as room state: only events that verify are ever stored. A
// page that does not start above the cursor is an offense.
func (m *Mesh) Heads(ctx context.Context, p peer.ID, room dag.RoomID) ([]dag.EventID, error) {
	var heads []dag.EventID
	var after dag.EventID
	for range maxHeadPages {
		resp, err := m.request(ctx, p, &SyncRequest{Kind: SyncHeads, Room: room, After: after})
		if err != nil {
			return nil, err
		}
		if len(resp.Heads) > 0 && !after.IsZero() && resp.Heads[0].Compare(after) <= 0 {
			return nil, m.offense(p, OffenseMalformed, fmt.Errorf("%w: heads page after %v starts at %v", ErrMalformedMessage, after, resp.Heads[0]))
		}
		heads = append(heads, resp.Heads...)
		if !resp.More {
			return heads, nil
		}
		after = heads[len(heads)-1]
	}
	m.log.Info("heads exchange cut at its page bound", "room", room, "peer", p.ShortString(), "heads", len(heads))
	return heads, nil
}

// GetEvents fetches events by ID from p, verifies each (decoding, room, ID
// among those asked, signature) and returns them. IDs p does not have are
// absent from the result.
func (m *Mesh) GetEvents(ctx context.Context, p peer.ID, room dag.RoomID, ids []dag.EventID) ([]*dag.Event, error) {
	ids = dag.SortIDs(slices.Compact(dag.SortIDs(slices.Clone(ids))))
	resp, err := m.request(ctx, p, &SyncRequest{Kind: SyncGetEvents, Room: room, IDs: ids})
	if err != nil {
		return nil, err
	}
	asked := make(map[dag.EventID]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	out := make([]*dag.Event, 0, len(resp.Events))
	for _, raw := range resp.Events {
		ev, err := m.verifyFrom(p, room, raw, asked)
		if err != nil {
			return nil, err
		}
		delete(asked, ev.ID()) // each at most once
		out = append(out, ev)
	}
	return out, nil
}

// verifyFrom decodes and verifies an event received from p in answer to a
// question about room, whose acceptable IDs are expected.
func (m *Mesh) verifyFrom(p peer.ID, room dag.RoomID, raw []byte, expected map[dag.EventID]bool) (*dag.Event, error) {
	ev, err := m.checkFrom(p, room, raw, expected)
	if err != nil {
		return nil, err
	}
	if err := ev.Verify(); err != nil {
		return nil, m.offense(p, OffenseBadSignature, err)
	}
	return ev, nil
}

// checkFrom runs the checks of verifyFrom except the signature.
func (m *Mesh) checkFrom(p peer.ID, room dag.RoomID, raw []byte, expected map[dag.EventID]bool) (*dag.Event, error) {
	ev, err := dag.Decode(raw)
	if err != nil {
		off, _ := offenseOf(err)
		return nil, m.offense(p, off, err)
	}
	if !expected[ev.ID()] {
		return nil, m.offense(p, OffenseUnsolicited, fmt.Errorf("p2p: event %v was not asked for", ev.ID()))
	}
	if ev.RoomID() != room {
		return nil, m.offense(p, OffenseUnsolicited, fmt.Errorf("%w: %v in answer about %v", ErrWrongRoom, ev.RoomID(), room))
	}
	return ev, nil
}

// firstBadSignature verifies the signatures of evs in batches
// (dag.VerifyBatch), one contiguous share per CPU, and returns the index of
// the first event whose signature fails, or -1.
func firstBadSignature(evs []*dag.Event) int {
	workers := min(runtime.GOMAXPROCS(0), max(1, len(evs)/64))
	share := (len(evs) + workers - 1) / max(workers, 1)
	bad := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			start := min(w*share, len(evs))
			bad[w], _ = dag.VerifyBatch(evs[start:min(start+share, len(evs))])
			if bad[w] >= 0 {
				bad[w] += start
			}
		})
	}
	wg.Wait()
	for _, k := range bad {
		if k >= 0 {
			return k
		}
	}
	return -1
}

// checkAnswer runs the per-event checks on a get_missing answer in order
// (decoding, solicited, room), then the signatures in parallel. It returns
// the events that passed, up to the first failure, and the offense error of
// that failure if any.
func (m *Mesh) checkAnswer(p peer.ID, room dag.RoomID, raws [][]byte, want []dag.EventID) ([]*dag.Event, error) {
	expected := make(map[dag.EventID]bool, len(want))
	for _, id := range want {
		expected[id] = true
	}
	evs := make([]*dag.Event, 0, len(raws))
	var firstErr error
	for _, raw := range raws {
		ev, err := m.checkFrom(p, room, raw, expected)
		if err != nil {
			firstErr = err
			break
		}
		for _, pid := range ev.Prev {
			expected[pid] = true
		}
		evs = append(evs, ev)
	}
	if k := firstBadSignature(evs); k >= 0 {
		// An event is solicited only through the events before it, so
		// everything after a forgery is cut too.
		firstErr = m.offense(p, OffenseBadSignature, evs[k].Verify())
		evs = evs[:k]
	}
	return evs, firstErr
}

// pull brings room up to date with p: a heads exchange (when full), then
// get_missing rounds from the unknown heads and hints back to known events,
// the limit doubling each round, until every path is closed. Events are
// verified as they arrive and stored parents first once the gap is closed,
// so a long gap never floods the store's pending set.
func (m *Mesh) pull(room dag.RoomID, p peer.ID, full bool, hints []dag.EventID) {
	if m.blocked(p) || m.joined(room) == nil {
		return
	}
	if !m.participates(room, p) {
		// Never ask a non-server for a room's events: it has no right to
		// them, and whatever it answers is its own.
		m.rejected.add(RejectNotParticipant)
		m.log.Debug("no pull from a peer that does not participate", "room", room, "peer", p.ShortString())
		return
	}
	if err := m.pullOnce(m.ctx, room, p, full, hints); err != nil && m.ctx.Err() == nil {
		m.log.Debug("pull failed", "room", room, "peer", p.ShortString(), "err", err)
	}
}

// pullBatch holds verified events of one pull that are not stored yet.
type pullBatch struct {
	peer     peer.ID // the peer pulled from
	events   map[dag.EventID]*dag.Event
	bytes    int                  // of every event received, held or skipped
	frontier map[dag.EventID]bool // parents of batch events, not in the batch
	// tentative counts the held events whose origin was not a writer when
	// they arrived; skipped are those past maxTentative, not held.
	tentative int
	skipped   map[dag.EventID]bool
}

func newPullBatch(p peer.ID) *pullBatch {
	return &pullBatch{peer: p, events: map[dag.EventID]*dag.Event{}, frontier: map[dag.EventID]bool{}, skipped: map[dag.EventID]bool{}}
}

// has reports whether the batch received id (held or skipped).
func (b *pullBatch) has(id dag.EventID) bool {
	_, ok := b.events[id]
	return ok || b.skipped[id]
}

// add takes a received event into the batch; writer tells whether its
// origin may write the room (admission is decided again in flush).
func (b *pullBatch) add(ev *dag.Event, writer bool) {
	id := ev.ID()
	b.bytes += ev.Size()
	delete(b.frontier, id)
	if !writer && b.tentative == maxTentative {
		b.skipped[id] = true
	} else {
		if !writer {
			b.tentative++
		}
		b.events[id] = ev
	}
	for _, pid := range ev.Prev {
		if !b.has(pid) {
			b.frontier[pid] = true
		}
	}
}

func (m *Mesh) pullOnce(ctx context.Context, room dag.RoomID, p peer.ID, full bool, hints []dag.EventID) error {
	st := m.cfg.Store
	seeds := slices.Clone(hints)
	if full {
		heads, err := m.Heads(ctx, p, room)
		var re *RefusedError
		if errors.As(err, &re) && re.Status == StatusUnknownRoom {
			return nil
		}
		if err != nil {
			return err
		}
		seeds = append(seeds, heads...)
		// Also whatever our own pending events still lack: the peer may
		// hold it even if its heads do not lead there.
		pend, err := st.Pending(room)
		if err != nil {
			return fmt.Errorf("p2p: pending: %w", err)
		}
		seeds = append(seeds, pend...)
	}
	// The walk goes MaxRequestIDs seeds at a time. An ID asked for and not
	// received is asked again in the next round, until it is settled: stored
	// meanwhile, or asked in a round that brought nothing (the peer cannot
	// help with it in this pull). When one walk closes its events are
	// stored, and the seeds not reached yet start the next one, so a pull of
	// any number of heads goes on until every head is closed (or the round
	// bound hands the rest to the next pull).
	settled := map[dag.EventID]bool{}
	want, err := m.seedWant(seeds, settled)
	if err != nil {
		return err
	}
	var boundary []dag.EventID
	b := newPullBatch(p)
	limit := initialMissingLimit
	for round := 0; len(want) > 0; round++ {
		if round == maxPullRounds || b.bytes > maxPullBuffer {
			// Store what closes; the rest continues in the next pull,
			// with a heads exchange again if seeds are left.
			m.flush(room, b)
			m.pulls.schedule(room, p, want)
			if full {
				m.pulls.schedule(room, p, nil)
			}
			return nil
		}
		known, err := m.knownList(room, boundary)
		if err != nil {
			return err
		}
		resp, err := m.request(ctx, p, &SyncRequest{
			Kind: SyncGetMissing, Room: room, Known: known, IDs: dag.SortIDs(want), Limit: uint16(limit),
		})
		if err != nil {
			m.flush(room, b)
			return err
		}
		evs, answerErr := m.checkAnswer(p, room, resp.Events, want)
		added := 0
		for _, ev := range evs {
			id := ev.ID()
			if b.has(id) {
				continue
			}
			if has, err := st.Has(id); err != nil {
				return fmt.Errorf("p2p: has: %w", err)
			} else if has {
				settled[id] = true
				continue
			}
			b.add(ev, m.writable(room, ev))
			added++
		}
		if answerErr != nil {
			// Nothing more from this peer is trusted in this pull; what
			// verified before stays.
			m.flush(room, b)
			return answerErr
		}
		if added == 0 {
			for _, id := range want {
				settled[id] = true
			}
		}
		frontier := slices.Collect(maps.Keys(b.frontier))
		next, err := m.nextWant(b)
		if err != nil {
			return err
		}
		for _, id := range frontier {
			if _, open := b.frontier[id]; !open && !b.has(id) {
				boundary = append(boundary, id) // stored: the walk may stop there
			}
		}
		// Asked and not received (an answer is cut at its limit), then what
		// the batch lacks; what does not fit comes back from the frontier
		// or the seeds.
		want = slices.DeleteFunc(append(want, next...), func(id dag.EventID) bool { return b.has(id) || settled[id] })
		want = slices.Compact(dag.SortIDs(want))
		want = want[:min(len(want), MaxRequestIDs)]
		limit = min(2*limit, MaxMissingLimit)
		if len(want) == 0 {
			// This walk closed: store it and go on with the next seeds.
			m.flush(room, b)
			b, boundary = newPullBatch(p), nil
			if want, err = m.seedWant(seeds, settled); err != nil {
				return err
			}
		}
	}
	m.flush(room, b)
	return nil
}

// seedWant returns up to MaxRequestIDs IDs, ascending, needed to complete
// seeds (see dag.Store.Missing) and not settled in this pull.
func (m *Mesh) seedWant(seeds []dag.EventID, settled map[dag.EventID]bool) ([]dag.EventID, error) {
	miss, err := m.cfg.Store.Missing(seeds, MaxRequestIDs+len(settled))
	if err != nil {
		return nil, fmt.Errorf("p2p: missing: %w", err)
	}
	miss = slices.DeleteFunc(miss, func(id dag.EventID) bool { return settled[id] })
	return dag.SortIDs(miss[:min(len(miss), MaxRequestIDs)]), nil
}

// knownList returns the known list of a get_missing request, at most
// MaxRequestIDs IDs, ascending: first the stored events the walk has met
// (parents of events it brought, latest first), where the responder's
// walk should stop, then the room's highest tips. With many tips, the
// tips alone would be an arbitrary few of them, and the responder would
// walk on through events the requester holds.
func (m *Mesh) knownList(room dag.RoomID, boundary []dag.EventID) ([]dag.EventID, error) {
	known := map[dag.EventID]bool{}
	for i := len(boundary) - 1; i >= 0 && len(known) < MaxRequestIDs; i-- {
		known[boundary[i]] = true
	}
	tips, err := m.cfg.Store.Tips(room)
	if err != nil {
		return nil, fmt.Errorf("p2p: tips: %w", err)
	}
	for i := len(tips) - 1; i >= 0 && len(known) < MaxRequestIDs; i-- {
		known[tips[i]] = true
	}
	return slices.SortedFunc(maps.Keys(known), dag.EventID.Compare), nil
}

// nextWant returns what the batch still lacks: its frontier minus what the
// store holds, walking through the store's pending events.
func (m *Mesh) nextWant(b *pullBatch) ([]dag.EventID, error) {
	var open []dag.EventID
	for id := range b.frontier {
		has, err := m.cfg.Store.Has(id)
		if err != nil {
			return nil, fmt.Errorf("p2p: has: %w", err)
		}
		if has {
			delete(b.frontier, id)
			continue
		}
		open = append(open, id)
	}
	miss, err := m.cfg.Store.Missing(open, MaxRequestIDs)
	if err != nil {
		return nil, fmt.Errorf("p2p: missing: %w", err)
	}
	return slices.DeleteFunc(miss, b.has), nil
}

// parentsFirst returns the batch's events parents first (Kahn's algorithm
// over the batch, ties in ID order).
func (b *pullBatch) parentsFirst() []*dag.Event {
	indeg := make(map[dag.EventID]int, len(b.events))
	children := make(map[dag.EventID][]dag.EventID)
	for id, ev := range b.events {
		for _, pid := range ev.Prev {
			if _, ok := b.events[pid]; ok {
				indeg[id]++
				children[pid] = append(children[pid], id)
			}
		}
	}
	var ready []dag.EventID
	for id := range b.events {
		if indeg[id] == 0 {
			ready = append(ready, id)
		}
	}
	dag.SortIDs(ready)
	order := make([]*dag.Event, 0, len(b.events))
	for len(ready) > 0 {
		id := ready[0]
		ready = ready[1:]
		order = append(order, b.events[id])
		var next []dag.EventID
		for _, c := range children[id] {
			if indeg[c]--; indeg[c] == 0 {
				next = append(next, c)
			}
		}
		ready = append(ready, dag.SortIDs(next)...)
	}
	return order
}

// flush stores the batch parents first and empties it. Every event passes
// admission before it is stored: when one's origin is not a writer, the
// events before it are stored and the ACL is settled (an event just stored
// may add the origin to the room), then it is checked again. An event
// still refused is dropped, and so is every batch event that descends from
// it; events that descend from a skipped one wait for the follow-up pull
// (a full one), which is scheduled when this flush stored anything.
func (m *Mesh) flush(room dag.RoomID, b *pullBatch) {
	if len(b.events) == 0 && len(b.skipped) == 0 {
		return
	}
	f := flushState{m: m, room: room, refused: map[dag.EventID]bool{}, deferred: map[dag.EventID]bool{}}
	for _, ev := range b.parentsFirst() {
		f.take(ev, b.skipped)
	}
	f.put()
	if f.counts[RejectNotWriter]+f.counts[RejectDescendant] > 0 {
		m.log.Info("pulled events refused", "room", room, "peer", b.peer.ShortString(),
			"not_writer", f.counts[RejectNotWriter], "descendants", f.counts[RejectDescendant],
			"first", f.first.ID(), "origin", f.first.Origin)
	}
	if len(b.skipped) > 0 && f.stored > 0 {
		// A full pull (heads first) fetches the skipped events and what
		// waited on them, against an ACL that knows what was stored.
		if !f.settled {
			m.cfg.ACL.Settle(room)
		}
		m.pulls.schedule(room, b.peer, nil)
	}
	clear(b.events)
	clear(b.frontier)
	clear(b.skipped)
	b.bytes, b.tentative = 0, 0
}

// flushState is one flush in progress: the chunk of admitted events not
// stored yet, and what was refused or deferred.
type flushState struct {
	m        *Mesh
	room     dag.RoomID
	chunk    []*dag.Event
	refused  map[dag.EventID]bool
	deferred map[dag.EventID]bool
	// settled: Settle ran in this flush and nothing was stored since.
	settled bool
	stored  int
	counts  [len(rejectionNames)]int
	first   *dag.Event // the first refused event, for the log
}

// take decides one event, in parents-first order.
func (f *flushState) take(ev *dag.Event, skipped map[dag.EventID]bool) {
	id := ev.ID()
	for _, pid := range ev.Prev {
		if f.refused[pid] {
			f.refuse(RejectDescendant, ev)
			return
		}
		if skipped[pid] || f.deferred[pid] {
			f.deferred[id] = true
			return
		}
	}
	if !f.m.writable(f.room, ev) {
		f.put()
		if !f.settled {
			f.m.cfg.ACL.Settle(f.room)
			f.settled = true
		}
		if !f.m.writable(f.room, ev) {
			f.refuse(RejectNotWriter, ev)
			return
		}
	}
	f.chunk = append(f.chunk, ev)
}

func (f *flushState) refuse(r Rejection, ev *dag.Event) {
	_ = f.m.refuse(r, f.room, ev)
	f.refused[ev.ID()] = true
	f.counts[r]++
	if f.first == nil {
		f.first = ev
	}
}

// put stores the chunk with one PutAll, so the store makes it durable with
// one group commit rather than one per event.
func (f *flushState) put() {
	if len(f.chunk) == 0 {
		return
	}
	res, errs := f.m.cfg.Store.PutAll(f.chunk)
	for i, ev := range f.chunk {
		if errs[i] != nil {
			f.m.log.Info("pulled event not stored", "room", f.room, "event", ev.ID(), "err", errs[i])
		} else {
			f.m.stored(f.room, res[i])
			f.stored++
		}
	}
	f.chunk = f.chunk[:0]
	f.settled = false
}
