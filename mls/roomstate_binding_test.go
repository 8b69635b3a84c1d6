package mls_test

// The binding of room state (package roomstate) into MLS through the
// app_data_dictionary GroupContext extension (draft-ietf-mls-extensions),
// tested with the real group state machine of package mls: real key
// schedule, real signatures and HPKE, every supported cipher suite, and
// deterministic randomness so that two runs with the same inputs give the
// same keys.
//
// roomstate imports nothing of mls; this external test package imports
// both, so there is no import cycle.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// ---- deterministic randomness ----

// bindingRand is a deterministic random source: SHA-256(seed || counter)
// blocks. Two readers with the same seed give the same bytes.
type bindingRand struct {
	seed []byte
	ctr  uint64
	buf  []byte
}

func newBindingRand(seed string) *bindingRand { return &bindingRand{seed: []byte(seed)} }

func (r *bindingRand) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(r.buf) == 0 {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], r.ctr)
			r.ctr++
			h := sha256.Sum256(append(append([]byte{}, r.seed...), c[:]...))
			r.buf = h[:]
		}
		k := copy(p, r.buf)
		p, r.buf = p[k:], r.buf[k:]
	}
	return n, nil
}

// ---- users, clients, servers ----

const (
	bAlice roomstate.URI = "mimi://a.example/u/alice"
	bBob   roomstate.URI = "mimi://b.example/u/bob"
	bCarol roomstate.URI = "mimi://c.example/u/carol"
	bDave  roomstate.URI = "mimi://a.example/u/dave"
	bRoom  roomstate.URI = "mimi://a.example/r/club"
)

// clientOf returns the client (device) dev of user u:
// mimi://a.example/u/alice, "phone" -> mimi://a.example/d/alice/phone.
func clientOf(u roomstate.URI, dev string) roomstate.Client {
	return roomstate.Client{ID: roomstate.ClientID(strings.Replace(string(u), "/u/", "/d/", 1) + "/" + dev), User: u}
}

// clientFromCredential maps a basic credential (identity = client URI) to
// the room-state client, as an Authentication Service would.
func clientFromCredential(c mls.Credential) (roomstate.Client, error) {
	id := string(c.Identity)
	rest, ok := strings.CutPrefix(id, "mimi://")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 || parts[1] != "d" {
		return roomstate.Client{}, fmt.Errorf("credential %q is not a MIMI client URI", id)
	}
	return roomstate.Client{ID: roomstate.ClientID(id), User: roomstate.URI("mimi://" + parts[0] + "/u/" + parts[2])}, nil
}

func bindingServers() []roomstate.Server {
	var id roomstate.ServerID
	copy(id[:], bytes.Repeat([]byte{0xa5}, 32))
	return []roomstate.Server{{ID: id, Domain: "a.example"}}
}

// ---- dictionary <-> room state ----

// dictionaryExtension is the app_data_dictionary GroupContext extension
// holding s: the entries State.Components gives, in that order, encoded by
// mls (see TestBindingDictionaryWireFormat for how that compares with
// roomstate.MarshalComponents).
func dictionaryExtension(t testing.TB, s *roomstate.State) mls.Extension {
	t.Helper()
	cds, err := s.Components()
	if err != nil {
		t.Fatal(err)
	}
	d := mls.AppDataDictionary{ComponentData: []mls.ComponentData{}}
	for _, c := range cds {
		d.ComponentData = append(d.ComponentData, mls.ComponentData{ComponentID: mls.ComponentID(c.ID), Data: c.Data})
	}
	data, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return mls.Extension{ExtensionType: mls.ExtensionTypeAppDataDictionary, ExtensionData: data}
}

// roomStateOf decodes the room state bound into g's GroupContext.
func roomStateOf(t testing.TB, g *mls.Group) *roomstate.State {
	t.Helper()
	d, err := g.AppData()
	if err != nil {
		t.Fatal(err)
	}
	var cds []roomstate.ComponentData
	for _, c := range d.ComponentData {
		cds = append(cds, roomstate.ComponentData{ID: roomstate.ComponentID(c.ComponentID), Data: c.Data})
	}
	s, err := roomstate.FromComponents(cds)
	if err != nil {
		t.Fatalf("dictionary of epoch %d: %v", g.Epoch(), err)
	}
	return s
}

// componentOf returns the encoding of one component of s.
func componentOf(s *roomstate.State, id roomstate.ComponentID) ([]byte, error) {
	cds, err := s.Components()
	if err != nil {
		return nil, err
	}
	for _, c := range cds {
		if c.ID == id {
			return c.Data, nil
		}
	}
	return nil, fmt.Errorf("component 0x%04x is not room state", uint16(id))
}

// ---- one client: an MLS group plus its room-state logic ----

// bMember is one client: its MLS group and the room state it derives from
// the group's app_data_dictionary.
type bMember struct {
	t     testing.TB
	c     roomstate.Client
	g     *mls.Group
	state *roomstate.State // always roomStateOf(g)

	// The AppDataUpdater's inputs for the commit being created or
	// processed: one actor per AppDataUpdate in commit order, and the
	// state the updates apply to so far.
	actors  []roomstate.Actor
	running *roomstate.State
	// tamper, if set, replaces each decoded op before it is applied: a
	// client whose application logic diverges from everyone else's.
	tamper func(roomstate.Op) roomstate.Op
	// lastProposals are the proposals of the last commit built by propose.
	lastProposals []mls.Proposal
}

func newBMember(t testing.TB, c roomstate.Client) *bMember { return &bMember{t: t, c: c} }

// config is the member's GroupConfig: the AppDataUpdater is room state's
// application logic (draft-ietf-mls-extensions Section 4.7), and only
// room-state components may be updated.
func (m *bMember) config(encrypt bool) mls.GroupConfig {
	var known []mls.ComponentID
	for _, id := range []roomstate.ComponentID{roomstate.ComponentParticipantList, roomstate.ComponentRoomMetadata,
		roomstate.ComponentRolesList, roomstate.ComponentPreAuthList, roomstate.ComponentBaseRoomPolicy,
		roomstate.ComponentJoinRule, roomstate.ComponentServers} {
		known = append(known, mls.ComponentID(id))
	}
	return mls.GroupConfig{AppData: m.updater, KnownComponents: known, RatchetTreeInWelcome: true, EncryptHandshake: encrypt}
}

// updater applies one AppDataUpdate: it checks that the dictionary entry
// is the encoding of the member's running room state, decodes the update
// relative to that state, applies it for the proposal's sender and returns
// the component's new encoding.
func (m *bMember) updater(id mls.ComponentID, current []byte, present bool, update []byte) ([]byte, error) {
	if len(m.actors) == 0 || m.running == nil {
		return nil, errors.New("AppDataUpdate without a known sender")
	}
	actor := m.actors[0]
	m.actors = m.actors[1:]
	rid := roomstate.ComponentID(id)
	want, err := componentOf(m.running, rid)
	if err != nil {
		return nil, err
	}
	if !present || !bytes.Equal(current, want) {
		return nil, fmt.Errorf("dictionary entry 0x%04x differs from the room state", uint16(rid))
	}
	op, err := roomstate.DecodeOp(m.running, rid, update)
	if err != nil {
		return nil, err
	}
	if m.tamper != nil {
		op = m.tamper(op)
	}
	next, err := roomstate.Apply(m.running, roomstate.Change{Actor: actor, Op: op})
	if err != nil {
		return nil, err
	}
	m.running = next
	return componentOf(next, rid)
}

// roster lists the group's members as room-state clients.
func roster(t testing.TB, g *mls.Group) []roomstate.Client {
	t.Helper()
	var out []roomstate.Client
	for _, l := range g.Members() {
		leaf, ok := g.Tree().Leaf(l)
		if !ok {
			t.Fatalf("member leaf %d is blank", l)
		}
		c, err := clientFromCredential(leaf.Credential)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// describe builds roomstate's summary of a real MLS commit from what
// InspectCommit returns, plus the actors of its AppDataUpdates in order.
func describe(g *mls.Group, committer mls.Sender, props []mls.CommitProposal) (roomstate.Commit, []roomstate.Actor, error) {
	sender := func(s mls.Sender) (roomstate.Sender, error) {
		if s.SenderType != mls.SenderTypeMember {
			return roomstate.Sender{}, fmt.Errorf("sender type %d not used in these tests", s.SenderType)
		}
		leaf, ok := g.Tree().Leaf(s.LeafIndex)
		if !ok {
			return roomstate.Sender{}, fmt.Errorf("sender leaf %d is blank", s.LeafIndex)
		}
		c, err := clientFromCredential(leaf.Credential)
		return roomstate.MemberSender(c), err
	}
	var out roomstate.Commit
	var actors []roomstate.Actor
	var err error
	if out.Committer, err = sender(committer); err != nil {
		return out, nil, err
	}
	for _, cp := range props {
		var p roomstate.Proposal
		if p.Sender, err = sender(cp.Sender); err != nil {
			return out, nil, err
		}
		switch q := cp.Proposal.(type) {
		case *mls.AddProposal:
			p.Type = roomstate.ProposalAdd
			if p.Client, err = clientFromCredential(q.KeyPackage.LeafNode.Credential); err != nil {
				return out, nil, err
			}
		case *mls.RemoveProposal:
			p.Type = roomstate.ProposalRemove
			leaf, ok := g.Tree().Leaf(q.Removed)
			if !ok {
				return out, nil, fmt.Errorf("remove of blank leaf %d", q.Removed)
			}
			if p.Client, err = clientFromCredential(leaf.Credential); err != nil {
				return out, nil, err
			}
		case *mls.AppDataUpdateProposal:
			if q.Op != mls.AppDataUpdateOperationUpdate {
				return out, nil, fmt.Errorf("AppDataUpdate op %d on room state", q.Op)
			}
			p.Type, p.Component, p.Update = roomstate.ProposalAppDataUpdate, roomstate.ComponentID(q.ComponentID), q.Update
			actors = append(actors, roomstate.UserActor(p.Sender.User, p.Sender.Client))
		case *mls.UpdateProposal:
			p.Type = roomstate.ProposalUpdate
		case *mls.SelfRemoveProposal:
			p.Type = roomstate.ProposalSelfRemove
		default:
			return out, nil, fmt.Errorf("proposal type %d not used in these tests", cp.Proposal.ProposalType())
		}
		out.Proposals = append(out.Proposals, p)
	}
	return out, actors, nil
}

// authorize inspects a commit message of m's current epoch and runs
// roomstate.AuthorizeCommit on it; it returns the room state and roster
// after the commit and the AppDataUpdate actors.
func (m *bMember) authorize(msg *mls.MLSMessage) (*roomstate.State, []roomstate.Client, []roomstate.Actor, error) {
	committer, props, err := m.g.InspectCommit(msg)
	if err != nil {
		return nil, nil, nil, err
	}
	desc, actors, err := describe(m.g, committer, props)
	if err != nil {
		m.t.Fatal(err)
	}
	next, after, err := roomstate.AuthorizeCommit(m.state, roster(m.t, m.g), desc)
	return next, after, actors, err
}

// receiveCommit is the full receive path: authorize the commit against the
// room state, then let MLS process it with the room-state AppDataUpdater.
// On success the room state in the new GroupContext must be exactly the
// authorized one, and the MLS members exactly the authorized roster.
func (m *bMember) receiveCommit(msg *mls.MLSMessage) error {
	next, after, actors, err := m.authorize(msg)
	if err != nil {
		return err
	}
	m.actors, m.running = actors, m.state
	if _, err := m.g.ProcessMessage(msg, nil); err != nil {
		return err
	}
	m.settle(next, after)
	return nil
}

// settle checks the group after a commit against the authorized outcome.
func (m *bMember) settle(next *roomstate.State, after []roomstate.Client) {
	m.t.Helper()
	got := roomStateOf(m.t, m.g)
	if !got.Equal(next) || !m.running.Equal(next) || len(m.actors) != 0 {
		m.t.Fatalf("%s: room state in the GroupContext differs from the authorized state", m.c.ID)
	}
	if r := roster(m.t, m.g); !roomstate.SameRoster(r, after) {
		m.t.Fatalf("%s: MLS members %v, authorized roster %v", m.c.ID, r, after)
	}
	m.state = got
}

// propose builds a commit (not merged) carrying one AppDataUpdate per
// room-state op, each encoded relative to the state the previous ones
// leave, then an Add per KeyPackage.
func (m *bMember) propose(rng io.Reader, ops []roomstate.Op, kps ...*mls.KeyPackage) *mls.PendingCommit {
	m.t.Helper()
	var extra []mls.Proposal
	for _, kp := range kps {
		extra = append(extra, &mls.AddProposal{KeyPackage: *kp})
	}
	return m.proposeWith(rng, ops, extra...)
}

// proposeWith is propose with arbitrary MLS proposals after the
// AppDataUpdates.
func (m *bMember) proposeWith(rng io.Reader, ops []roomstate.Op, extra ...mls.Proposal) *mls.PendingCommit {
	m.t.Helper()
	actor := roomstate.UserActor(m.c.User, m.c.ID)
	running := m.state
	var props []mls.Proposal
	m.actors = nil
	for _, op := range ops {
		id, upd, err := roomstate.EncodeOp(running, op)
		if err != nil {
			m.t.Fatal(err)
		}
		if running, err = roomstate.Apply(running, roomstate.Change{Actor: actor, Op: op}); err != nil {
			m.t.Fatal(err)
		}
		props = append(props, &mls.AppDataUpdateProposal{ComponentID: mls.ComponentID(id), Op: mls.AppDataUpdateOperationUpdate, Update: upd})
		m.actors = append(m.actors, actor)
	}
	props = append(props, extra...)
	m.running, m.lastProposals = m.state, props
	pc, err := m.g.Commit(rng, &mls.CommitOptions{Proposals: props, NoPending: true})
	if err != nil {
		m.t.Fatalf("%s: commit: %v", m.c.ID, err)
	}
	return pc
}

// merge authorizes the member's own commit, described from the proposals
// it committed, and merges it.
func (m *bMember) merge(pc *mls.PendingCommit) {
	m.t.Helper()
	me := mls.MemberSender(m.g.LeafIndex())
	props := make([]mls.CommitProposal, len(m.lastProposals))
	for i, p := range m.lastProposals {
		props[i] = mls.CommitProposal{Proposal: p, Sender: me}
	}
	desc, _, err := describe(m.g, me, props)
	if err != nil {
		m.t.Fatal(err)
	}
	next, after, err := roomstate.AuthorizeCommit(m.state, roster(m.t, m.g), desc)
	if err != nil {
		m.t.Fatalf("%s: own commit not authorized: %v", m.c.ID, err)
	}
	if err := m.g.MergeCommit(pc, nil, time.Time{}); err != nil {
		m.t.Fatal(err)
	}
	m.settle(next, after)
}

// ---- group construction ----

// newClient makes a signature key and a KeyPackage for client c.
func newClient(t testing.TB, rng io.Reader, cs mls.CipherSuite, c roomstate.Client) *mls.KeyPackageBundle {
	t.Helper()
	sig, _, err := cs.GenerateSignatureKeyPair(rng)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := mls.NewKeyPackage(rng, cs, sig, mls.NewBasicCredential([]byte(c.ID)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return kb
}

// createRoom creates the MLS group of a room whose first GroupContext binds
// state s, with creator as its only member.
func createRoom(t testing.TB, rng io.Reader, cs mls.CipherSuite, creator *bMember, s *roomstate.State, encrypt bool) {
	t.Helper()
	sig, _, err := cs.GenerateSignatureKeyPair(rng)
	if err != nil {
		t.Fatal(err)
	}
	creator.g, err = mls.CreateGroup(rng, cs, []byte("room club"), sig, mls.NewBasicCredential([]byte(creator.c.ID)),
		&mls.CreateOptions{Config: creator.config(encrypt), Extensions: mls.Extensions{dictionaryExtension(t, s)}})
	if err != nil {
		t.Fatal(err)
	}
	creator.state = roomStateOf(t, creator.g)
	if !creator.state.Equal(s) {
		t.Fatal("the group's first GroupContext does not carry the room state")
	}
}

// join joins m by Welcome and derives its room state from the GroupContext.
func join(t testing.TB, m *bMember, w *mls.Welcome, kb *mls.KeyPackageBundle, encrypt bool) {
	t.Helper()
	var err error
	if m.g, err = mls.JoinGroup(w, kb, &mls.JoinOptions{Config: m.config(encrypt)}); err != nil {
		t.Fatalf("%s: join: %v", m.c.ID, err)
	}
	m.state = roomStateOf(t, m.g)
}

func privateGroup(t testing.TB) *roomstate.State {
	t.Helper()
	s, err := roomstate.NewRoom(roomstate.PresetPrivateGroup, roomstate.RoomConfig{
		Room: bRoom, Name: "Club", Creator: bAlice, Servers: bindingServers()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func invite(user roomstate.URI, role roomstate.RoleIndex) roomstate.Op {
	return &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: user, Role: role}}}
}

// agreeAll checks that all members are in the same epoch with the same
// epoch_authenticator, exporter output and room state.
func agreeAll(t testing.TB, ms ...*bMember) {
	t.Helper()
	ref := ms[0]
	refExp, err := ref.g.Export("rhizome binding", []byte("ctx"), 32)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		exp, err := m.g.Export("rhizome binding", []byte("ctx"), 32)
		if err != nil {
			t.Fatal(err)
		}
		if m.g.Epoch() != ref.g.Epoch() || !bytes.Equal(m.g.EpochAuthenticator(), ref.g.EpochAuthenticator()) || !bytes.Equal(exp, refExp) {
			t.Fatalf("%s and %s disagree on epoch %d/%d", ref.c.ID, m.c.ID, ref.g.Epoch(), m.g.Epoch())
		}
		if !m.state.Equal(ref.state) {
			t.Fatalf("%s and %s disagree on the room state", ref.c.ID, m.c.ID)
		}
	}
}

// send has from send an application message and to decrypt it.
func send(t testing.TB, rng io.Reader, from, to *bMember, text string) error {
	t.Helper()
	msg, err := from.g.Send(rng, nil, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := to.g.ProcessMessage(msg, nil)
	if err != nil {
		return err
	}
	if string(pm.ApplicationData) != text {
		t.Fatalf("%s decrypted %q, want %q", to.c.ID, pm.ApplicationData, text)
	}
	return nil
}

func forSuites(t *testing.T, f func(t *testing.T, cs mls.CipherSuite)) {
	for _, cs := range mls.SupportedCipherSuites() {
		t.Run(fmt.Sprintf("suite=0x%04x", uint16(cs)), func(t *testing.T) { f(t, cs) })
	}
}

// ---- 1. agreement ----

// TestBindingAgreement: a room created from a preset binds its state into
// the first GroupContext; an invite made with roomstate.Apply travels as
// an AppDataUpdate in Alice's commit; every member ends with the same
// epoch_authenticator and exporter, and the dictionary decodes to exactly
// Apply(previous, change).
func TestBindingAgreement(t *testing.T) {
	forSuites(t, func(t *testing.T, cs mls.CipherSuite) {
		for _, encrypt := range []bool{false, true} {
			rng := newBindingRand(fmt.Sprintf("agreement %v %v", cs, encrypt))
			alice := newBMember(t, clientOf(bAlice, "phone"))
			bob := newBMember(t, clientOf(bBob, "phone"))
			carol := newBMember(t, clientOf(bCarol, "phone"))
			s0 := privateGroup(t)
			createRoom(t, rng, cs, alice, s0, encrypt)

			// Alice invites Bob: participant add and client add in one commit.
			kbBob := newClient(t, rng, cs, bob.c)
			pc := alice.propose(rng, []roomstate.Op{invite(bBob, roomstate.RoleMember)}, kbBob.KeyPackage)
			alice.merge(pc)
			join(t, bob, pc.Welcome, kbBob, encrypt)
			agreeAll(t, alice, bob)

			// The room-state change: Alice invites Carol as a member.
			prev := alice.state
			change := roomstate.Change{Actor: roomstate.UserActor(bAlice, alice.c.ID), Op: invite(bCarol, roomstate.RoleMember)}
			want, err := roomstate.Apply(prev, change)
			if err != nil {
				t.Fatal(err)
			}
			kbCarol := newClient(t, rng, cs, carol.c)
			pc = alice.propose(rng, []roomstate.Op{change.Op}, kbCarol.KeyPackage)
			if err := bob.receiveCommit(pc.Message); err != nil {
				t.Fatalf("bob refused alice's commit: %v", err)
			}
			alice.merge(pc)
			join(t, carol, pc.Welcome, kbCarol, encrypt)
			agreeAll(t, alice, bob, carol)
			for _, m := range []*bMember{alice, bob, carol} {
				if got := roomStateOf(t, m.g); !got.Equal(want) {
					t.Fatalf("%s: FromComponents(dictionary) != Apply(previous, change)", m.c.ID)
				}
				if m.g.Epoch() != 2 || m.state.RoleOf(bCarol) != roomstate.RoleMember {
					t.Fatalf("%s: epoch %d, carol's role %d", m.c.ID, m.g.Epoch(), m.state.RoleOf(bCarol))
				}
			}
			if prev.Equal(want) {
				t.Fatal("the change did not change the state")
			}
			for _, p := range [][2]*bMember{{alice, bob}, {bob, alice}, {carol, alice}, {carol, bob}, {alice, carol}} {
				if err := send(t, rng, p[0], p[1], "hello from "+string(p[0].c.ID)); err != nil {
					t.Fatalf("%s -> %s: %v", p[0].c.ID, p[1].c.ID, err)
				}
			}
		}
	})
}

// ---- 2. disagreement ----

// bWorld is one run of the same scenario: Alice creates the room with a
// given initial room state, invites Bob (one commit: participant add and
// client add), and Bob joins by Welcome. Everything but the initial room
// state comes from the seed.
type bWorld struct {
	rng        *bindingRand
	alice, bob *bMember
	// alice0 is a copy of Alice's group in epoch 0, before any commit:
	// its secrets come from the key schedule alone (no transcript yet).
	alice0  *mls.Group
	kbCarol *mls.KeyPackageBundle
	// inviteProposals are the proposals of Alice's commit inviting Bob.
	inviteProposals []mls.Proposal
}

func buildWorld(t *testing.T, cs mls.CipherSuite, seed string, s0 *roomstate.State, encrypt bool) *bWorld {
	t.Helper()
	w := &bWorld{rng: newBindingRand(seed), alice: newBMember(t, clientOf(bAlice, "phone")), bob: newBMember(t, clientOf(bBob, "phone"))}
	createRoom(t, w.rng, cs, w.alice, s0, encrypt)
	var err error
	if w.alice0, err = w.alice.g.Snapshot().Restore(); err != nil {
		t.Fatal(err)
	}
	kbBob := newClient(t, w.rng, cs, w.bob.c)
	w.kbCarol = newClient(t, w.rng, cs, clientOf(bCarol, "phone"))
	pc := w.alice.propose(w.rng, []roomstate.Op{invite(bBob, roomstate.RoleMember)}, kbBob.KeyPackage)
	w.inviteProposals = w.alice.lastProposals
	w.alice.merge(pc)
	join(t, w.bob, pc.Welcome, kbBob, encrypt)
	agreeAll(t, w.alice, w.bob)
	return w
}

// snapshotOf captures what must not change when a message is refused.
func snapshotOf(t testing.TB, m *bMember) string {
	t.Helper()
	d, err := m.g.AppData()
	if err != nil {
		t.Fatal(err)
	}
	dict, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d|%x|%x", m.g.Epoch(), m.g.EpochAuthenticator(), dict)
}

// TestBindingDisagreement builds three worlds with identical inputs (seed,
// group ID, keys, KeyPackages, operations): "base" and "control" with the
// same initial room state, and "other" whose room state differs from it
// in one participant's role only (Dave, who has no clients, is a member
// in base and a moderator in other).
//
// Why this can fail: control is checked to agree with base in every way
// (same epoch_authenticator, exporter, and each side processes the
// other's commit and decrypts its messages). "other" differs from
// "control" ONLY in the app_data_dictionary bytes of the GroupContext. If
// the dictionary were not part of the key schedule (e.g. the GroupContext
// fed to AdvanceEpoch left extensions out), "other" would derive exactly
// control's secrets in epoch 0, and the epoch-0 checks below fail. (From
// epoch 1 on the dictionary also reaches the keys through the signed
// commit in the transcript hash, so the epoch-0 checks are the ones that
// isolate the key schedule.) Checked by mutation: with JoinerSecret and
// EpochSecretsFromJoiner stripping app_data_dictionary from the context,
// this test and TestBindingDivergentMember fail for every suite.
func TestBindingDisagreement(t *testing.T) {
	forSuites(t, func(t *testing.T, cs mls.CipherSuite) {
		for _, encrypt := range []bool{false, true} {
			seed := fmt.Sprintf("disagreement %v %v", cs, encrypt)
			base0 := privateGroup(t)
			other0 := privateGroup(t)
			var err error
			admin := roomstate.UserActor(bAlice, "")
			if base0, err = roomstate.Apply(base0, roomstate.Change{Actor: admin, Op: invite(bDave, roomstate.RoleMember)}); err != nil {
				t.Fatal(err)
			}
			if other0, err = roomstate.Apply(other0, roomstate.Change{Actor: admin, Op: invite(bDave, roomstate.RoleModerator)}); err != nil {
				t.Fatal(err)
			}
			checkOneComponentDiffers(t, base0, other0, roomstate.ComponentParticipantList)

			base := buildWorld(t, cs, seed, base0, encrypt)
			control := buildWorld(t, cs, seed, base0, encrypt)
			other := buildWorld(t, cs, seed, other0, encrypt)

			// The invite commit's proposals are the same bytes in every world.
			for _, w := range []*bWorld{control, other} {
				if a, b := commitProposals(t, base), commitProposals(t, w); a != b {
					t.Fatalf("worlds sent different invite proposals:\n%s\n%s", a, b)
				}
			}

			// Epoch 0, before any commit: the epoch secrets come from the
			// key schedule over the first GroupContext alone, without any
			// signed transcript, so only the dictionary can tell them apart.
			epoch0 := func(g *mls.Group) string {
				exp, err := g.Export("rhizome binding", []byte("ctx"), 32)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprintf("%d|%x|%x", g.Epoch(), g.EpochAuthenticator(), exp)
			}
			if epoch0(base.alice0) != epoch0(control.alice0) {
				t.Fatal("epoch 0: identical inputs gave different secrets")
			}
			if epoch0(base.alice0) == epoch0(other.alice0) {
				t.Fatal("epoch 0: different room states gave the same epoch secrets")
			}
			msg0, err := base.alice0.Send(newBindingRand("epoch 0 "+seed), nil, []byte("epoch 0"))
			if err != nil {
				t.Fatal(err)
			}
			if pm, err := control.alice0.ProcessMessage(msg0, nil); err != nil || string(pm.ApplicationData) != "epoch 0" {
				t.Fatalf("epoch 0: identical inputs, message not readable: %v", err)
			}
			if _, err := other.alice0.ProcessMessage(msg0, nil); !errors.Is(err, mls.ErrDecrypt) {
				t.Fatalf("epoch 0: message across room states: got %v, want ErrDecrypt", err)
			}

			// Epoch 1. Control: same inputs, same keys.
			agreeAll(t, base.alice, control.alice, control.bob)
			// Other: only the room state differs, and so do the keys.
			expBase, _ := base.alice.g.Export("rhizome binding", []byte("ctx"), 32)
			expOther, _ := other.alice.g.Export("rhizome binding", []byte("ctx"), 32)
			if base.alice.g.Epoch() != other.alice.g.Epoch() ||
				bytes.Equal(base.alice.g.EpochAuthenticator(), other.alice.g.EpochAuthenticator()) ||
				bytes.Equal(base.bob.g.EpochAuthenticator(), other.bob.g.EpochAuthenticator()) ||
				bytes.Equal(expBase, expOther) {
				t.Fatal("different room states gave the same epoch secrets")
			}

			// Application messages of this epoch: control and base read each
			// other's, base and other do not. Their randomness (reuse
			// guards) comes from a separate source so that the worlds' own
			// sources stay in step for the next commit.
			msgRng := newBindingRand("messages " + seed)
			if err := send(t, msgRng, base.alice, control.bob, "base to control"); err != nil {
				t.Fatalf("control cannot read base: %v", err)
			}
			if err := send(t, msgRng, control.alice, base.bob, "control to base"); err != nil {
				t.Fatalf("base cannot read control: %v", err)
			}
			for _, p := range [][2]*bWorld{{base, other}, {other, base}} {
				before := snapshotOf(t, p[1].bob)
				err := send(t, msgRng, p[0].alice, p[1].bob, "cross")
				if !errors.Is(err, mls.ErrDecrypt) {
					t.Fatalf("application message across room states: got %v, want ErrDecrypt", err)
				}
				if snapshotOf(t, p[1].bob) != before {
					t.Fatal("a refused message changed the group")
				}
			}

			// The next commit: each Alice invites Carol (same op, same
			// KeyPackage, same randomness).
			next := map[*bWorld]*mls.PendingCommit{}
			for _, w := range []*bWorld{base, control, other} {
				next[w] = w.alice.propose(w.rng, []roomstate.Op{invite(bCarol, roomstate.RoleMember)}, w.kbCarol.KeyPackage)
			}
			if !bytes.Equal(marshal(t, next[base].Message), marshal(t, next[control].Message)) {
				t.Fatal("base and control made different commits from the same inputs")
			}
			// Neither side of the disagreement can process the other's
			// commit: the raw MLS layer refuses it with a typed error and
			// the group is unchanged.
			want := mls.ErrBadMembershipTag // PublicMessage: membership_key differs
			if encrypt {
				want = mls.ErrDecrypt // PrivateMessage: sender_data_secret differs
			}
			for _, p := range [][2]*bWorld{{base, other}, {other, base}} {
				before := snapshotOf(t, p[1].bob)
				_, err := p[1].bob.g.ProcessMessage(next[p[0]].Message, nil)
				var ge *mls.GroupError
				if !errors.Is(err, want) || !errors.As(err, &ge) {
					t.Fatalf("commit across room states: got %v, want a GroupError matching %v", err, want)
				}
				if snapshotOf(t, p[1].bob) != before {
					t.Fatal("a refused commit changed the group")
				}
			}
			// Base's commit is fine for members who agree: control's Bob
			// follows it into the epoch base's Alice merges.
			if err := control.bob.receiveCommit(next[base].Message); err != nil {
				t.Fatalf("control refused base's commit: %v", err)
			}
			base.alice.merge(next[base])
			agreeAll(t, base.alice, control.bob)
		}
	})
}

func checkOneComponentDiffers(t *testing.T, a, b *roomstate.State, id roomstate.ComponentID) {
	t.Helper()
	ca, err := a.Components()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Components()
	if err != nil {
		t.Fatal(err)
	}
	for i := range ca {
		if differs := !bytes.Equal(ca[i].Data, cb[i].Data); differs != (ca[i].ID == id) {
			t.Fatalf("component 0x%04x: differs=%v", uint16(ca[i].ID), differs)
		}
	}
}

func marshal(t testing.TB, m *mls.MLSMessage) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// commitProposals renders the proposals of the world's invite commit, as
// Alice built them (with encrypted handshakes the message hides them).
func commitProposals(t testing.TB, w *bWorld) string {
	t.Helper()
	var b strings.Builder
	for _, p := range w.inviteProposals {
		raw, err := mls.MarshalProposal(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%x;", raw)
	}
	return b.String()
}

// TestBindingDivergentMember: two copies of Bob join from the same
// Welcome. One applies Alice's AppDataUpdate as written; the other's
// application logic applies a different delta (Carol as moderator instead
// of member, which the policy would allow, so only MLS can catch it). The
// divergent copy fails the confirmation tag and keeps its state; with the
// honest logic restored, the same copy accepts the very same commit. If
// the dictionary were not bound into the key schedule, the divergent copy
// would accept the commit with a wrong room state and the test fails.
func TestBindingDivergentMember(t *testing.T) {
	forSuites(t, func(t *testing.T, cs mls.CipherSuite) {
		rng := newBindingRand(fmt.Sprintf("divergent %v", cs))
		alice := newBMember(t, clientOf(bAlice, "phone"))
		bob := newBMember(t, clientOf(bBob, "phone"))
		bobBad := newBMember(t, clientOf(bBob, "phone"))
		createRoom(t, rng, cs, alice, privateGroup(t), false)
		kbBob := newClient(t, rng, cs, bob.c)
		pc := alice.propose(rng, []roomstate.Op{invite(bBob, roomstate.RoleMember)}, kbBob.KeyPackage)
		alice.merge(pc)
		join(t, bob, pc.Welcome, kbBob, false)
		join(t, bobBad, pc.Welcome, kbBob, false)
		agreeAll(t, alice, bob, bobBad)

		bobBad.tamper = func(op roomstate.Op) roomstate.Op {
			u, ok := op.(*roomstate.ParticipantUpdate)
			if !ok {
				return op
			}
			c := *u
			c.Added = append([]roomstate.UserRole(nil), u.Added...)
			for i := range c.Added {
				if c.Added[i].Role == roomstate.RoleMember {
					c.Added[i].Role = roomstate.RoleModerator
				}
			}
			return &c
		}
		kbCarol := newClient(t, rng, cs, clientOf(bCarol, "phone"))
		pc = alice.propose(rng, []roomstate.Op{invite(bCarol, roomstate.RoleMember)}, kbCarol.KeyPackage)

		before, stateBefore := snapshotOf(t, bobBad), bobBad.state
		err := bobBad.receiveCommit(pc.Message)
		var ge *mls.GroupError
		if !errors.Is(err, mls.ErrBadConfirmationTag) || !errors.As(err, &ge) || ge.Step != "confirmation tag" {
			t.Fatalf("divergent member: got %v, want a confirmation tag GroupError", err)
		}
		if bobBad.running == nil || bobBad.running.RoleOf(bCarol) != roomstate.RoleModerator {
			t.Fatal("the divergent logic did not run")
		}
		if snapshotOf(t, bobBad) != before || bobBad.state != stateBefore {
			t.Fatal("the refused commit changed the divergent member's state")
		}

		if err := bob.receiveCommit(pc.Message); err != nil {
			t.Fatalf("honest member refused the commit: %v", err)
		}
		alice.merge(pc)
		bobBad.tamper = nil
		if err := bobBad.receiveCommit(pc.Message); err != nil {
			t.Fatalf("the same member with honest logic refused the same commit: %v", err)
		}
		agreeAll(t, alice, bob, bobBad)
		if alice.state.RoleOf(bCarol) != roomstate.RoleMember {
			t.Fatal("carol is not a member")
		}
	})
}

// ---- 3. participant add travels with the client adds ----

// TestBindingClientAddsNeedParticipantAdd: a real MLS commit adding two
// clients of Carol is described from the commit itself (InspectCommit)
// and checked with roomstate.AuthorizeCommit. Without Carol's participant
// add it is refused (Incomplete) although MLS alone would accept it; with
// the participant add in the same commit it is accepted and the MLS
// members afterwards are the authorized roster. The mirror rule too:
// removing Carol with only one of her clients is Incomplete; with both it
// passes and her clients see themselves removed.
func TestBindingClientAddsNeedParticipantAdd(t *testing.T) {
	forSuites(t, func(t *testing.T, cs mls.CipherSuite) {
		rng := newBindingRand(fmt.Sprintf("client adds %v", cs))
		alice := newBMember(t, clientOf(bAlice, "phone"))
		bob := newBMember(t, clientOf(bBob, "phone"))
		createRoom(t, rng, cs, alice, privateGroup(t), false)
		kbBob := newClient(t, rng, cs, bob.c)
		pc := alice.propose(rng, []roomstate.Op{invite(bBob, roomstate.RoleMember)}, kbBob.KeyPackage)
		alice.merge(pc)
		join(t, bob, pc.Welcome, kbBob, false)

		carolPhone := newClient(t, rng, cs, clientOf(bCarol, "phone"))
		carolLaptop := newClient(t, rng, cs, clientOf(bCarol, "laptop"))

		// Without the participant add.
		bare := alice.propose(rng, nil, carolPhone.KeyPackage, carolLaptop.KeyPackage)
		before := snapshotOf(t, bob)
		err := bob.receiveCommit(bare.Message)
		if roomstate.ReasonOf(err) != roomstate.ReasonIncomplete || !errors.Is(err, roomstate.ErrRejected) {
			t.Fatalf("client adds without participant add: got %v, want Incomplete", err)
		}
		if snapshotOf(t, bob) != before || bob.state.RoleOf(bCarol) != roomstate.RoleNone {
			t.Fatal("the refused commit changed bob's group")
		}
		// MLS alone has nothing against it: the refusal is room policy's.
		raw, err := bob.g.Snapshot().Restore()
		if err != nil {
			t.Fatal(err)
		}
		if pm, err := raw.ProcessMessage(bare.Message, nil); err != nil || pm.Commit == nil || len(pm.Commit.Added) != 2 {
			t.Fatalf("MLS refused a valid commit: %v", err)
		}

		// With the participant add in the same commit.
		full := alice.propose(rng, []roomstate.Op{invite(bCarol, roomstate.RoleMember)}, carolPhone.KeyPackage, carolLaptop.KeyPackage)
		next, after, _, err := bob.authorize(full.Message)
		if err != nil {
			t.Fatalf("client adds with participant add refused: %v", err)
		}
		if next.RoleOf(bCarol) != roomstate.RoleMember || len(after) != 4 {
			t.Fatalf("authorized: carol role %d, roster %v", next.RoleOf(bCarol), after)
		}
		if err := bob.receiveCommit(full.Message); err != nil {
			t.Fatal(err)
		}
		alice.merge(full)
		carol := newBMember(t, clientOf(bCarol, "phone"))
		carol2 := newBMember(t, clientOf(bCarol, "laptop"))
		join(t, carol, full.Welcome, carolPhone, false)
		join(t, carol2, full.Welcome, carolLaptop, false)
		agreeAll(t, alice, bob, carol, carol2)
		if err := send(t, rng, carol2, bob, "from carol's laptop"); err != nil {
			t.Fatal(err)
		}

		// The mirror rule: removing Carol removes all of her clients in
		// the same commit.
		remove := &roomstate.ParticipantUpdate{Removed: []roomstate.URI{bCarol}}
		removeClient := func(m *bMember) *mls.RemoveProposal { return &mls.RemoveProposal{Removed: m.g.LeafIndex()} }
		half := alice.proposeWith(rng, []roomstate.Op{remove}, removeClient(carol))
		before = snapshotOf(t, bob)
		if err := bob.receiveCommit(half.Message); roomstate.ReasonOf(err) != roomstate.ReasonIncomplete {
			t.Fatalf("participant removal leaving a client: got %v, want Incomplete", err)
		}
		if snapshotOf(t, bob) != before {
			t.Fatal("the refused commit changed bob's group")
		}
		all := alice.proposeWith(rng, []roomstate.Op{remove}, removeClient(carol), removeClient(carol2))
		if err := bob.receiveCommit(all.Message); err != nil {
			t.Fatalf("participant removal with all clients refused: %v", err)
		}
		alice.merge(all)
		agreeAll(t, alice, bob)
		if bob.state.RoleOf(bCarol) != roomstate.RoleNone || len(bob.g.Members()) != 2 {
			t.Fatalf("after removal: carol role %d, %d members", bob.state.RoleOf(bCarol), len(bob.g.Members()))
		}
		for _, m := range []*bMember{carol, carol2} {
			// Carol's clients authorize and apply it like everyone else,
			// then leave the group.
			_, _, actors, err := m.authorize(all.Message)
			if err != nil {
				t.Fatalf("%s: %v", m.c.ID, err)
			}
			m.actors, m.running = actors, m.state
			pm, err := m.g.ProcessMessage(all.Message, nil)
			if err != nil || pm.Commit == nil || !pm.Commit.RemovedSelf || m.g.Active() {
				t.Fatalf("%s: removal not seen: %v", m.c.ID, err)
			}
		}
	})
}

// ---- wire format of the dictionary ----

// TestBindingDictionaryWireFormat checks that the app_data_dictionary bytes
// mls puts into the GroupContext are exactly roomstate.MarshalComponents of
// the same entries: one encoding, with component_id as uint32
// (draft-ietf-mls-extensions, "Component IDs").
func TestBindingDictionaryWireFormat(t *testing.T) {
	s := privateGroup(t)
	cds, err := s.Components()
	if err != nil {
		t.Fatal(err)
	}
	got := dictionaryExtension(t, s).ExtensionData
	want, err := roomstate.MarshalComponents(cds)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("mls and roomstate encode the dictionary differently:\nmls:       %x\nroomstate: %x", got, want)
	}
	back, err := roomstate.ParseComponents(got)
	if err != nil || len(back) != len(cds) {
		t.Fatalf("roomstate cannot parse the GroupContext dictionary: %v (%d of %d entries)", err, len(back), len(cds))
	}
}

// ---- proposals by reference keep their sender ----

// TestBindingProposalSenders: an AppDataUpdate Bob proposes and Alice
// commits by reference is applied with Bob, not Alice, as the actor, on
// both sides (InspectCommit resolves the reference to its original
// sender). Bob, a member, may rename the room but not ban Dave: his ban
// proposal is refused on receipt, and Alice's room-state logic refuses to
// commit it (a typed roomstate rejection from Group.Commit, group
// unchanged), while the same ban sent by Alice herself goes through.
func TestBindingProposalSenders(t *testing.T) {
	forSuites(t, func(t *testing.T, cs mls.CipherSuite) {
		rng := newBindingRand(fmt.Sprintf("senders %v", cs))
		alice := newBMember(t, clientOf(bAlice, "phone"))
		bob := newBMember(t, clientOf(bBob, "phone"))
		s0, err := roomstate.Apply(privateGroup(t), roomstate.Change{Actor: roomstate.UserActor(bAlice, ""), Op: invite(bDave, roomstate.RoleMember)})
		if err != nil {
			t.Fatal(err)
		}
		createRoom(t, rng, cs, alice, s0, false)
		kbBob := newClient(t, rng, cs, bob.c)
		pc := alice.propose(rng, []roomstate.Op{invite(bBob, roomstate.RoleMember)}, kbBob.KeyPackage)
		alice.merge(pc)
		join(t, bob, pc.Welcome, kbBob, false)

		// bobProposes sends op as Bob's AppDataUpdate proposal; Alice
		// receives it and checks it with AuthorizeProposal.
		bobProposes := func(op roomstate.Op) error {
			id, upd, err := roomstate.EncodeOp(bob.state, op)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := bob.g.Propose(rng, &mls.AppDataUpdateProposal{ComponentID: mls.ComponentID(id), Op: mls.AppDataUpdateOperationUpdate, Update: upd})
			if err != nil {
				t.Fatal(err)
			}
			pm, err := alice.g.ProcessMessage(msg, nil)
			if err != nil {
				t.Fatalf("alice cannot receive bob's proposal: %v", err)
			}
			if pm.Sender != mls.MemberSender(bob.g.LeafIndex()) {
				t.Fatalf("proposal sender %+v", pm.Sender)
			}
			return roomstate.AuthorizeProposal(alice.state, roster(t, alice.g), roomstate.Proposal{
				Type: roomstate.ProposalAppDataUpdate, Sender: roomstate.MemberSender(bob.c), Component: id, Update: upd})
		}
		bobActor := roomstate.UserActor(bBob, bob.c.ID)

		// Rename by Bob, committed by reference.
		md := alice.state.Metadata()
		md.Name = "Bob's club"
		if err := bobProposes(&roomstate.MetadataUpdate{Metadata: md}); err != nil {
			t.Fatalf("bob may rename the room: %v", err)
		}
		alice.actors, alice.running = []roomstate.Actor{bobActor}, alice.state
		pc, err = alice.g.Commit(rng, nil) // the cached proposal, by reference
		if err != nil {
			t.Fatal(err)
		}
		committer, props, err := alice.g.InspectCommit(pc.Message)
		if err != nil {
			t.Fatal(err)
		}
		if committer != mls.MemberSender(alice.g.LeafIndex()) || len(props) != 1 || props[0].Reference == nil ||
			props[0].Sender != mls.MemberSender(bob.g.LeafIndex()) {
			t.Fatalf("inspected commit: committer %+v, proposals %+v", committer, props)
		}
		next, after, actors, err := alice.authorize(pc.Message)
		if err != nil || len(actors) != 1 || actors[0] != bobActor {
			t.Fatalf("alice's own commit: %v, actors %v", err, actors)
		}
		if err := bob.receiveCommit(pc.Message); err != nil {
			t.Fatalf("bob refused the commit of his own proposal: %v", err)
		}
		if err := alice.g.MergeCommit(pc, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		alice.settle(next, after)
		agreeAll(t, alice, bob)
		if alice.state.Metadata().Name != "Bob's club" {
			t.Fatalf("room name %q", alice.state.Metadata().Name)
		}

		// A ban of Dave: refused from Bob, accepted from Alice.
		ban := &roomstate.ParticipantUpdate{RoleChanges: []roomstate.UserRole{{User: bDave, Role: roomstate.RoleBanned}}}
		if err := bobProposes(ban); roomstate.ReasonOf(err) != roomstate.ReasonNotAllowed {
			t.Fatalf("bob's ban proposal: got %v, want NotAllowed", err)
		}
		before := snapshotOf(t, alice)
		alice.actors, alice.running = []roomstate.Actor{bobActor}, alice.state
		_, err = alice.g.Commit(rng, nil)
		var re *roomstate.RejectError
		if !errors.As(err, &re) || re.Reason != roomstate.ReasonNotAllowed {
			t.Fatalf("committing bob's ban: got %v, want a NotAllowed rejection", err)
		}
		if snapshotOf(t, alice) != before {
			t.Fatal("a refused commit changed alice's group")
		}
		pc = alice.propose(rng, []roomstate.Op{ban})
		alice.merge(pc)
		if err := bob.receiveCommit(pc.Message); err != nil {
			t.Fatalf("bob refused alice's ban: %v", err)
		}
		agreeAll(t, alice, bob)
		if bob.state.RoleOf(bDave) != roomstate.RoleBanned {
			t.Fatal("dave is not banned")
		}
	})
}

// ---- Group.InspectCommit ----

// TestBindingInspectCommit checks the helper the binding relies on: an
// encrypted commit can be inspected and then still processed (the key is
// not used up), and messages that are not commits of the current epoch
// are refused with typed errors without changing the group.
func TestBindingInspectCommit(t *testing.T) {
	cs := mls.CipherSuite(1)
	rng := newBindingRand("inspect")
	alice := newBMember(t, clientOf(bAlice, "phone"))
	bob := newBMember(t, clientOf(bBob, "phone"))
	carol := newBMember(t, clientOf(bCarol, "phone"))
	createRoom(t, rng, cs, alice, privateGroup(t), true)
	kbBob := newClient(t, rng, cs, bob.c)
	first := alice.propose(rng, []roomstate.Op{invite(bBob, roomstate.RoleMember)}, kbBob.KeyPackage)
	alice.merge(first)
	join(t, bob, first.Welcome, kbBob, true)

	// Bob proposes a rename and commits it by reference; Alice never
	// receives the proposal, so to her the reference is unknown.
	md := bob.state.Metadata()
	md.Name = "renamed"
	id, upd, err := roomstate.EncodeOp(bob.state, &roomstate.MetadataUpdate{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	prop, err := bob.g.Propose(rng, &mls.AppDataUpdateProposal{ComponentID: mls.ComponentID(id), Op: mls.AppDataUpdateOperationUpdate, Update: upd})
	if err != nil {
		t.Fatal(err)
	}
	bob.actors, bob.running = []roomstate.Actor{roomstate.UserActor(bBob, bob.c.ID)}, bob.state
	byRef, err := bob.g.Commit(rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := bob.g.Send(rng, nil, []byte("not a commit"))
	if err != nil {
		t.Fatal(err)
	}
	kbCarol := newClient(t, rng, cs, carol.c)
	ownPending := alice.propose(rng, []roomstate.Op{invite(bCarol, roomstate.RoleMember)}, kbCarol.KeyPackage)

	for _, tc := range []struct {
		name string
		g    *mls.Group
		msg  *mls.MLSMessage
		want error
	}{
		{"application message", alice.g, app, mls.ErrInvalidMessage},
		{"proposal message", alice.g, prop, mls.ErrInvalidMessage},
		{"commit of a past epoch", alice.g, first.Message, mls.ErrWrongEpoch},
		{"reference to an unreceived proposal", alice.g, byRef.Message, mls.ErrUnknownProposal},
		{"own encrypted pending commit", alice.g, ownPending.Message, mls.ErrOwnMessage},
		{"nil message", alice.g, nil, mls.ErrInvalidMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprintf("%d|%x", tc.g.Epoch(), tc.g.EpochAuthenticator())
			_, _, err := tc.g.InspectCommit(tc.msg)
			var ge *mls.GroupError
			if !errors.Is(err, tc.want) || !errors.As(err, &ge) {
				t.Fatalf("got %v, want a GroupError matching %v", err, tc.want)
			}
			if after := fmt.Sprintf("%d|%x", tc.g.Epoch(), tc.g.EpochAuthenticator()); after != before {
				t.Fatal("InspectCommit changed the group")
			}
		})
	}

	// Bob inspects Alice's encrypted commit, then processes it.
	committer, props, err := bob.g.InspectCommit(ownPending.Message)
	if err != nil {
		t.Fatal(err)
	}
	if committer != mls.MemberSender(alice.g.LeafIndex()) || len(props) != 2 || props[0].Reference != nil {
		t.Fatalf("inspected: committer %+v, %d proposals", committer, len(props))
	}
	if _, ok := props[0].Proposal.(*mls.AppDataUpdateProposal); !ok {
		t.Fatalf("first proposal is %T", props[0].Proposal)
	}
	if err := bob.receiveCommit(ownPending.Message); err != nil {
		t.Fatalf("inspected encrypted commit no longer processable: %v", err)
	}
	alice.merge(ownPending)
	agreeAll(t, alice, bob)
}
