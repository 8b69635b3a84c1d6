package dagtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
)

// Clock is a settable clock for [dag.Limits].Now, safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set sets the clock.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// ManyTips builds a room whose create event A has n children m0 ... m(n-1)
// (n tips once stored), then merge events, each naming dag.MaxParents
// of the lowest remaining tips (or all if fewer are left) until one tip is
// left. Merges are named j0, j1, ... in order.
func ManyTips(t testing.TB, n int) *Fixture {
	t.Helper()
	var spec strings.Builder
	spec.WriteString("A ->")
	tips := make([]string, n)
	for i := range n {
		tips[i] = fmt.Sprintf("m%d", i)
		spec.WriteString(" " + tips[i])
	}
	for j := 0; len(tips) > 1; j++ {
		k := min(len(tips), dag.MaxParents)
		merge := fmt.Sprintf("j%d", j)
		fmt.Fprintf(&spec, ", %s -> %s", strings.Join(tips[:k], " "), merge)
		tips = append(tips[k:], merge)
	}
	return Build(t, spec.String())
}

// testManyTips stores 1,500 tips, then merges them down, checking the tips
// after every Put against the oracle: each merge replaces up to
// dag.MaxParents tips with one.
func testManyTips(t *testing.T, s dag.Store) {
	const n = 1500
	f := ManyTips(t, n)
	if f.Name(f.Events[n].ID()) != fmt.Sprintf("m%d", n-1) || f.Name(f.Events[n+1].ID()) != "j0" {
		t.Fatalf("fixture order: event %d is %s", n, f.Name(f.Events[n].ID()))
	}
	_, errs := s.PutAll(f.Events[:n+1])
	for i, err := range errs {
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	tips, err := s.Tips(f.Room)
	if err != nil || len(tips) != n {
		t.Fatalf("tips = %d, %v; want %d", len(tips), err, n)
	}
	if err := Check(s, f.Room, NewOracle(f.Events[:n+1])); err != nil {
		t.Fatal(err)
	}
	checkTipPages(t, s, f.Room, tips)
	want := n
	for i, e := range f.Events[n+1:] {
		Put(t, s, e)
		want -= len(e.Prev) - 1
		tips, err := s.Tips(f.Room)
		if err != nil || len(tips) != want {
			t.Fatalf("after merge %d: %d tips, %v; want %d", i, len(tips), err, want)
		}
	}
	if err := Check(s, f.Room, NewOracle(f.Events)); err != nil {
		t.Fatal(err)
	}
}

// testExpirePending checks the age-out of pending events: only those held
// for the TTL go, their missing parents are no longer reported, their
// slots are free, and what is left still completes.
// checkTipPages reads the room's tips through TipsAfter, 256 at a time
// and then one page for all, and compares them with tips.
func checkTipPages(t *testing.T, s dag.Store, room dag.RoomID, tips []dag.EventID) {
	t.Helper()
	for _, limit := range []int{256, len(tips), len(tips) + 1} {
		var got []dag.EventID
		var after dag.EventID
		for pages := 0; ; pages++ {
			page, more, err := s.TipsAfter(room, after, limit)
			if err != nil || len(page) > limit || pages > len(tips)/limit+1 {
				t.Fatalf("TipsAfter(%v, %d) = %d tips, %v, %v", after, limit, len(page), more, err)
			}
			got = append(got, page...)
			if !more {
				break
			}
			after = page[len(page)-1]
		}
		if !slices.Equal(got, tips) {
			t.Fatalf("tips read %d at a time: %d, want %d", limit, len(got), len(tips))
		}
	}
	if page, more, err := s.TipsAfter(room, tips[len(tips)-1], 10); err != nil || len(page) != 0 || more {
		t.Fatalf("TipsAfter(last tip) = %d, %v, %v", len(page), more, err)
	}
	if page, _, err := s.TipsAfter(room, tips[0], 0); err != nil || len(page) != 0 {
		t.Fatalf("TipsAfter with limit 0 = %d, %v", len(page), err)
	}
}

func testExpirePending(t *testing.T, open func(*testing.T, dag.Limits) dag.Store) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := NewClock(t0)
	s := open(t, dag.Limits{PendingPerRoom: 3, PendingPerOrigin: 100, PendingTTL: time.Minute, Now: clock.Now})
	f := Build(t, "A -> B -> C -> F, B -> D, B -> E")
	Put(t, s, f.E("A"), f.E("C"))
	clock.Set(t0.Add(30 * time.Second))
	Put(t, s, f.E("D"))
	clock.Set(t0.Add(40 * time.Second))
	Put(t, s, f.E("F"))
	if _, err := s.Put(f.E("E")); !errors.Is(err, dag.ErrPendingFull) {
		t.Fatalf("fourth pending event: %v, want ErrPendingFull", err)
	}
	steps := []struct {
		at              time.Duration
		expired         int
		pending, missed string
	}{
		{59 * time.Second, 0, "C D F", "B"},
		{60 * time.Second, 1, "D F", "B C"}, // C held for the TTL exactly
		{60 * time.Second, 0, "D F", "B C"},
	}
	for _, st := range steps {
		n, err := s.ExpirePending(t0.Add(st.at))
		if err != nil || n != st.expired {
			t.Fatalf("ExpirePending(t0+%v) = %d, %v; want %d", st.at, n, err, st.expired)
		}
		pend, err := s.Pending(f.Room)
		if err != nil || f.SortedNames(pend) != st.pending {
			t.Fatalf("after expiry at t0+%v: pending %q, %v; want %q", st.at, f.SortedNames(pend), err, st.pending)
		}
		mis, err := s.Missing(pend, 10)
		if err != nil || f.SortedNames(mis) != st.missed {
			t.Fatalf("after expiry at t0+%v: missing %q, %v; want %q", st.at, f.SortedNames(mis), err, st.missed)
		}
	}
	clock.Set(t0.Add(90 * time.Second))
	if r := Put(t, s, f.E("E"))[0]; r.Status != dag.StatusPending {
		t.Fatalf("E after the expiry freed a slot: %v", r.Status)
	}
	if n, err := s.ExpirePending(t0.Add(100 * time.Second)); err != nil || n != 2 {
		t.Fatalf("second expiry = %d, %v; want D and F", n, err)
	}
	if r := Put(t, s, f.E("B"))[0]; f.Names(r.Released) != "E" {
		t.Fatalf("B released %q, want E", f.Names(r.Released))
	}
	Put(t, s, f.E("C"), f.E("D"), f.E("F"))
	if err := Check(s, f.Room, NewOracle(f.Events)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpirePending(t0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("expiry with nothing pending = %d, %v", n, err)
	}
}

// testPurgeRoom purges one of two rooms, with stored and pending events:
// nothing of it is left, the other room is untouched, the pending slots
// are free, a purge is idempotent, and the room can be stored afresh.
func testPurgeRoom(t *testing.T, open func(*testing.T, dag.Limits) dag.Store) {
	s := open(t, dag.Limits{PendingPerRoom: 100, PendingPerOrigin: 1})
	f := Build(t, "A -> B -> C, B -> D -> E")
	g, err := ParseDAG("A -> B -> C -> D", "other room", Key(1))
	if err != nil {
		t.Fatal(err)
	}
	Put(t, s, f.E("A"), f.E("B"), f.E("C"), f.E("E"), g.E("A"), g.E("B"))
	if _, err := s.Put(g.E("D")); !errors.Is(err, dag.ErrPendingFull) {
		t.Fatalf("second pending event of the origin: %v, want ErrPendingFull", err)
	}
	for range 2 {
		if err := s.PurgeRoom(f.Room); err != nil {
			t.Fatal(err)
		}
	}
	if err := Check(s, f.Room, NewOracle(nil)); err != nil {
		t.Fatalf("purged room: %v", err)
	}
	for _, n := range []string{"A", "B", "C", "E"} {
		if ok, err := s.Has(f.ID(n)); err != nil || ok {
			t.Fatalf("Has(%s) after purge = %v, %v", n, ok, err)
		}
		if _, err := s.Meta(f.ID(n)); !errors.Is(err, dag.ErrNotFound) {
			t.Fatalf("Meta(%s) after purge = %v", n, err)
		}
	}
	if mis, err := s.Missing(f.IDs("E"), 10); err != nil || f.Names(mis) != "E" {
		t.Fatalf("Missing(E) after purge = %q, %v; want E itself", f.Names(mis), err)
	}
	if _, err := s.Put(f.E("D")); !errors.Is(err, dag.ErrUnknownRoom) {
		t.Fatalf("put into the purged room: %v, want unknown room", err)
	}
	// The purged pending event freed its origin's slot.
	Put(t, s, g.E("D"))
	Put(t, s, g.E("C"))
	if err := Check(s, g.Room, NewOracle(g.Events)); err != nil {
		t.Fatalf("other room: %v", err)
	}
	if err := s.PurgeRoom(dag.RoomID(f.ID("C"))); err != nil {
		t.Fatalf("purge of an unknown room: %v", err)
	}
	// Afresh: the arrival log starts again at 1.
	Put(t, s, f.Events...)
	if err := Check(s, f.Room, NewOracle(f.Events)); err != nil {
		t.Fatalf("room stored again: %v", err)
	}
	if m, err := s.Meta(f.ID("A")); err != nil || m.Seq != 1 {
		t.Fatalf("meta of A stored again = %+v, %v; want seq 1", m, err)
	}
}
