package sim

import (
	"container/heap"
	"math/rand/v2"

	"github.com/rhizome-chat/rhizome/dag"
)

// packet is what travels between servers: pushed events, or a sync request
// listing what the requester has.
type packet struct {
	events []*dag.Event
	// syncFrom >= 0 marks a pull request; have is the length of the
	// requester's store log when it asked (it holds those events).
	syncFrom int
	have     uint64
}

type delivery struct {
	at, seq  uint64
	from, to int
	p        packet
}

type queue []delivery

// Len, Less, Swap, Push and Pop implement container/heap.Interface: the
// queue pops deliveries by time, then by send order.
func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(delivery)) }
func (q *queue) Pop() any {
	old := *q
	d := old[len(old)-1]
	*q = old[:len(old)-1]
	return d
}

// network is a seeded, deterministic message network with latency,
// loss, duplication, reordering (latency jitter), partitions and flapping
// links.
type network struct {
	rng        *rand.Rand
	q          queue
	seq        uint64
	group      []int // partition group per server; equal groups can talk
	flaps      []flap
	latMin     uint64
	latMax     uint64
	loss, dup  int
	noFaults   bool // set during the settle phase: no loss or duplication
	sent       int
	dropped    int
	duplicated int
}

type flap struct {
	a, b          int
	period, until uint64
	from          uint64
}

func (n *network) linkUp(a, b int, now uint64) bool {
	if a == b {
		return true
	}
	if n.group[a] != n.group[b] {
		return false
	}
	for _, f := range n.flaps {
		if ((f.a == a && f.b == b) || (f.a == b && f.b == a)) && now < f.until {
			if ((now-f.from)/f.period)%2 == 0 {
				return false
			}
		}
	}
	return true
}

func (n *network) send(now uint64, from, to int, p packet) {
	n.sent++
	if !n.linkUp(from, to, now) {
		n.dropped++
		return
	}
	if !n.noFaults && n.rng.IntN(1000) < n.loss {
		n.dropped++
		return
	}
	copies := 1
	if !n.noFaults && n.rng.IntN(1000) < n.dup {
		copies = 2
		n.duplicated++
	}
	for range copies {
		lat := n.latMin + n.rng.Uint64N(n.latMax-n.latMin+1)
		n.seq++
		heap.Push(&n.q, delivery{at: now + lat, seq: n.seq, from: from, to: to, p: p})
	}
}

// due pops the next delivery at or before now.
func (n *network) due(now uint64) (delivery, bool) {
	if len(n.q) == 0 || n.q[0].at > now {
		return delivery{}, false
	}
	return heap.Pop(&n.q).(delivery), true
}
