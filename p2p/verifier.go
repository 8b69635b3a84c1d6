package p2p

import (
	"runtime"
	"sync"

	"github.com/rhizome-chat/rhizome/dag"
)

// verifierBatch is the most requests a Verifier worker checks at once:
// dag.VerifyBatch's chunk, beyond which the cost per signature hardly falls.
const verifierBatch = 64

// Verifier verifies the signatures of events that many goroutines hand it
// one at a time (gossip validators, say) in batches: a worker that receives
// a request yields once, so that the rest of a burst can queue, then takes
// every request waiting, up to 64, and checks them with one multiscalar
// multiplication ([dag.VerifyBatch]). In a batch a request costs about a
// quarter of [dag.Event.Verify]; a request that arrives alone is verified
// alone, at Verify's cost. The outcome for every event is exactly Verify's.
// A Verifier is safe for concurrent use.
type Verifier struct {
	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *verifyRequest
	wg     sync.WaitGroup
}

type verifyRequest struct {
	e    *dag.Event
	err  error
	done chan struct{}
}

// NewVerifier starts a Verifier with the given number of workers (0: one
// per CPU).
func NewVerifier(workers int) *Verifier {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	v := &Verifier{reqs: make(chan *verifyRequest, 4*verifierBatch)}
	for range workers {
		v.wg.Go(v.work)
	}
	return v
}

// Verify checks e's signature as [dag.Event.Verify] does. After Close it
// verifies on the calling goroutine.
func (v *Verifier) Verify(e *dag.Event) error {
	v.mu.RLock()
	if v.closed {
		v.mu.RUnlock()
		return e.Verify()
	}
	r := &verifyRequest{e: e, done: make(chan struct{})}
	v.reqs <- r
	v.mu.RUnlock()
	<-r.done
	return r.err
}

// Close stops the workers once the requests already queued are answered.
func (v *Verifier) Close() {
	v.mu.Lock()
	if !v.closed {
		v.closed = true
		close(v.reqs)
	}
	v.mu.Unlock()
	v.wg.Wait()
}

func (v *Verifier) work() {
	batch := make([]*verifyRequest, 0, verifierBatch)
	evs := make([]*dag.Event, 0, verifierBatch)
	for r := range v.reqs {
		batch = append(batch[:0], r)
		// Requests come in bursts (a group commit answers many producers at
		// once); let the rest of a burst queue up before draining.
		runtime.Gosched()
	drain:
		for len(batch) < verifierBatch {
			select {
			case r, ok := <-v.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) == 1 {
			batch[0].err = batch[0].e.Verify()
			close(batch[0].done)
			continue
		}
		evs = evs[:0]
		for _, r := range batch {
			evs = append(evs, r.e)
		}
		errs := verifyEach(evs)
		for i, r := range batch {
			r.err = errs[i]
		}
		for _, r := range batch {
			close(r.done)
		}
	}
}

// verifyEach returns Verify's outcome for each event: one dag.VerifyBatch,
// and if it finds a bad event, Verify for each event after it. Retrying the
// batch on the rest instead would let a sender of many bad signatures make
// every batch cost quadratic time.
func verifyEach(evs []*dag.Event) []error {
	errs := make([]error, len(evs))
	k, err := dag.VerifyBatch(evs)
	if k < 0 {
		return errs
	}
	errs[k] = err
	for i := k + 1; i < len(evs); i++ {
		errs[i] = evs[i].Verify()
	}
	return errs
}
