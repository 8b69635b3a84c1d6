package p2p

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// Spoilings of an event's signature for the verifier tests.
const (
	sigGood  = iota
	sigFlipR // a bit of R flipped
	sigFlipS // a bit of S flipped
)

// spoiledEvents returns one signed event per entry of kinds, from three
// origins, each kept or spoiled as its kind says.
func spoiledEvents(t *testing.T, kinds []int) []*dag.Event {
	t.Helper()
	create, err := dag.NewSigned(dagtest.Key(40), dag.RoomID{}, dag.KindCreate, nil, 0, []byte("verifier"))
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]*dag.Event, len(kinds))
	for i, kind := range kinds {
		e, err := dag.NewSigned(dagtest.Key(byte(40+i%3)), create.RoomID(), dag.KindMessage, []dag.EventID{create.ID()}, int64(i), fmt.Appendf(nil, "event %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if kind != sigGood {
			raw := bytes.Clone(e.Bytes())
			sig := raw[len(raw)-dag.SignatureSize:]
			half := sig[:32] // R
			if kind == sigFlipS {
				half = sig[32:]
			}
			half[i%31] ^= 0x08
			if e, err = dag.Decode(raw); err != nil {
				t.Fatal(err)
			}
			if e.Verify() == nil {
				t.Fatalf("test setup: spoiled event %d verifies", i)
			}
		}
		evs[i] = e
	}
	return evs
}

// sameOutcome fails unless err is what e.Verify says: nil for nil, and a bad
// signature for a rejection.
func sameOutcome(t *testing.T, i int, e *dag.Event, err error) {
	t.Helper()
	want := e.Verify()
	if (err == nil) != (want == nil) {
		t.Fatalf("event %d: got %v, Verify says %v", i, err, want)
	}
	if err != nil && !errors.Is(err, dag.ErrBadSignature) {
		t.Fatalf("event %d: error %v is not a bad signature", i, err)
	}
}

// TestVerifier checks that concurrent requests through a Verifier get
// exactly Verify's outcome each, good and bad mixed, and that it still
// verifies after Close.
func TestVerifier(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	kinds := make([]int, 300)
	for i := range kinds {
		if rng.IntN(10) == 0 {
			kinds[i] = 1 + rng.IntN(2)
		}
	}
	evs := spoiledEvents(t, kinds)
	v := NewVerifier(2)
	errs := make([]error, len(evs))
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(evs); i += 16 {
				errs[i] = v.Verify(evs[i])
			}
		})
	}
	wg.Wait()
	for i, e := range evs {
		sameOutcome(t, i, e, errs[i])
	}
	v.Close()
	v.Close() // idempotent
	for i, e := range spoiledEvents(t, []int{sigGood, sigFlipR, sigFlipS}) {
		sameOutcome(t, i, e, v.Verify(e))
	}
}

// TestVerifyEach checks that a batch gives each event Verify's outcome,
// whether it has no bad event, one, or several (after the first bad one,
// each event is checked on its own).
func TestVerifyEach(t *testing.T) {
	for _, kinds := range [][]int{
		{},
		{sigGood},
		{sigFlipS},
		{sigGood, sigGood, sigGood, sigGood},
		{sigGood, sigGood, sigGood, sigFlipR},
		{sigFlipR, sigGood, sigGood, sigGood},
		{sigGood, sigFlipR, sigGood, sigGood, sigFlipS, sigFlipR, sigFlipS, sigGood, sigFlipR, sigFlipR, sigGood},
	} {
		t.Run(fmt.Sprint(kinds), func(t *testing.T) {
			evs := spoiledEvents(t, kinds)
			errs := verifyEach(evs)
			if len(errs) != len(evs) {
				t.Fatalf("%d outcomes for %d events", len(errs), len(evs))
			}
			for i, e := range evs {
				sameOutcome(t, i, e, errs[i])
			}
		})
	}
}
