package consensus

import (
	"slices"
	"testing"
)

// cluster runs machines with instant delivery over links the test cuts
// and restores. It records every action per server.
type cluster struct {
	t    *testing.T
	k    *kit
	ms   map[ServerID]*Machine
	cut  map[[2]ServerID]bool
	down map[ServerID]bool
	acts map[ServerID][]Action
	evs  map[ServerID][]Event // persisted events per server
}

func newCluster(t *testing.T, n int, p Params) *cluster {
	c := &cluster{t: t, k: newKit(n), ms: map[ServerID]*Machine{}, cut: map[[2]ServerID]bool{},
		down: map[ServerID]bool{}, acts: map[ServerID][]Action{}, evs: map[ServerID][]Event{}}
	for _, s := range c.k.mem.Servers {
		m, err := New(Config{Room: c.k.room, Root: c.k.root, Self: s, Membership: c.k.mem, Params: p})
		if err != nil {
			t.Fatal(err)
		}
		c.ms[s] = m
	}
	return c
}

func (c *cluster) linked(a, b ServerID) bool {
	return a == b || (!c.cut[[2]ServerID{a, b}] && !c.cut[[2]ServerID{b, a}] && !c.down[a] && !c.down[b])
}

// isolate cuts every link between the two groups.
func (c *cluster) isolate(a, b []ServerID) {
	for _, x := range a {
		for _, y := range b {
			c.cut[[2]ServerID{x, y}] = true
		}
	}
}

func (c *cluster) heal() { clear(c.cut) }

// deliver steps ev into server to and performs the resulting actions.
func (c *cluster) deliver(to ServerID, ev Event) {
	if c.down[to] {
		return
	}
	acts, err := c.ms[to].Step(ev)
	if err != nil {
		c.t.Fatalf("Step: %v", err)
	}
	if acts == nil && c.ms[to].Has(ev.ID) && slices.ContainsFunc(c.evs[to], func(e Event) bool { return e.ID == ev.ID }) {
		return
	}
	c.evs[to] = append(c.evs[to], ev)
	c.perform(to, acts)
}

// broadcast delivers ev from origin to every linked server, origin first.
func (c *cluster) broadcast(origin ServerID, ev Event) {
	c.deliver(origin, ev)
	for _, s := range c.k.mem.Servers {
		if s != origin && c.linked(origin, s) {
			c.deliver(s, ev)
		}
	}
}

func (c *cluster) perform(s ServerID, acts []Action) {
	for _, a := range acts {
		c.acts[s] = append(c.acts[s], a)
		switch a := a.(type) {
		case SendSeal:
			c.broadcast(s, c.k.sealEv(s, a.Seal))
		case SendAck:
			b, _ := a.Ack.Marshal()
			c.broadcast(s, Event{ID: voteID("ack", s, b), From: s, Ack: &a.Ack})
		case SendSuspect:
			b, _ := a.Suspect.Marshal()
			c.broadcast(s, Event{ID: voteID("suspect", s, b), From: s, Suspect: &a.Suspect})
		}
	}
}

func (c *cluster) tick(n int) {
	for range n {
		for _, s := range c.k.mem.Servers {
			if !c.down[s] {
				c.perform(s, c.ms[s].Tick())
			}
		}
	}
}

// sync gives every pair of linked servers each other's events.
func (c *cluster) sync() {
	for _, a := range c.k.mem.Servers {
		for _, b := range c.k.mem.Servers {
			if a != b && c.linked(a, b) {
				for _, ev := range slices.Clone(c.evs[a]) {
					if !c.ms[b].Has(ev.ID) {
						c.deliver(b, ev)
					}
				}
			}
		}
	}
}

func (c *cluster) propose(at ServerID, name, parent string) {
	ev := c.k.commit(name, parent)
	ev.From = at
	c.broadcast(at, ev)
}

func (c *cluster) chain(s ServerID) []string { return c.k.names_(c.ms[s].Canonical()) }

func count[T Action](acts []Action) int {
	n := 0
	for _, a := range acts {
		if _, ok := a.(T); ok {
			n++
		}
	}
	return n
}

func find[T Action](acts []Action) []T {
	var out []T
	for _, a := range acts {
		if x, ok := a.(T); ok {
			out = append(out, x)
		}
	}
	return out
}
