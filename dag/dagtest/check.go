package dagtest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/rhizome-chat/rhizome/dag"
)

// Check compares everything s knows about room with the oracle o and returns
// the first difference: stored and pending sets, bytes, metadata, tips,
// parent and child edges, topological order (read in pages), the arrival log
// (every stored event exactly once, seq 1..n, parents before children), and
// the missing ancestors of the pending events.
func Check(s dag.Store, room dag.RoomID, o *Oracle) error {
	stored := o.Stored()
	for _, id := range stored {
		e, err := s.Get(id)
		if err != nil {
			return fmt.Errorf("get %v: %w", id, err)
		}
		if !bytes.Equal(e.Bytes(), o.Events[id].Bytes()) || e.ID() != id {
			return fmt.Errorf("get %v: stored bytes differ", id)
		}
		if ok, err := s.Has(id); err != nil || !ok {
			return fmt.Errorf("has %v = %v, %v; want true", id, ok, err)
		}
		m, err := s.Meta(id)
		if err != nil {
			return fmt.Errorf("meta %v: %w", id, err)
		}
		if m.Room != room || m.Depth != o.Depth[id] {
			return fmt.Errorf("meta %v = room %v depth %d; want room %v depth %d", id, m.Room, m.Depth, room, o.Depth[id])
		}
		if r, ok, err := s.Room(id); err != nil || !ok || r != room {
			return fmt.Errorf("room of %v = %v, %v, %v", id, r, ok, err)
		}
		parents, err := s.Parents(id)
		if err != nil || !slices.Equal(parents, o.Events[id].Prev) {
			return fmt.Errorf("parents of %v = %v, %v; want %v", id, parents, err, o.Events[id].Prev)
		}
		children, err := s.Children(id)
		if err != nil || !slices.Equal(children, o.Children[id]) {
			return fmt.Errorf("children of %v = %v, %v; want %v", id, children, err, o.Children[id])
		}
	}
	pending := o.Pending()
	for _, id := range pending {
		if ok, err := s.Has(id); err != nil || ok {
			return fmt.Errorf("has pending %v = %v, %v; want false", id, ok, err)
		}
		if _, err := s.Get(id); !errors.Is(err, dag.ErrNotFound) {
			return fmt.Errorf("get pending %v: %v; want ErrNotFound", id, err)
		}
	}
	gotPending, err := s.Pending(room)
	if err != nil || !slices.Equal(gotPending, pending) {
		return fmt.Errorf("pending = %d events, %v; want %d", len(gotPending), err, len(pending))
	}
	tips, err := s.Tips(room)
	if err != nil || !slices.Equal(tips, o.Tips()) {
		return fmt.Errorf("tips = %v, %v; want %v", tips, err, o.Tips())
	}
	// Topological order, in pages of 7.
	var topo []dag.Position
	after := dag.Position{}
	for {
		page, err := s.Topo(room, after, 7)
		if err != nil {
			return fmt.Errorf("topo after %v: %w", after, err)
		}
		for _, e := range page {
			after = dag.Position{Depth: o.Depth[e.ID()], ID: e.ID()}
			topo = append(topo, after)
		}
		if len(page) < 7 {
			break
		}
	}
	if want := o.Topo(); !slices.Equal(topo, want) {
		return fmt.Errorf("topo order differs: got %d events, want %d", len(topo), len(want))
	}
	// Arrival log, in pages of 5.
	var log []dag.LogEntry
	for cursor := uint64(0); ; {
		page, err := s.Log(room, cursor, 5)
		if err != nil {
			return fmt.Errorf("log after %d: %w", cursor, err)
		}
		log = append(log, page...)
		if len(page) < 5 {
			break
		}
		cursor = page[len(page)-1].Seq
	}
	if len(log) != len(stored) {
		return fmt.Errorf("log has %d entries, want %d", len(log), len(stored))
	}
	pos := map[dag.EventID]int{}
	for i, le := range log {
		if le.Seq != uint64(i+1) {
			return fmt.Errorf("log entry %d has seq %d", i, le.Seq)
		}
		if _, dup := pos[le.ID]; dup {
			return fmt.Errorf("log lists %v twice", le.ID)
		}
		pos[le.ID] = i
		m, err := s.Meta(le.ID)
		if err != nil || m.Seq != le.Seq {
			return fmt.Errorf("meta seq of %v = %d, %v; want %d", le.ID, m.Seq, err, le.Seq)
		}
	}
	for _, id := range stored {
		i, ok := pos[id]
		if !ok {
			return fmt.Errorf("log lacks %v", id)
		}
		for _, p := range o.Events[id].Prev {
			if pos[p] >= i {
				return fmt.Errorf("log has %v before its parent %v", id, p)
			}
		}
	}
	heads := append(slices.Clone(pending), o.Tips()...)
	missing, err := s.Missing(heads, 1<<20)
	if err != nil {
		return fmt.Errorf("missing: %w", err)
	}
	if want := o.Missing(); !slices.Equal(dag.SortIDs(missing), want) {
		return fmt.Errorf("missing = %d IDs, want %d", len(missing), len(want))
	}
	return nil
}
