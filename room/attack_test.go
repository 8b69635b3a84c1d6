package room

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Attacks on the engine by a hostile member server (or a member device
// through its server): events that should not be accepted, honest events
// rejected on some servers only (by arrival order or restart), unbounded
// work, panics. Each test builds real MLS bytes with the kit.

// peer is one server's engine in a cluster test, with what its host
// recorded (accepted events and order records, for Restore) and the
// verdicts it reached.
type peer struct {
	dom      string
	e        *Engine
	events   map[dag.EventID]*dag.Event
	record   []Recorded
	rejected map[dag.EventID]*RejectError
	accepted map[dag.EventID]bool
}

// cluster is the kit's two servers, each with its own engine, exchanging
// votes until quiet.
type cluster struct {
	k     *kit
	peers []*peer
}

func newPeer(k *kit, dom string) *peer {
	k.t.Helper()
	e, err := New(k.create, Config{Self: k.servers[dom].id, TickLength: 10 * time.Millisecond, Now: time.UnixMilli(0)})
	if err != nil {
		k.t.Fatal(err)
	}
	p := &peer{dom: dom, e: e, events: map[dag.EventID]*dag.Event{k.create.ID(): k.create},
		rejected: map[dag.EventID]*RejectError{}, accepted: map[dag.EventID]bool{}}
	p.collect()
	return p
}

// newCluster makes a cluster of the kit's servers; the kit's engine
// becomes a.test's (so that kit helpers read its state).
func newCluster(k *kit) *cluster {
	c := &cluster{k: k, peers: []*peer{newPeer(k, "a.test"), newPeer(k, "b.test")}}
	k.e = c.peers[0].e
	return c
}

// collect records the peer's Ready and returns the votes it asks for,
// signed.
func (p *peer) collect() []Vote {
	rd := p.e.Ready()
	p.e.Advance()
	for _, en := range rd.Entries {
		if en.Order != nil {
			p.record = append(p.record, Recorded{Order: en.Order})
			continue
		}
		p.record = append(p.record, Recorded{Event: p.events[en.Event]})
		p.accepted[en.Event] = true
	}
	for _, r := range rd.Rejected {
		p.rejected[r.Event] = r.Err
	}
	return rd.Votes
}

// step steps evs into p alone and returns its votes as signed events.
func (c *cluster) stepOne(p *peer, evs ...*dag.Event) []*dag.Event {
	for _, ev := range evs {
		p.events[ev.ID()] = ev
	}
	p.e.Step(evs...)
	var out []*dag.Event
	for _, v := range p.collect() {
		out = append(out, c.k.sign(p.dom, c.k.room, v.Kind, []dag.EventID{c.k.create.ID()}, v.Content))
	}
	return out
}

// deliver steps evs into every peer, then exchanges the votes they cause
// until none is left.
func (c *cluster) deliver(evs ...*dag.Event) {
	queue := [][]*dag.Event{evs}
	for len(queue) > 0 {
		batch := queue[0]
		queue = queue[1:]
		for _, p := range c.peers {
			if vs := c.stepOne(p, batch...); len(vs) > 0 {
				queue = append(queue, vs)
			}
		}
	}
}

// restored rebuilds p's engine from its record.
func (c *cluster) restored(p *peer) *peer {
	c.k.t.Helper()
	e, err := Restore(p.record, nil, Config{Self: c.k.servers[p.dom].id, TickLength: 10 * time.Millisecond, Now: time.UnixMilli(0)})
	if err != nil {
		c.k.t.Fatal(err)
	}
	q := &peer{dom: p.dom, e: e, events: map[dag.EventID]*dag.Event{}, record: append([]Recorded(nil), p.record...),
		rejected: map[dag.EventID]*RejectError{}, accepted: map[dag.EventID]bool{}}
	for id, ev := range p.events {
		q.events[id] = ev
	}
	e.Advance()
	return q
}

// verdict steps ev into a peer's engine alone and returns its rejection
// (nil if accepted).
func verdict(p *peer, ev *dag.Event) *RejectError {
	p.events[ev.ID()] = ev
	p.e.Step(ev)
	p.collect()
	return p.rejected[ev.ID()]
}

// message is a PrivateMessage of user name's group, as an event naming
// epoch, through origin.
func (k *kit) message(name, origin string, epoch dag.EventID) *dag.Event {
	k.t.Helper()
	u := k.users[name]
	msg, err := u.g.Send(rand.Reader, nil, []byte("hi"))
	if err != nil {
		k.t.Fatal(err)
	}
	raw, err := msg.Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	content, err := (&roomevent.Message{Sender: roomevent.Sender{User: u.user, Client: u.device}, Epoch: epoch, Message: raw}).Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	return k.sign(origin, k.room, dag.KindMessage, []dag.EventID{k.create.ID()}, content)
}

// stateEvent is a state event of user name (signed with its device's MLS
// signature key, as the client does) carrying op encoded against the
// canonical state.
func (k *kit) stateEvent(name string, op roomstate.Op) *dag.Event {
	k.t.Helper()
	u := k.users[name]
	comp, update, err := roomstate.EncodeOp(k.e.State(), op)
	if err != nil {
		k.t.Fatal(err)
	}
	st := &roomevent.State{Sender: roomevent.Sender{User: u.user, Client: u.device}, Changes: []roomevent.Change{{Component: uint16(comp), Update: update}}}
	if err := st.Sign(k.room, ed25519.NewKeyFromSeed(u.sig.Bytes())); err != nil {
		k.t.Fatal(err)
	}
	content, err := st.Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	return k.sign(roomstate.URI(u.user).Domain(), k.room, dag.KindState, []dag.EventID{k.create.ID()}, content)
}

// topic is a metadata change of the room's subject.
func (k *kit) topic(subject string) roomstate.Op {
	md := k.e.State().Metadata()
	md.Subject = subject
	return &roomstate.MetadataUpdate{Metadata: md}
}

// invite is the participant add of user (no device) in the state of
// epoch at.
func (k *kit) invite(at dag.EventID, user string) []roomevent.Change {
	k.t.Helper()
	return []roomevent.Change{k.change(at, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: roomstate.URI(user), Role: roomstate.RoleMember}}})}
}

// mergeAs moves user name's group to the commit it made (pc, event ev).
func (k *kit) merge(name string, ev *dag.Event, pc *mls.PendingCommit) {
	k.t.Helper()
	if err := k.users[name].g.MergeCommit(pc, ev.ID().Bytes(), time.Now()); err != nil {
		k.t.Fatal(err)
	}
}

// process moves user name's group on by another member's commit ev.
func (k *kit) process(name string, ev *dag.Event) error {
	c, err := roomevent.DecodeCommit(ev.Content)
	if err != nil {
		return err
	}
	msg, err := mls.UnmarshalMLSMessage(c.Commit)
	if err != nil {
		return err
	}
	_, err = k.users[name].g.ProcessMessage(msg, &mls.ProcessOptions{EpochID: ev.ID().Bytes(), Now: time.Now()})
	return err
}

// addBob is kit.addBob through the cluster: alice adds bob, every
// group moves to the new epoch.
func (c *cluster) addBob() *dag.Event {
	k := c.k
	k.t.Helper()
	kb := k.keyPackage("bob")
	ev, pc := k.commitEvent(commitSpec{by: "alice", parent: k.create.ID(), props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}},
		changes: []roomevent.Change{k.change(k.create.ID(), &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: roomstate.URI(k.users["bob"].user), Role: roomstate.RoleMember}}})}})
	c.deliver(ev)
	for _, p := range c.peers {
		if r := p.rejected[ev.ID()]; r != nil {
			k.t.Fatalf("%s: honest first commit rejected: %v", p.dom, r)
		}
	}
	k.merge("alice", ev, pc)
	g, err := mls.JoinGroup(pc.Welcome, kb, &mls.JoinOptions{Config: mls.GroupConfig{RatchetTreeInWelcome: true}, EpochID: ev.ID().Bytes()})
	if err != nil {
		k.t.Fatal(err)
	}
	k.users["bob"].g = g
	return ev
}

// commit makes, delivers and merges an empty commit (an UpdatePath) of
// user by on parent; every other member of the kit listed in others
// processes it.
func (c *cluster) commit(by string, parent dag.EventID, others ...string) *dag.Event {
	c.k.t.Helper()
	return c.commitChanges(by, parent, nil, others...)
}

// commitChanges is commit with stapled room-state changes.
func (c *cluster) commitChanges(by string, parent dag.EventID, changes []roomevent.Change, others ...string) *dag.Event {
	k := c.k
	k.t.Helper()
	return c.commitSpec(commitSpec{by: by, parent: parent, changes: changes}, others...)
}

// commitSpec delivers the honest commit of s, merges it into its
// committer's group and processes it in the others'.
func (c *cluster) commitSpec(s commitSpec, others ...string) *dag.Event {
	k := c.k
	k.t.Helper()
	by := s.by
	ev, pc := k.commitEvent(s)
	c.deliver(ev)
	for _, p := range c.peers {
		if r := p.rejected[ev.ID()]; r != nil {
			k.t.Fatalf("%s: honest commit rejected: %v", p.dom, r)
		}
	}
	k.merge(by, ev, pc)
	for _, o := range others {
		if err := k.process(o, ev); err != nil {
			k.t.Fatal(err)
		}
	}
	return ev
}

// TestAttackOldEpochMessageCost: a message (or proposal, or commit)
// naming an old epoch made the engine fold the room's whole history of
// state entries again (the snapshots reach back only snapWindow entries):
// one cheap event per history length of work, for any member server, even
// for a message that is then refused. The state of each kept epoch is now
// remembered (and, since state events take effect only when a commit
// adopts them, never changes once computed); the state events here are
// history the fold must not walk.
func TestAttackOldEpochMessageCost(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	old, err := k.users["bob"].g.Snapshot().Restore() // bob's group in e1's epoch
	if err != nil {
		t.Fatal(err)
	}
	c.commit("alice", e1.ID(), "bob")
	const history = 2 * snapWindow
	for i := range history {
		c.deliver(k.stateEvent("alice", k.topic(fmt.Sprint("topic ", i))))
	}
	k.users["carol"].g = old // carol speaks as bob, in e1
	k.users["carol"].user, k.users["carol"].device = k.users["bob"].user, k.users["bob"].device
	msgs := map[string]*dag.Event{"e1": k.message("carol", "b.test", e1.ID()), "root": k.message("carol", "b.test", k.create.ID())}
	for name, ev := range msgs {
		p := c.peers[0]
		if r := verdict(p, ev); r != nil && name == "e1" {
			t.Fatalf("message in e1 rejected: %v", r)
		}
		allocs := testing.AllocsPerRun(5, func() { p.e.Step(ev); p.e.Advance() })
		t.Logf("%s: %.0f allocations per message", name, allocs)
		if allocs > 2000 {
			t.Errorf("a message naming %s costs %.0f allocations (a fold of the %d state entries)", name, allocs, history)
		}
	}
}

// TestAttackRootEpochMessage: a message naming the create event's epoch
// went unchecked (no public group state is kept for it), so a member
// server could have any PrivateMessage accepted there, of any group epoch
// or group, long after the first commit. It must be of epoch 0 of the
// room's group, like the first commit's GroupInfo.
func TestAttackRootEpochMessage(t *testing.T) {
	k := newKit(t)
	k.addBob()
	alice := k.users["alice"]
	rootMsg := k.message("alice", "a.test", k.create.ID()) // alice's group is in epoch 1
	if r := k.step(rootMsg); r == nil || r.Err.Reason != Reason(mls.ObserverReplay.String()) {
		t.Fatalf("an epoch-1 message naming the create event: %v, want %s", r, mls.ObserverReplay)
	}
	g, err := mls.CreateGroup(rand.Reader, suite, []byte("another group"), alice.sig, mls.NewBasicCredential([]byte(alice.device)), nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.g = g
	if r := k.step(k.message("alice", "a.test", k.create.ID())); r == nil || r.Err.Reason != Reason(mls.ObserverReplay.String()) {
		t.Fatalf("a message of another group naming the create event: %v, want %s", r, mls.ObserverReplay)
	}
	g, err = mls.CreateGroup(rand.Reader, suite, []byte(k.room.String()), alice.sig, mls.NewBasicCredential([]byte(alice.device)), nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.g = g
	if r := k.step(k.message("alice", "a.test", k.create.ID())); r != nil {
		t.Fatalf("an epoch-0 message of the room's group naming the create event: %v", r.Err)
	}
}

// scratchState folds every entry of b on epoch's branch from the create
// event, without snapshots or memos.
func scratchState(b *branchState, epoch dag.EventID) *roomstate.State {
	in := b.branch(epoch)
	var st *roomstate.State
	for i := range b.entries {
		st = applyEntry(st, &b.entries[i], in)
	}
	return st
}

func stateBytes(t testing.TB, st *roomstate.State) string {
	t.Helper()
	comps, err := st.Components()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := roomstate.MarshalComponents(comps)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// checkStates compares StateAt of every known epoch with a fold from
// scratch.
func checkStates(t testing.TB, e *Engine) {
	t.Helper()
	epochs := []dag.EventID{e.b.root}
	for _, en := range e.b.entries {
		if en.Kind == dag.KindCommit {
			epochs = append(epochs, en.ID)
		}
	}
	for _, ep := range epochs {
		got, err := e.StateAt(ep)
		if err != nil {
			t.Fatal(err)
		}
		if stateBytes(t, got) != stateBytes(t, scratchState(e.b, ep)) {
			t.Fatalf("state of epoch %v differs from the fold from scratch", ep)
		}
	}
}

// TestAttackMemoMatchesFold: the remembered epoch states (the fix of
// TestAttackOldEpochMessageCost) equal the fold from scratch, for
// canonical and side epochs, as state events arrive between uses (they
// change no epoch's state until a commit adopts them).
func TestAttackMemoMatchesFold(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	at1, err := k.users["alice"].g.Snapshot().Restore()
	if err != nil {
		t.Fatal(err)
	}
	e2 := c.commit("alice", e1.ID(), "bob")
	// alice's side commit on e1, after e2 was sealed: accepted, not
	// canonical; it invites a user, as the canonical commits do.
	k.users["dave"].g = at1
	k.users["dave"].user, k.users["dave"].device = k.users["alice"].user, k.users["alice"].device
	side, _ := k.commitEvent(commitSpec{by: "dave", parent: e1.ID(), changes: k.invite(e1.ID(), "mimi://a.test/u/side")})
	var topics []dag.EventID
	subjects := map[dag.EventID]string{}
	for i := range 3 * snapWindow / 2 {
		switch {
		case i == 10:
			c.deliver(side)
			if r := c.peers[0].rejected[side.ID()]; r != nil {
				t.Fatalf("side commit: %v", r)
			}
		case i%100 == 50:
			// The commit adopts the last three topics: the one of the
			// highest ID is the subject after it.
			adopt := topics[len(topics)-3:]
			tip := c.commitSpec(commitSpec{by: "alice", parent: k.e.Tip(), changes: k.invite(k.e.Tip(), fmt.Sprint("mimi://a.test/u/canon", i)), adopt: adopt}, "bob")
			last := slices.MaxFunc(adopt, dag.EventID.Compare)
			if s, _ := k.e.StateAt(tip.ID()); s.Metadata().Subject != subjects[last] {
				t.Fatalf("subject after the adopting commit = %q, want %q", s.Metadata().Subject, subjects[last])
			}
		}
		topic := k.stateEvent("alice", k.topic(fmt.Sprint("topic ", i)))
		topics, subjects[topic.ID()] = append(topics, topic.ID()), fmt.Sprint("topic ", i)
		c.deliver(topic)
		if i%37 == 0 {
			checkStates(t, k.e)
		}
	}
	checkStates(t, k.e)
	if s, _ := k.e.StateAt(side.ID()); s.RoleOf("mimi://a.test/u/side") != roomstate.RoleMember || s.RoleOf("mimi://a.test/u/canon50") != roomstate.RoleNone {
		t.Fatal("the side epoch's participants are not its branch's")
	}
	if s, _ := k.e.StateAt(e2.ID()); s.RoleOf("mimi://a.test/u/side") != roomstate.RoleNone {
		t.Fatal("the side commit's change shows in e2")
	}
}

// TestAttackRestoreForgetsServers: Servers (who may write to the room)
// is every server of every room state the engine accepted. A restored
// engine counted only the create event's and the canonical state's, so a
// server added by a commit whose change a later commit undid, or by a
// commit off the canonical chain, could write to the room before a
// restart and not after it: the engines disagree on admission.
func TestAttackRestoreForgetsServers(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	_, cid, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e2 := c.commitChanges("alice", e1.ID(), []roomevent.Change{k.change(e1.ID(), &roomstate.ServersUpdate{Added: []roomstate.Server{{ID: roomstate.ServerID(cid), Domain: "c.test"}}})}, "bob")
	e3 := c.commitChanges("alice", e2.ID(), []roomevent.Change{k.change(e2.ID(), &roomstate.ServersUpdate{Removed: []roomstate.ServerID{roomstate.ServerID(cid)}})}, "bob")
	p := c.peers[0]
	if got, _ := p.e.ServersAt(e2.ID()); !slices.Contains(got, cid) {
		t.Fatalf("ServersAt(the commit adding c.test) = %v", got)
	}
	if got, _ := p.e.ServersAt(e3.ID()); slices.Contains(got, cid) {
		t.Fatalf("ServersAt(the commit removing c.test) = %v", got)
	}
	if !slices.Contains(p.e.Servers(), cid) {
		t.Fatalf("c.test is not among the servers that wrote: %v", p.e.Servers())
	}
	if r := c.restored(p); !slices.Equal(r.e.Servers(), p.e.Servers()) {
		t.Fatalf("restored engine's servers %v, live %v", r.e.Servers(), p.e.Servers())
	}
}

// blankLeavesGroupInfo is an epoch-0 GroupInfo of the room's group, signed
// by alice's device, whose tree has leaves blank leaves before hers: one
// member, as the first commit's check asks, but not the one-leaf tree
// group creation makes.
func (k *kit) blankLeavesGroupInfo(leaves int) []byte {
	k.t.Helper()
	alice := k.users["alice"]
	kb, err := mls.NewKeyPackage(rand.Reader, suite, alice.sig, mls.NewBasicCredential([]byte(alice.device)), nil)
	if err != nil {
		k.t.Fatal(err)
	}
	nodes := make(mls.RatchetTree, 2*leaves+1)
	nodes[2*leaves] = &mls.Node{Leaf: &kb.KeyPackage.LeafNode}
	tree, err := mls.NewTreeFromNodes(suite, nodes)
	if err != nil {
		k.t.Fatal(err)
	}
	th, err := tree.TreeHash()
	if err != nil {
		k.t.Fatal(err)
	}
	enc, err := tree.Encode()
	if err != nil {
		k.t.Fatal(err)
	}
	gi := &mls.GroupInfo{
		GroupContext:    mls.GroupContext{Version: mls.ProtocolVersionMLS10, CipherSuite: suite, GroupID: []byte(k.room.String()), TreeHash: th},
		Extensions:      mls.Extensions{{ExtensionType: mls.ExtensionTypeRatchetTree, ExtensionData: enc}},
		ConfirmationTag: make([]byte, 32),
		Signer:          mls.LeafIndex(leaves),
	}
	if err := gi.Sign(alice.sig); err != nil {
		k.t.Fatal(err)
	}
	raw, err := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatGroupInfo, GroupInfo: gi}).Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	return raw
}

// TestAttackGroupInfoBlankLeaves: the first commit's epoch-0 GroupInfo
// had to have one member, the creator, but its tree could hold any number
// of blank leaves: the creating server could make every server hash and
// validate a tree as large as an event holds (for each such first commit,
// accepted or not) and start the group on a tree that no group creation
// makes. Epoch 0 is a one-leaf tree (RFC 9420, Section 11), checked before
// the tree is validated.
func TestAttackGroupInfoBlankLeaves(t *testing.T) {
	k := newKit(t)
	for _, leaves := range []int{1, 3, 16000} {
		gi := k.blankLeavesGroupInfo(leaves)
		if _, err := mls.ParsePublicGroup(gi, &mls.PublicGroupConfig{}); err != nil {
			t.Fatalf("%d blank leaves: the GroupInfo does not bootstrap an observer: %v", leaves, err)
		}
		ev, _ := k.commitEvent(commitSpec{by: "alice", parent: k.create.ID()})
		cc, _ := roomevent.DecodeCommit(ev.Content)
		cc.GroupInfo = gi
		raw, err := cc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ev = k.sign("a.test", k.room, dag.KindCommit, []dag.EventID{k.create.ID()}, raw)
		start := time.Now()
		r := k.step(ev)
		t.Logf("%d blank leaves (event of %d bytes): %v", leaves, ev.Size(), time.Since(start))
		if r == nil || r.Err.Reason != ReasonMLSNoGroupInfo {
			t.Errorf("%d blank leaves: %v, want %s", leaves, r, ReasonMLSNoGroupInfo)
		}
	}
}

// TestAttackSideCommitFloodEvictsEpochs: a member device can make any
// number of valid commits on the canonical tip (each with a fresh
// UpdatePath). Each keeps a public group state, and the oldest beyond
// observerWindow were dropped: a flood evicted an honest commit that had
// not been sealed yet here, so its children were refused on this server
// (mls-epoch-gone) and accepted on one that saw the flood later. Once
// sealed, the honest branch is canonical and this server can no longer
// follow it. Eviction now takes from the committer holding the most
// states, so a flood evicts its own.
func TestAttackSideCommitFloodEvictsEpochs(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	a, b := c.peers[0], c.peers[1]
	// alice's e2 reaches a alone (its votes are lost for now).
	e2, pc := k.commitEvent(commitSpec{by: "alice", parent: e1.ID()})
	c.stepOne(a, e2)
	if a.rejected[e2.ID()] != nil {
		t.Fatal(a.rejected[e2.ID()])
	}
	k.merge("alice", e2, pc)
	// bob floods a with commits on e1.
	var flood []*dag.Event
	for range observerWindow + 1 {
		ev, _ := k.commitEvent(commitSpec{by: "bob", parent: e1.ID()})
		flood = append(flood, ev)
	}
	c.stepOne(a, flood...)
	e3, _ := k.commitEvent(commitSpec{by: "alice", parent: e2.ID()})
	c.stepOne(b, e2)
	ra, rb := verdict(a, e3), verdict(b, e3)
	if rb != nil {
		t.Fatalf("b (no flood) refused e3: %v", rb)
	}
	if ra != nil {
		t.Fatalf("a (flooded) refused e3, which b accepted: %v", ra)
	}
	if r := c.restored(a); !slices.Equal(r.e.groupOrder, a.e.groupOrder) {
		t.Fatal("a restored keeps other public group states than a")
	}
}

// proposalEvent wraps an MLS proposal of user name as a proposal event
// naming epoch, through origin.
func (k *kit) proposalEvent(name, origin string, epoch dag.EventID, msg *mls.MLSMessage) *dag.Event {
	k.t.Helper()
	u := k.users[name]
	raw, err := msg.Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	content, err := (&roomevent.Proposal{Sender: roomevent.Sender{User: u.user, Client: u.device}, Epoch: epoch, Proposal: raw}).Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	return k.sign(origin, k.room, dag.KindProposal, []dag.EventID{k.create.ID()}, content)
}

// renamingCommit is a commit of user name's device, hand-made (the mls
// API never changes a leaf's credential), whose UpdatePath leaf carries
// the credential of identity instead of the device's own. Its
// confirmation and membership tags are random: an observer checks
// neither, and a hostile device, a member, could compute the right ones.
func (k *kit) renamingCommit(name, identity string) []byte {
	k.t.Helper()
	u := k.users[name]
	g := u.g
	me := g.LeafIndex()
	cur, ok := g.Tree().Leaf(me)
	if !ok {
		k.t.Fatal("no own leaf")
	}
	ctx := g.GroupContext()
	ctxBytes, err := ctx.Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	prov := ctx
	prov.Epoch++
	tmpl := *cur
	tmpl.Credential = mls.NewBasicCredential([]byte(identity))
	tree := g.Tree().Clone()
	res, err := tree.CreateUpdatePath(me, &mls.UpdatePathParams{Leaf: tmpl, SigningKey: u.sig, GroupContext: prov}, rand.Reader)
	if err != nil {
		k.t.Fatal(err)
	}
	content := &mls.FramedContent{GroupID: ctx.GroupID, Epoch: ctx.Epoch, Sender: mls.MemberSender(me), ContentType: mls.ContentTypeCommit,
		Commit: &mls.Commit{Path: res.Path}}
	ac, err := mls.SignFramedContent(suite, mls.WireFormatPublicMessage, content, ctxBytes, u.sig)
	if err != nil {
		k.t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = make([]byte, 32)
	rand.Read(ac.Auth.ConfirmationTag)
	mk := make([]byte, 32)
	rand.Read(mk)
	pm, err := mls.NewPublicMessage(suite, ac, mk, ctxBytes)
	if err != nil {
		k.t.Fatal(err)
	}
	raw, err := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatPublicMessage, PublicMessage: pm}).Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	return raw
}

// TestAttackCommitRenamesDevice: a commit's UpdatePath (and an Update
// proposal) replaces the committer's leaf, credential included, and
// neither the observer nor the members (no Authentication Service
// callback) hold the identity to the old one. Room policy judged only the
// proposals, so bob's device could become "carol's" (not a participant:
// every later commit then fails the no-client-without-participant rule
// unless it removes her) or an admin's second device, with no add
// authorized. The roster the MLS commit leaves must be the one room policy
// authorized.
func TestAttackCommitRenamesDevice(t *testing.T) {
	for _, identity := range []string{"mimi://b.test/d/carol/phone", "mimi://a.test/d/alice/laptop"} {
		k := newKit(t)
		e1 := k.addBob()
		ev, _ := k.commitEvent(commitSpec{by: "bob", parent: e1, mlsBytes: k.renamingCommit("bob", identity)})
		if r := k.step(ev); r == nil || r.Err.Reason != ReasonPolicy {
			t.Errorf("bob's commit renaming his device %s: %v, want %s", identity, r, ReasonPolicy)
		}
	}
}

// renamingUpdate is an Update proposal of user name's device, hand-made,
// whose leaf carries the credential of identity (random membership tag,
// as in renamingCommit).
func (k *kit) renamingUpdate(name, identity string) *mls.MLSMessage {
	k.t.Helper()
	u := k.users[name]
	g := u.g
	me := g.LeafIndex()
	cur, _ := g.Tree().Leaf(me)
	_, pub, err := suite.GenerateKEMKeyPair(rand.Reader)
	if err != nil {
		k.t.Fatal(err)
	}
	ln := mls.LeafNode{EncryptionKey: pub, SignatureKey: cur.SignatureKey, Credential: mls.NewBasicCredential([]byte(identity)),
		Capabilities: cur.Capabilities, Source: mls.LeafNodeSourceUpdate, Extensions: mls.Extensions{}}
	if err := ln.Sign(suite, u.sig, g.GroupID(), me); err != nil {
		k.t.Fatal(err)
	}
	raw, err := ln.Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	dec, err := mls.UnmarshalLeafNode(raw)
	if err != nil {
		k.t.Fatal(err)
	}
	ctx := g.GroupContext()
	ctxBytes, err := ctx.Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	content := &mls.FramedContent{GroupID: ctx.GroupID, Epoch: ctx.Epoch, Sender: mls.MemberSender(me), AuthenticatedData: []byte{},
		ContentType: mls.ContentTypeProposal, Proposal: &mls.UpdateProposal{LeafNode: *dec}}
	ac, err := mls.SignFramedContent(suite, mls.WireFormatPublicMessage, content, ctxBytes, u.sig)
	if err != nil {
		k.t.Fatal(err)
	}
	mk := make([]byte, 32)
	rand.Read(mk)
	pm, err := mls.NewPublicMessage(suite, ac, mk, ctxBytes)
	if err != nil {
		k.t.Fatal(err)
	}
	return &mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatPublicMessage, PublicMessage: pm}
}

// TestAttackProposalRenamesDevice: an Update proposal that renames its
// sender's device (see TestAttackCommitRenamesDevice) was accepted, and
// an honest committer's client includes every accepted proposal by
// reference. And a proposal event could name another user of the same
// domain than the device's (commits were held to that already).
func TestAttackProposalRenamesDevice(t *testing.T) {
	k := newKit(t)
	e1 := k.addBob()
	honest, err := k.users["bob"].g.ProposeUpdate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if r := k.step(k.proposalEvent("bob", "b.test", e1, k.renamingUpdate("bob", "mimi://b.test/d/carol/phone"))); r == nil || r.Err.Reason != ReasonPolicy {
		t.Errorf("bob's Update renaming his device: %v, want %s", r, ReasonPolicy)
	}
	relabelled := k.proposalEvent("bob", "b.test", e1, honest)
	pc, _ := roomevent.DecodeProposal(relabelled.Content)
	pc.Sender.User = k.users["carol"].user
	raw, _ := pc.Marshal()
	if r := k.step(k.sign("b.test", k.room, dag.KindProposal, []dag.EventID{k.create.ID()}, raw)); r == nil || r.Err.Reason != ReasonSenderMismatch {
		t.Errorf("bob's Update under carol's name: %v, want %s", r, ReasonSenderMismatch)
	}
	if r := k.step(k.proposalEvent("bob", "b.test", e1, honest)); r != nil {
		t.Errorf("bob's honest Update: %v", r.Err)
	}
}

// TestAttackVoteRejectionNamesOrigin: a vote the ordering machine refuses
// (here from a server of no membership) is reported with its origin, for
// the host to score the sender.
func TestAttackVoteRejectionNamesOrigin(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	c.addBob()
	var vote *dag.Event
	for _, r := range c.peers[1].record {
		if r.Event != nil && isVote(r.Event.Kind) {
			vote = r.Event
		}
	}
	key, id, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.servers["c.test"] = &kitServer{key: key, id: id, domain: "c.test"}
	forged := k.sign("c.test", k.room, vote.Kind, vote.Prev, vote.Content)
	r := k.step(forged)
	if r == nil || r.Origin != id {
		t.Fatalf("a vote of a stranger: %+v, want a rejection naming its origin", r)
	}
}

// TestAttackRestoreMatchesLive: after a history with a flood of side
// commits (evictions), proposals, state events and a side branch, an
// engine restored from the record keeps the same public group states,
// servers, chain and epoch states as the live one, and reaches the same
// verdicts on new events.
func TestAttackRestoreMatchesLive(t *testing.T) {
	k := newKit(t)
	c := newCluster(k)
	e1 := c.addBob()
	at1, err := k.users["alice"].g.Snapshot().Restore()
	if err != nil {
		t.Fatal(err)
	}
	e2 := c.commitChanges("alice", e1.ID(), k.invite(e1.ID(), "mimi://a.test/u/dave"), "bob")
	upd, err := k.users["bob"].g.ProposeUpdate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.deliver(k.proposalEvent("bob", "b.test", e2.ID(), upd))
	var flood []*dag.Event
	for range observerWindow + 6 {
		ev, _ := k.commitEvent(commitSpec{by: "bob", parent: e2.ID()})
		flood = append(flood, ev)
	}
	c.deliver(flood[:40]...)
	c.deliver(k.stateEvent("alice", k.topic("between")))
	c.deliver(flood[40:]...)
	k.users["dave"].g = at1
	k.users["dave"].user, k.users["dave"].device = k.users["alice"].user, k.users["alice"].device
	side, _ := k.commitEvent(commitSpec{by: "dave", parent: e1.ID(), changes: k.invite(e1.ID(), "mimi://a.test/u/side")})
	c.deliver(side)
	c.deliver(k.stateEvent("alice", k.topic("after")))
	a := c.peers[0]
	r := c.restored(a)
	if !slices.Equal(r.e.groupOrder, a.e.groupOrder) || !maps.Equal(r.e.keptBy, a.e.keptBy) {
		t.Fatal("restored engine keeps other public group states")
	}
	if !slices.Equal(r.e.Servers(), a.e.Servers()) || !slices.Equal(r.e.Chain(), a.e.Chain()) || r.e.CertifiedLen() != a.e.CertifiedLen() {
		t.Fatal("restored engine has other servers or chain")
	}
	checkStates(t, r.e)
	for _, en := range a.e.b.entries {
		if en.Kind != dag.KindCommit {
			continue
		}
		x, _ := a.e.StateAt(en.ID)
		y, _ := r.e.StateAt(en.ID)
		if stateBytes(t, x) != stateBytes(t, y) {
			t.Fatalf("epoch %v: restored state differs", en.ID)
		}
	}
	probes := []*dag.Event{k.message("alice", "a.test", e2.ID()), k.message("bob", "b.test", flood[0].ID()), k.message("bob", "b.test", flood[len(flood)-1].ID())}
	next, _ := k.commitEvent(commitSpec{by: "alice", parent: e2.ID()})
	probes = append(probes, next)
	for _, ev := range probes {
		if va, vr := verdict(a, ev), verdict(r, ev); (va == nil) != (vr == nil) || (va != nil && va.Reason != vr.Reason) {
			t.Errorf("%v %v: live %v, restored %v", ev.Kind, ev.ID(), va, vr)
		}
	}
}

// TestAttackWelcomeMismatch: a commit that adds devices had to carry
// nothing for them: without a Welcome (or with one for other
// KeyPackages) the added devices are members that can never join, and a
// Welcome could ride on a commit that adds nobody. What an observer can
// check of a Welcome (its suite, whom it addresses) now must match the
// commit's Adds.
func TestAttackWelcomeMismatch(t *testing.T) {
	k := newKit(t)
	e1 := k.addBob()
	add := func(name string) (*dag.Event, *roomevent.Commit) {
		kb := k.keyPackage(name)
		ev, _ := k.commitEvent(commitSpec{by: "alice", parent: e1, props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}},
			changes: k.invite(e1, k.users[name].user)})
		c, err := roomevent.DecodeCommit(ev.Content)
		if err != nil {
			t.Fatal(err)
		}
		return ev, c
	}
	resign := func(c *roomevent.Commit) *dag.Event {
		raw, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return k.sign("a.test", k.room, dag.KindCommit, []dag.EventID{k.create.ID()}, raw)
	}
	_, carol := add("carol")
	_, dave := add("dave")
	noWelcome := *carol
	noWelcome.Welcome = nil
	otherWelcome := *carol
	otherWelcome.Welcome = dave.Welcome
	empty, _ := k.commitEvent(commitSpec{by: "alice", parent: e1})
	ec, _ := roomevent.DecodeCommit(empty.Content)
	ec.Welcome = carol.Welcome
	for name, ev := range map[string]*dag.Event{"no Welcome": resign(&noWelcome), "another commit's Welcome": resign(&otherWelcome), "a Welcome without Adds": resign(ec)} {
		if r := k.step(ev); r == nil || r.Err.Reason != ReasonWelcomeMismatch {
			t.Errorf("%s: %v, want %s", name, r, ReasonWelcomeMismatch)
		}
	}
	if r := k.step(resign(carol)); r != nil {
		t.Errorf("the honest add: %v", r.Err)
	}
}

// TestAttackManyProposalsPerEpoch: every accepted proposal event returns a
// new public group state holding all of the epoch's proposals so far; a
// member device can send them at will (each Update with a fresh key is
// valid, and room policy allows them). The states used to clone the
// epoch's proposal list and scan it for a duplicate, so n proposals cost
// O(n^2) bytes copied; they now share one append-only log indexed by
// reference (mls/proposalcache.go), so a proposal costs the same late in
// an epoch as early.
func TestAttackManyProposalsPerEpoch(t *testing.T) {
	k := newKit(t)
	e1 := k.addBob()
	const n = 3000
	evs := make([]*dag.Event, n)
	for i := range evs {
		upd, err := k.users["bob"].g.ProposeUpdate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = k.proposalEvent("bob", "b.test", e1, upd)
	}
	cost := func(evs []*dag.Event) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, ev := range evs {
			if r := k.step(ev); r != nil {
				t.Fatal(r.Err)
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / uint64(len(evs))
	}
	first := cost(evs[:100])
	cost(evs[100 : n-100])
	last := cost(evs[n-100:])
	t.Logf("bytes allocated per proposal: %d for the first 100, %d after %d", first, last, n-100)
	if last > 4*first {
		t.Fatalf("finding: a proposal costs %d bytes after %d in its epoch, %d at first", last, n-100, first)
	}
}
