package p2p

import (
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
)

// maxHints bounds the hint IDs kept for one queued pull.
const maxHints = MaxRequestIDs

// puller runs pulls (room, peer) on a fixed pool of workers. Requests for
// the same room and peer coalesce: while one is queued, new hints merge
// into it; while one runs, a follow-up is queued once it finishes. So the
// queue holds at most one entry per (room, peer), however often gossip and
// timers ask.
type puller struct {
	m       *Mesh
	workers int

	mu    sync.Mutex
	cond  *sync.Cond
	queue []pullKey
	jobs  map[pullKey]*pullJob
	stop  bool
}

type pullKey struct {
	room dag.RoomID
	peer peer.ID
}

type pullJob struct {
	queued, running, again bool
	full                   bool // a heads exchange is wanted, not only the hints
	hints                  []dag.EventID
}

func newPuller(m *Mesh, workers int) *puller {
	p := &puller{m: m, workers: workers, jobs: make(map[pullKey]*pullJob)}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *puller) start() {
	for range p.workers {
		p.m.goFunc(p.work)
	}
	p.m.goFunc(func() {
		<-p.m.ctx.Done()
		p.mu.Lock()
		p.stop = true
		p.mu.Unlock()
		p.cond.Broadcast()
	})
}

// schedule asks for a pull of room from pr. With hints, the pull fetches
// the missing ancestors of those IDs; without, it starts with a heads
// exchange.
func (p *puller) schedule(room dag.RoomID, pr peer.ID, hints []dag.EventID) {
	if pr == p.m.h.ID() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop {
		return
	}
	k := pullKey{room, pr}
	j := p.jobs[k]
	if j == nil {
		j = &pullJob{}
		p.jobs[k] = j
	}
	if len(hints) == 0 {
		j.full = true
	}
	for _, h := range hints {
		if len(j.hints) < maxHints && !slices.Contains(j.hints, h) {
			j.hints = append(j.hints, h)
		}
	}
	if j.running {
		j.again = true
		return
	}
	if !j.queued {
		j.queued = true
		p.queue = append(p.queue, k)
		p.cond.Signal()
	}
}

func (p *puller) work() {
	for {
		p.mu.Lock()
		for len(p.queue) == 0 && !p.stop {
			p.cond.Wait()
		}
		if p.stop {
			p.mu.Unlock()
			return
		}
		k := p.queue[0]
		p.queue = p.queue[1:]
		j := p.jobs[k]
		j.queued, j.running, j.again = false, true, false
		full, hints := j.full, j.hints
		j.full, j.hints = false, nil
		p.mu.Unlock()

		p.m.pull(k.room, k.peer, full, hints)

		p.mu.Lock()
		j.running = false
		if j.again && !p.stop {
			j.queued = true
			p.queue = append(p.queue, k)
			p.cond.Signal()
		} else if !j.queued {
			delete(p.jobs, k)
		}
		p.mu.Unlock()
	}
}
