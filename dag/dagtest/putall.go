package dagtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
)

// testPutAll checks PutAll against Put: the same events, in the same order,
// with duplicates, rejections and unencoded events mixed in, give the same
// outcomes event by event and the same final state, whether they come in
// one call, in chunks, or from concurrent callers.
func testPutAll(t *testing.T, open func(*testing.T, dag.Limits) dag.Store) {
	seed := Seed(t)
	rng := rand.New(rand.NewPCG(seed, 4))
	events, err := RandomDAG(rng, 200, 32, []ed25519Key{Key(6), Key(7)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := RandomDAG(rng, 3, 8, []ed25519Key{Key(8)})
	if err != nil {
		t.Fatal(err)
	}
	// A foreign parent, an event of an unknown room, an unencoded event.
	foreign, err := dag.NewSigned(Key(6), events[0].RoomID(), dag.KindMessage, []dag.EventID{other[1].ID()}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	unencoded := &dag.Event{Version: dag.Version1, Kind: dag.KindMessage, Room: events[0].RoomID(), Prev: []dag.EventID{events[0].ID()}}
	input := append([]*dag.Event{events[0], other[0], other[1]}, Shuffle(rng, events[1:])...)
	input = append(input, events[5], foreign, other[2], unencoded, events[7])
	unencodedAt := len(input) - 2
	lim := dag.Limits{PendingPerRoom: len(events), PendingPerOrigin: len(events)}

	ref := open(t, lim)
	var wantRes []dag.PutResult
	var wantErr []error
	for _, e := range input {
		r, err := ref.Put(e)
		wantRes, wantErr = append(wantRes, r), append(wantErr, err)
	}
	if wantErr[unencodedAt] == nil {
		t.Fatal("test setup: the unencoded event was accepted by Put")
	}

	compare := func(t *testing.T, i int, r dag.PutResult, err error) {
		t.Helper()
		if !sameError(err, wantErr[i]) {
			t.Fatalf("event %d (%v): PutAll error %v, Put error %v", i, input[i].ID(), err, wantErr[i])
		}
		if !reflect.DeepEqual(r, wantRes[i]) {
			t.Fatalf("event %d (%v): PutAll result %+v, Put result %+v", i, input[i].ID(), r, wantRes[i])
		}
	}
	for _, chunk := range []int{len(input), 1, 7, 64} {
		t.Run(fmt.Sprintf("chunks of %d", chunk), func(t *testing.T) {
			s := open(t, lim)
			for start := 0; start < len(input); start += chunk {
				end := min(start+chunk, len(input))
				res, errs := s.PutAll(input[start:end])
				if len(res) != end-start || len(errs) != end-start {
					t.Fatalf("PutAll of %d events returned %d results and %d errors", end-start, len(res), len(errs))
				}
				for i := range res {
					compare(t, start+i, res[i], errs[i])
				}
			}
			if err := Check(s, events[0].RoomID(), NewOracle(events)); err != nil {
				t.Fatal(err)
			}
			if err := Check(s, other[0].RoomID(), NewOracle(other)); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("concurrent callers", func(t *testing.T) {
		s := open(t, lim)
		Put(t, s, events[0])
		work := Shuffle(rng, events[1:])
		errc := make(chan error, 4)
		for w := range 4 {
			go func() {
				var part []*dag.Event
				for i := w; i < len(work); i += 4 {
					part = append(part, work[i])
				}
				_, errs := s.PutAll(part)
				errc <- errors.Join(errs...)
			}()
		}
		for range 4 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if err := Check(s, events[0].RoomID(), NewOracle(events)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		res, errs := open(t, lim).PutAll(nil)
		if len(res) != 0 || len(errs) != 0 {
			t.Fatalf("PutAll(nil) = %v, %v", res, errs)
		}
	})
}

// sameError reports whether two Put errors mean the same: both nil, or the
// same rejection reason, or both matching the same sentinel.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ra, oka := dag.ReasonOf(a)
	rb, okb := dag.ReasonOf(b)
	if oka || okb {
		return oka && okb && ra == rb
	}
	for _, sentinel := range []error{dag.ErrNotEncoded, dag.ErrPendingFull, dag.ErrClosed} {
		if errors.Is(a, sentinel) || errors.Is(b, sentinel) {
			return errors.Is(a, sentinel) && errors.Is(b, sentinel)
		}
	}
	return false
}
