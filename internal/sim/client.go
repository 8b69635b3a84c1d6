package sim

import (
	"fmt"

	"github.com/rhizome-chat/rhizome/consensus"
)

// client is an abstract room member at its home server: it proposes
// changes as commits and sends application messages, re-proposing changes
// and re-sending messages that landed on a losing branch. It needs no MLS:
// the ordering layer only sees commit parents and message epochs.
type client struct {
	w    *world
	idx  int
	home int

	changesLeft int
	// changes are proposed and not yet certified. A change whose commit is
	// on the home server's chain counts as applied (clients apply sealed
	// commits at once); the client proposes its next change only when none
	// is waiting for a seal.
	changes      []*change
	nextCommitAt uint64
	nextMsgAt    uint64
	sentMsgs     int
	msgs         []*message
	// checkedVer is the home server's chain version at the last check of
	// every message's epoch; while it holds, every epoch is still canonical.
	checkedVer int
}

type change struct {
	id       string
	attempt  int
	commit   consensus.EventID
	parent   consensus.EventID
	proposed uint64
	// connOn says the home server has been in a connected majority since
	// tick connSince without a break (property 4's clock).
	connOn    bool
	connSince uint64
}

// trackConnected starts or stops each pending change's property-4 clock.
func (c *client) trackConnected() {
	on := c.w.connected[c.home]
	for _, ch := range c.changes {
		if on && !ch.connOn {
			ch.connSince = c.w.now
		}
		ch.connOn = on
	}
}

type message struct {
	id    string
	epoch consensus.EventID
	sends int
}

func (c *client) gap(mean uint64) uint64 {
	if mean == 0 {
		return ^uint64(0)
	}
	return 1 + c.w.rng.Uint64N(2*mean)
}

func (c *client) tick() {
	s := c.w.servers[c.home]
	if !s.up {
		return
	}
	w := c.w
	chain, onChain := s.chain()
	unsealed := false
	kept := c.changes[:0]
	for _, ch := range c.changes {
		switch {
		case s.m.IsCertified(ch.commit):
			w.changeDone(ch)
			continue
		case onChain[ch.commit]:
			// applied; waiting for its certificate
		case c.lost(ch, chain, onChain):
			ch.attempt++
			w.rep.ExtraCommits++
			c.propose(ch)
			chain, onChain = s.chain()
			unsealed = unsealed || !onChain[ch.commit]
		default:
			unsealed = true
		}
		kept = append(kept, ch)
	}
	c.changes = kept
	if !unsealed && c.changesLeft > 0 && w.loadOn() && w.now >= c.nextCommitAt {
		c.changesLeft--
		ch := &change{id: fmt.Sprintf("change-%d-%d", c.idx, c.changesLeft), proposed: w.now,
			connOn: w.connected[c.home], connSince: w.now}
		c.changes = append(c.changes, ch)
		w.rep.Changes++
		c.propose(ch)
		c.nextCommitAt = w.now + c.gap(w.sc.CommitEvery)
	}
	if w.loadOn() && w.now >= c.nextMsgAt {
		c.sentMsgs++
		m := &message{id: fmt.Sprintf("msg-%d-%d", c.idx, c.sentMsgs)}
		c.msgs = append(c.msgs, m)
		w.rep.MessagesSent++
		c.send(m)
		c.nextMsgAt = w.now + c.gap(w.sc.MessageEvery)
	}
	// Re-send, in the canonical epoch and under the same message ID, every
	// message whose epoch fell off the home server's canonical chain.
	_, onChain = s.chain() // a proposal above may have extended it
	if c.checkedVer == s.chainVer {
		return // new messages went to the tip; no epoch left the chain
	}
	for _, m := range c.msgs {
		if !onChain[m.epoch] {
			w.rep.MessagesResent++
			c.send(m)
		}
	}
	c.checkedVer = s.chainVer
}

// lost reports whether a change's commit can no longer become canonical
// here: its parent left the chain, or another commit took its slot.
func (c *client) lost(ch *change, chain []consensus.EventID, onChain map[consensus.EventID]bool) bool {
	if !onChain[ch.parent] {
		return true
	}
	if ch.parent == c.w.root {
		return len(chain) > 0
	}
	for i, id := range chain {
		if id == ch.parent {
			return i+1 < len(chain)
		}
	}
	return false
}

func (c *client) propose(ch *change) {
	s := c.w.servers[c.home]
	ch.parent = s.tip()
	ev := c.w.newEvent(kindCommit, s, s.key, ch.parent, fmt.Appendf(nil, "%s#%d", ch.id, ch.attempt))
	ch.commit = ev.ID
	c.w.commitChange[ev.ID] = ch.id
	s.receive(ev)
	s.broadcast(ev)
}

func (c *client) send(m *message) {
	s := c.w.servers[c.home]
	m.sends++
	m.epoch = s.tip()
	ev := c.w.newEvent(kindMessage, s, s.key, m.epoch, fmt.Appendf(nil, "%s#%d", m.id, m.sends))
	s.receive(ev)
	s.broadcast(ev)
}
