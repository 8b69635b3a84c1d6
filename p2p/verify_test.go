package p2p

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// TestFirstBadSignature checks the parallel batch check of sync answers
// against event-by-event verification, with forgeries at chunk and share
// boundaries.
func TestFirstBadSignature(t *testing.T) {
	priv := dagtest.Key(3)
	create, err := dag.NewSigned(priv, dag.RoomID{}, dag.KindCreate, nil, 0, []byte("room"))
	if err != nil {
		t.Fatal(err)
	}
	good := make([]*dag.Event, 300)
	for i := range good {
		if good[i], err = dag.NewSigned(priv, create.RoomID(), dag.KindMessage, []dag.EventID{create.ID()}, int64(i), fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	forge := func(e *dag.Event) *dag.Event {
		raw := bytes.Clone(e.Bytes())
		raw[len(raw)-1] ^= 0x04
		f, err := dag.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		n   int
		bad []int
	}{
		{0, nil}, {1, nil}, {1, []int{0}}, {64, []int{63}}, {65, []int{64}},
		{150, []int{75}}, {150, []int{149}}, {300, []int{10, 200}}, {300, []int{250, 290}}, {300, nil},
	} {
		t.Run(fmt.Sprintf("n=%d bad=%v", tc.n, tc.bad), func(t *testing.T) {
			evs := append([]*dag.Event(nil), good[:tc.n]...)
			for _, i := range tc.bad {
				evs[i] = forge(evs[i])
			}
			want := -1
			for i, e := range evs {
				if e.Verify() != nil {
					want = i
					break
				}
			}
			if len(tc.bad) > 0 && want != tc.bad[0] {
				t.Fatalf("test setup: first forgery at %d, Verify fails first at %d", tc.bad[0], want)
			}
			if got := firstBadSignature(evs); got != want {
				t.Fatalf("firstBadSignature = %d, want %d", got, want)
			}
		})
	}
}
