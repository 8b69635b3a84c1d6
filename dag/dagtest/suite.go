package dagtest

import (
	"errors"
	"flag"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
)

var seedFlag = flag.Uint64("dagtest.seed", 0, "seed for dagtest's random DAGs (0: a fresh seed, printed)")

// Seed returns the seed for a randomized test and logs it, so that a failure
// can be replayed with -dagtest.seed=N.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -dagtest.seed=%d)", seed, seed)
	return seed
}

// NewStore opens an empty store with the given pending limits. The suite
// closes the store; the factory registers any other cleanup with t.
type NewStore func(t *testing.T, lim dag.Limits) dag.Store

// RunStoreTests runs the shared suite against a Store implementation.
func RunStoreTests(t *testing.T, newStore NewStore) {
	open := func(t *testing.T, lim dag.Limits) dag.Store {
		s := newStore(t, lim)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	}
	t.Run("Basics", func(t *testing.T) { testBasics(t, open(t, dag.Limits{})) })
	t.Run("Tips", func(t *testing.T) { testTips(t, open(t, dag.Limits{})) })
	t.Run("TopoFromPoint", func(t *testing.T) { testTopo(t, open(t, dag.Limits{})) })
	t.Run("PendingChain", func(t *testing.T) { testPendingChain(t, open(t, dag.Limits{})) })
	t.Run("PendingLimits", func(t *testing.T) { testPendingLimits(t, open) })
	t.Run("Rejections", func(t *testing.T) { testRejections(t, open(t, dag.Limits{})) })
	t.Run("RandomPermutations", func(t *testing.T) { testRandom(t, open) })
	t.Run("RandomWithheld", func(t *testing.T) { testWithheld(t, open) })
	t.Run("ConcurrentPuts", func(t *testing.T) { testConcurrent(t, open(t, dag.Limits{})) })
	t.Run("PutAll", func(t *testing.T) { testPutAll(t, open) })
	t.Run("ManyTips", func(t *testing.T) { testManyTips(t, open(t, dag.Limits{})) })
	t.Run("ExpirePending", func(t *testing.T) { testExpirePending(t, open) })
	t.Run("PurgeRoom", func(t *testing.T) { testPurgeRoom(t, open) })
	t.Run("Closed", func(t *testing.T) {
		s := newStore(t, dag.Limits{})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		f := Build(t, "A -> B")
		if _, err := s.Put(f.E("A")); !errors.Is(err, dag.ErrClosed) {
			t.Fatalf("Put after Close = %v, want ErrClosed", err)
		}
		if _, errs := s.PutAll([]*dag.Event{f.E("A"), f.E("B")}); len(errs) != 2 || !errors.Is(errs[0], dag.ErrClosed) || !errors.Is(errs[1], dag.ErrClosed) {
			t.Fatalf("PutAll after Close = %v, want ErrClosed twice", errs)
		}
	})
}

// Put stores every event and fails t on error.
func Put(t testing.TB, s dag.Store, events ...*dag.Event) []dag.PutResult {
	t.Helper()
	var res []dag.PutResult
	for _, e := range events {
		r, err := s.Put(e)
		if err != nil {
			t.Fatalf("put %v: %v", e.ID(), err)
		}
		res = append(res, r)
	}
	return res
}

func testBasics(t *testing.T, s dag.Store) {
	f := Build(t, "A -> B -> C")
	res := Put(t, s, f.E("A"), f.E("B"))
	for i, r := range res {
		if r.Status != dag.StatusStored {
			t.Fatalf("put %d: status %v, want stored", i, r.Status)
		}
	}
	if r := Put(t, s, f.E("B"))[0]; r.Status != dag.StatusDuplicate {
		t.Fatalf("second put of B: status %v, want duplicate", r.Status)
	}
	if ok, err := s.Has(f.ID("C")); err != nil || ok {
		t.Fatalf("Has(C) before put = %v, %v", ok, err)
	}
	if _, err := s.Get(f.ID("C")); !errors.Is(err, dag.ErrNotFound) {
		t.Fatalf("Get(C) before put = %v, want ErrNotFound", err)
	}
	for _, call := range []func() error{
		func() error { _, err := s.Meta(f.ID("C")); return err },
		func() error { _, err := s.Parents(f.ID("C")); return err },
		func() error { _, err := s.Children(f.ID("C")); return err },
	} {
		if err := call(); !errors.Is(err, dag.ErrNotFound) {
			t.Fatalf("lookup of an absent event = %v, want ErrNotFound", err)
		}
	}
	Put(t, s, f.E("C"))
	if err := Check(s, f.Room, NewOracle(f.Events)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(f.ID("C"))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(); err != nil {
		t.Fatalf("stored event no longer verifies: %v", err)
	}
	if m, _ := s.Meta(f.ID("C")); m.Depth != 2 || m.Seq != 3 {
		t.Fatalf("meta of C = %+v, want depth 2 seq 3", m)
	}
	if tips, _ := s.Tips(dag.RoomID(f.ID("B"))); len(tips) != 0 {
		t.Fatalf("tips of a non-room = %v", tips)
	}
}

func testTips(t *testing.T, s dag.Store) {
	f := Build(t, "A -> B, A -> C, B C -> D, A -> E")
	steps := []struct {
		put, tips string
	}{
		{"A", "A"},
		{"B", "B"},
		{"C", "B C"},
		{"E", "B C E"},
		{"D", "D E"},
	}
	for _, st := range steps {
		Put(t, s, f.E(st.put))
		tips, err := s.Tips(f.Room)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.SortedNames(tips); got != st.tips {
			t.Fatalf("after %s: tips %q, want %q", st.put, got, st.tips)
		}
	}
	if got, _ := s.Children(f.ID("A")); f.SortedNames(got) != "B C E" {
		t.Fatalf("children of A = %q", f.SortedNames(got))
	}
	if got, _ := s.Parents(f.ID("D")); f.SortedNames(got) != "B C" {
		t.Fatalf("parents of D = %q", f.SortedNames(got))
	}
}

func testTopo(t *testing.T, s dag.Store) {
	f := Build(t, "A -> B -> C -> D, A -> X -> D, X -> Y")
	Put(t, s, f.E("A"))
	Put(t, s, Shuffle(rand.New(rand.NewPCG(1, 2)), f.Events[1:])...)
	all, err := s.Topo(f.Room, dag.Position{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	// Depths: A0 B1 X1 C2 Y2 D3; ties broken by ID.
	want := [][]string{{"A"}, {"B", "X"}, {"C", "Y"}, {"D"}}
	var order []string
	for _, level := range want {
		ids := make([]dag.EventID, len(level))
		for i, n := range level {
			ids[i] = f.ID(n)
		}
		for _, id := range dag.SortIDs(ids) {
			order = append(order, f.Name(id))
		}
	}
	got := make([]string, len(all))
	for i, e := range all {
		got[i] = f.Name(e.ID())
	}
	if !slices.Equal(got, order) {
		t.Fatalf("topo order %v, want %v", got, order)
	}
	// From a point: everything after X's position.
	m, err := s.Meta(f.ID(order[2]))
	if err != nil {
		t.Fatal(err)
	}
	rest, err := s.Topo(f.Room, dag.Position{Depth: m.Depth, ID: f.ID(order[2])}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 2 || f.Name(rest[0].ID()) != order[3] || f.Name(rest[1].ID()) != order[4] {
		t.Fatalf("topo after %s = %v, want %v", order[2], f.Names([]dag.EventID{rest[0].ID(), rest[1].ID()}), order[3:5])
	}
}

func testPendingChain(t *testing.T, s dag.Store) {
	f := Build(t, "A -> B -> C -> D, C -> E, A -> F")
	Put(t, s, f.E("A"))
	steps := []struct {
		put      string
		status   dag.PutStatus
		missing  string // the put's missing parents
		pending  string
		released string // in order
		storeMis string // Missing(pending heads)
	}{
		{"D", dag.StatusPending, "C", "D", "", "C"},
		{"E", dag.StatusPending, "C", "D E", "", "C"},
		{"C", dag.StatusPending, "B", "C D E", "", "B"},
		{"D", dag.StatusAlreadyPending, "C", "C D E", "", "B"},
		{"F", dag.StatusStored, "", "C D E", "", "B"},
		{"B", dag.StatusStored, "", "", "C " + f.Names(f.IDs("D E")), ""},
	}
	for _, st := range steps {
		r := Put(t, s, f.E(st.put))[0]
		if r.Status != st.status || f.Names(r.Missing) != st.missing || f.Names(r.Released) != st.released {
			t.Fatalf("put %s: status %v missing %q released %q; want %v %q %q",
				st.put, r.Status, f.Names(r.Missing), f.Names(r.Released), st.status, st.missing, st.released)
		}
		pend, err := s.Pending(f.Room)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.SortedNames(pend); got != st.pending {
			t.Fatalf("after %s: pending %q, want %q", st.put, got, st.pending)
		}
		mis, err := s.Missing(pend, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.SortedNames(mis); got != st.storeMis {
			t.Fatalf("after %s: missing %q, want %q", st.put, got, st.storeMis)
		}
	}
	// Released in topological order: C (depth 2) before D and E (depth 3),
	// D and E by ID.
	if err := Check(s, f.Room, NewOracle(f.Events)); err != nil {
		t.Fatal(err)
	}
	// Unknown heads are missing themselves; limits cut the answer.
	g, err := ParseDAG("A -> B -> C", "elsewhere", Key(1))
	if err != nil {
		t.Fatal(err)
	}
	mis, err := s.Missing([]dag.EventID{g.ID("C"), f.ID("D")}, 10)
	if err != nil || len(mis) != 1 || mis[0] != g.ID("C") {
		t.Fatalf("Missing(unknown C, stored D) = %v, %v", mis, err)
	}
	if mis, _ := s.Missing(f.IDs("A B"), 0); len(mis) != 0 {
		t.Fatalf("Missing with limit 0 = %v", mis)
	}
}

func testPendingLimits(t *testing.T, open func(*testing.T, dag.Limits) dag.Store) {
	t.Run("per-room", func(t *testing.T) {
		s := open(t, dag.Limits{PendingPerRoom: 2, PendingPerOrigin: 100})
		f := Build(t, "A -> B -> C, B -> D, B -> E")
		Put(t, s, f.E("A"), f.E("C"), f.E("D"))
		_, err := s.Put(f.E("E"))
		var full *dag.PendingFullError
		if !errors.As(err, &full) || full.Scope != "room" || full.Limit != 2 || !errors.Is(err, dag.ErrPendingFull) {
			t.Fatalf("third pending event: %v, want a room PendingFullError", err)
		}
		// The rejected event left no trace; once B arrives it can be put.
		if pend, _ := s.Pending(f.Room); f.SortedNames(pend) != "C D" {
			t.Fatalf("pending = %q", f.SortedNames(pend))
		}
		Put(t, s, f.E("B"), f.E("E"))
		if err := Check(s, f.Room, NewOracle(f.Events)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("per-origin", func(t *testing.T) {
		s := open(t, dag.Limits{PendingPerRoom: 100, PendingPerOrigin: 1})
		f := Build(t, "A -> B -> C, B -> D")
		other, err := ParseDAG("A -> B -> C", "other", Key(2))
		if err != nil {
			t.Fatal(err)
		}
		Put(t, s, f.E("A"), f.E("C"))
		_, err = s.Put(f.E("D"))
		var full *dag.PendingFullError
		if !errors.As(err, &full) || full.Scope != "origin" {
			t.Fatalf("second pending event of one origin: %v, want an origin PendingFullError", err)
		}
		// Another origin is not affected.
		Put(t, s, other.E("A"))
		if r := Put(t, s, other.E("C"))[0]; r.Status != dag.StatusPending {
			t.Fatalf("other origin's event: %v", r.Status)
		}
	})
}

func testRejections(t *testing.T, s dag.Store) {
	f := Build(t, "A -> B -> C")
	g, err := ParseDAG("A -> B -> C", "room g", Key(3))
	if err != nil {
		t.Fatal(err)
	}
	Put(t, s, f.E("A"), f.E("B"), g.E("A"))
	foreign, err := dag.NewSigned(Key(3), g.Room, dag.KindMessage, []dag.EventID{g.ID("A"), f.ID("B")}, 9, []byte("foreign"))
	if err != nil {
		t.Fatal(err)
	}
	// A pending event whose missing parent turns out to be in another room
	// is dropped when that parent arrives.
	late, err := dag.NewSigned(Key(3), g.Room, dag.KindMessage, []dag.EventID{g.ID("B"), f.ID("C")}, 9, []byte("late"))
	if err != nil {
		t.Fatal(err)
	}
	unknownRoom, err := ParseDAG("A -> B", "never stored", Key(3))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ev   *dag.Event
		want dag.Reason
	}{
		{"unknown-room", unknownRoom.E("B"), dag.ReasonUnknownRoom},
		{"foreign-parent", foreign, dag.ReasonForeignParent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(tc.ev)
			if r, _ := dag.ReasonOf(err); r != tc.want {
				t.Fatalf("Put = %v, want reason %v", err, tc.want)
			}
			if ok, _ := s.Has(tc.ev.ID()); ok {
				t.Fatal("rejected event was stored")
			}
		})
	}
	if r := Put(t, s, late)[0]; r.Status != dag.StatusPending {
		t.Fatalf("late: %v", r.Status)
	}
	// Once f's C is stored, late can never be valid: it is dropped at once,
	// without waiting for its other parent.
	r := Put(t, s, f.E("C"))[0]
	if len(r.Dropped) != 1 || r.Dropped[0] != late.ID() || len(r.Released) != 0 {
		t.Fatalf("put C of f: released %v dropped %v; want late dropped", r.Released, r.Dropped)
	}
	if r := Put(t, s, g.E("B"))[0]; r.Status != dag.StatusStored || len(r.Released)+len(r.Dropped) != 0 {
		t.Fatalf("put B of g: %+v", r)
	}
	if pend, _ := s.Pending(g.Room); len(pend) != 0 {
		t.Fatalf("pending after drop: %v", pend)
	}
	if ok, _ := s.Has(late.ID()); ok {
		t.Fatal("dropped event was stored")
	}
	unsigned := &dag.Event{Version: dag.Version1, Kind: dag.KindCreate}
	if _, err := s.Put(unsigned); !errors.Is(err, dag.ErrNotEncoded) {
		t.Fatalf("Put of an unsigned event = %v", err)
	}
}

func testRandom(t *testing.T, open func(*testing.T, dag.Limits) dag.Store) {
	seed := Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	origins := []ed25519Key{Key(1), Key(2), Key(3)}
	var firstTopo []dag.Position
	events, err := RandomDAG(rng, 300, 16, origins)
	if err != nil {
		t.Fatal(err)
	}
	o := NewOracle(events)
	for round := range 4 {
		s := open(t, dag.Limits{PendingPerRoom: len(events), PendingPerOrigin: len(events)})
		order := Shuffle(rng, events)
		if round == 0 {
			order = events // creation order: nothing is ever pending
		}
		Put(t, s, events[0]) // the room must be known before its events pend
		for _, e := range order {
			if _, err := s.Put(e); err != nil {
				t.Fatalf("round %d: put %v: %v", round, e.ID(), err)
			}
		}
		// Duplicates change nothing.
		Put(t, s, order[:len(order)/3]...)
		if err := Check(s, events[0].RoomID(), o); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		topo, err := s.Topo(events[0].RoomID(), dag.Position{}, len(events)+1)
		if err != nil {
			t.Fatal(err)
		}
		var pos []dag.Position
		for _, e := range topo {
			m, _ := s.Meta(e.ID())
			pos = append(pos, dag.Position{Depth: m.Depth, ID: e.ID()})
		}
		if round == 0 {
			firstTopo = pos
		} else if !slices.Equal(pos, firstTopo) {
			t.Fatalf("round %d: topological order depends on arrival order", round)
		}
	}
}

func testWithheld(t *testing.T, open func(*testing.T, dag.Limits) dag.Store) {
	seed := Seed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	events, err := RandomDAG(rng, 200, 16, []ed25519Key{Key(4), Key(5)})
	if err != nil {
		t.Fatal(err)
	}
	room := events[0].RoomID()
	s := open(t, dag.Limits{PendingPerRoom: len(events), PendingPerOrigin: len(events)})
	var delivered, withheld []*dag.Event
	for i, e := range Shuffle(rng, events[1:]) {
		if i%5 == 0 {
			withheld = append(withheld, e)
		} else {
			delivered = append(delivered, e)
		}
	}
	Put(t, s, events[0])
	Put(t, s, delivered...)
	o := NewOracle(append([]*dag.Event{events[0]}, delivered...))
	if err := Check(s, room, o); err != nil {
		t.Fatalf("with %d withheld: %v", len(withheld), err)
	}
	if len(o.Pending()) == 0 {
		t.Fatal("test setup: nothing pending")
	}
	// Deliver the rest in a random order: everything completes.
	Put(t, s, withheld...)
	if err := Check(s, room, NewOracle(events)); err != nil {
		t.Fatalf("after delivering all: %v", err)
	}
}

func testConcurrent(t *testing.T, s dag.Store) {
	seed := Seed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	const rooms, perRoom, workers = 3, 120, 6
	var all [][]*dag.Event
	var work []*dag.Event
	for r := range rooms {
		events, err := RandomDAG(rng, perRoom, 64, []ed25519Key{Key(byte(10 + r)), Key(byte(20 + r))})
		if err != nil {
			t.Fatal(err)
		}
		Put(t, s, events[0])
		all = append(all, events)
		work = append(work, events[1:]...)
	}
	work = Shuffle(rng, work)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(work); i += workers {
				if _, err := s.Put(work[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, events := range all {
		if err := Check(s, events[0].RoomID(), NewOracle(events)); err != nil {
			t.Fatal(err)
		}
	}
}
