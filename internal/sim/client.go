package sim

import (
	"fmt"
	"math"
	"strings"

	"github.com/rhizome-chat/rhizome/dag"
)

// client is a room member at its home server with one MLS device: it
// proposes changes as path-update commits on its server's canonical tip
// (each stapling a room-name change that carries the change ID) and sends
// application messages in the tip's epoch, re-proposing changes and
// re-sending messages that landed on a losing branch. Like an MLS client,
// it has at most one commit pending: it proposes a new change only when
// no change waits for its seal, and re-proposes its lost changes together
// in one commit. A client acts only
// in an epoch its device can reach (not at the create event, unless it is
// the creator); until then it waits.
type client struct {
	w    *world
	idx  int
	home int
	dev  *device

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
	commit   dag.EventID
	parent   dag.EventID
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
	epoch dag.EventID
	sends int
}

// never is a gap no run reaches (and no tick plus it overflows).
const never = math.MaxUint64 / 4

func (c *client) gap(mean uint64) uint64 {
	if mean == 0 {
		return never
	}
	return 1 + c.w.rng.Uint64N(2*mean)
}

func (c *client) tick() {
	s := c.w.servers[c.home]
	if !s.up {
		return
	}
	w := c.w
	// A device holds one pending commit at a time: the lost changes are
	// re-proposed together, in one commit, only while no other commit of
	// this client waits for its seal.
	inFlight, unsealed := false, false
	var lost []*change
	kept := c.changes[:0]
	for _, ch := range c.changes {
		switch {
		case s.certSeen[ch.commit]:
			w.changeDone(ch)
			continue
		case s.chainSet[ch.commit]:
			// applied; waiting for its certificate
		case c.lost(ch, s):
			lost = append(lost, ch)
			unsealed = true
		default:
			inFlight, unsealed = true, true
		}
		kept = append(kept, ch)
	}
	c.changes = kept
	if !inFlight && len(lost) > 0 && c.propose(lost...) {
		w.rep.ExtraCommits++
	}
	if !unsealed && c.changesLeft > 0 && w.loadOn() && w.now >= c.nextCommitAt && w.canAct(c.dev, s.tip()) {
		c.changesLeft--
		ch := &change{id: fmt.Sprintf("change-%d-%d", c.idx, c.changesLeft), proposed: w.now,
			connOn: w.connected[c.home], connSince: w.now}
		c.changes = append(c.changes, ch)
		w.rep.Changes++
		ch.attempt = -1
		c.propose(ch)
		c.nextCommitAt = w.now + c.gap(w.sc.CommitEvery)
	}
	if w.loadOn() && w.now >= c.nextMsgAt && w.canAct(c.dev, s.tip()) {
		c.sentMsgs++
		m := &message{id: fmt.Sprintf("msg-%d-%d", c.idx, c.sentMsgs)}
		c.msgs = append(c.msgs, m)
		w.rep.MessagesSent++
		c.send(m)
		c.nextMsgAt = w.now + c.gap(w.sc.MessageEvery)
	}
	// Re-send, in the canonical epoch and under the same message ID, every
	// message whose epoch fell off the home server's canonical chain.
	if c.checkedVer == s.chainVer {
		return // new messages went to the tip; no epoch left the chain
	}
	done := true
	for _, m := range c.msgs {
		if !s.chainSet[m.epoch] {
			if !c.send(m) {
				done = false
				continue
			}
			w.rep.MessagesResent++
		}
	}
	if done {
		c.checkedVer = s.chainVer
	}
}

// lost reports whether a change's commit can no longer become canonical
// here: its parent left the chain, or another commit took its slot.
func (c *client) lost(ch *change, s *server) bool {
	if !s.chainSet[ch.parent] {
		return true
	}
	if ch.parent == c.w.create.ID() {
		return len(s.chain) > 0
	}
	for i, id := range s.chain {
		if id == ch.parent {
			return i+1 < len(s.chain)
		}
	}
	return false
}

// propose commits the changes' next attempts, together, on the home
// server's tip. It reports whether the commit was made (the device can
// reach the tip).
func (c *client) propose(chs ...*change) bool {
	s := c.w.servers[c.home]
	parent := s.tip()
	if !c.w.canAct(c.dev, parent) {
		return false
	}
	names := make([]string, len(chs))
	ids := make([]string, len(chs))
	for i, ch := range chs {
		names[i], ids[i] = fmt.Sprintf("%s#%d", ch.id, ch.attempt+1), ch.id
	}
	ev, err := c.w.makeCommit(c, s, parent, strings.Join(names, " "), ids)
	if err != nil {
		c.w.violate("client %d: commit: %v", c.idx, err)
		return false
	}
	for _, ch := range chs {
		ch.parent, ch.commit = parent, ev.ID()
		ch.attempt++
	}
	s.submit(ev)
	return true
}

// send sends the message's next copy in the home server's tip's epoch. It
// reports whether it was sent (the device can reach the tip).
func (c *client) send(m *message) bool {
	s := c.w.servers[c.home]
	epoch := s.tip()
	if !c.w.canAct(c.dev, epoch) {
		return false
	}
	ev, err := c.w.makeMessage(c, s, epoch, m.id, m.sends+1)
	if err != nil {
		c.w.violate("client %d: message: %v", c.idx, err)
		return false
	}
	m.sends++
	m.epoch = epoch
	s.submit(ev)
	return true
}
