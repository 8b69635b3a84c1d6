package room

import (
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// The room test kit: two servers (a.test, b.test), real MLS groups of the
// users' devices, and signed DAG events built from them.

const suite = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

type kitServer struct {
	key    ed25519.PrivateKey
	id     dag.ServerID
	domain string
}

type kitUser struct {
	user, device string
	sig          mls.SignaturePrivateKey
	g            *mls.Group
}

type kit struct {
	t       testing.TB
	servers map[string]*kitServer // by domain
	users   map[string]*kitUser   // by name
	create  *dag.Event
	room    dag.RoomID
	e       *Engine
	ts      int64
	// props are the proposal events the kit signed, by ProposalRef: sign
	// names those a commit includes by reference among its parents.
	props map[string]dag.EventID
	// firstMLS is the MLS bytes of the first commit (addBob).
	firstMLS []byte
}

func newKit(t testing.TB) *kit {
	t.Helper()
	k := &kit{t: t, servers: map[string]*kitServer{}, users: map[string]*kitUser{}, props: map[string]dag.EventID{},
		ts: time.Now().UnixMilli()}
	for _, d := range []string{"a.test", "b.test"} {
		key, id, err := dag.GenerateServerKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.servers[d] = &kitServer{key: key, id: id, domain: d}
	}
	for name, d := range map[string]string{"alice": "a.test", "bob": "b.test", "carol": "b.test", "dave": "a.test"} {
		sig, _, err := suite.GenerateSignatureKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.users[name] = &kitUser{user: "mimi://" + d + "/u/" + name, device: "mimi://" + d + "/d/" + name + "/phone", sig: sig}
	}
	var srvs []roomstate.Server
	for _, d := range []string{"a.test", "b.test"} {
		srvs = append(srvs, roomstate.Server{ID: roomstate.ServerID(k.servers[d].id), Domain: d})
	}
	st, err := roomstate.NewRoom(roomstate.PresetPrivateGroup, roomstate.RoomConfig{Room: "mimi://a.test/r/kit", Name: "Kit", Creator: roomstate.URI(k.users["alice"].user), Servers: srvs})
	if err != nil {
		t.Fatal(err)
	}
	comps, err := st.Components()
	if err != nil {
		t.Fatal(err)
	}
	state, err := roomstate.MarshalComponents(comps)
	if err != nil {
		t.Fatal(err)
	}
	alice := k.users["alice"]
	content, err := (&roomevent.Create{Creator: roomevent.Sender{User: alice.user, Client: alice.device}, Preset: "private-group", State: state}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	k.create = k.sign("a.test", dag.RoomID{}, dag.KindCreate, nil, content)
	k.room = dag.RoomID(k.create.ID())
	if k.e, err = New(k.create, Config{Self: k.servers["a.test"].id, TickLength: 10 * time.Millisecond, Now: time.UnixMilli(0)}); err != nil {
		t.Fatal(err)
	}
	k.e.Advance()
	alice.g, err = mls.CreateGroup(rand.Reader, suite, []byte(k.room.String()), alice.sig, mls.NewBasicCredential([]byte(alice.device)),
		&mls.CreateOptions{Config: mls.GroupConfig{RatchetTreeInWelcome: true}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign makes a signed event of server domain's key, with prev and the
// events rule R makes it name (causal.go) as parents, as an honest host
// does; signRaw uses prev alone.
func (k *kit) sign(domain string, room dag.RoomID, kind dag.Kind, prev []dag.EventID, content []byte) *dag.Event {
	k.t.Helper()
	ev := k.signRaw(domain, room, kind, append(slices.Clone(prev), k.refs(kind, content)...), content)
	if kind == dag.KindProposal {
		if ref := proposalRef(ev); ref != nil {
			k.props[string(ref)] = ev.ID()
		}
	}
	return ev
}

// signRaw makes a signed event with exactly the parents prev (sorted and
// deduplicated).
func (k *kit) signRaw(domain string, room dag.RoomID, kind dag.Kind, prev []dag.EventID, content []byte) *dag.Event {
	k.t.Helper()
	k.ts++
	prev = slices.Clone(prev)
	dag.SortIDs(prev)
	ev, err := dag.NewSigned(k.servers[domain].key, room, kind, slices.Compact(prev), k.ts, content)
	if err != nil {
		k.t.Fatal(err)
	}
	return ev
}

// refs are the parents rule R requires of an event, from the kit's own
// records (content that does not decode names nothing).
func (k *kit) refs(kind dag.Kind, content []byte) []dag.EventID {
	var out []dag.EventID
	switch kind {
	case dag.KindCommit:
		c, err := roomevent.DecodeCommit(content)
		if err != nil {
			return nil
		}
		out = append(out, c.Parent)
		if msg, err := mls.UnmarshalMLSMessage(slices.Clone(c.Commit)); err == nil && msg.PublicMessage != nil && msg.PublicMessage.Content.Commit != nil {
			for _, p := range msg.PublicMessage.Content.Commit.Proposals {
				if id, ok := k.props[string(p.Reference)]; ok && p.Reference != nil {
					out = append(out, id)
				}
			}
		}
	case dag.KindMessage, dag.KindProposal:
		if ep, err := epochOf(&dag.Event{Kind: kind, Content: content}); err == nil {
			out = append(out, ep)
		}
	}
	return out
}

// proposalRef is the ProposalRef of a proposal event's MLS message, or nil.
func proposalRef(ev *dag.Event) []byte {
	c, err := roomevent.DecodeProposal(ev.Content)
	if err != nil {
		return nil
	}
	msg, err := mls.UnmarshalMLSMessage(slices.Clone(c.Proposal))
	if err != nil || msg.PublicMessage == nil {
		return nil
	}
	pm := msg.PublicMessage
	ac := mls.AuthenticatedContent{WireFormat: mls.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
	ref, err := ac.ProposalRef(suite)
	if err != nil {
		return nil
	}
	return ref
}

// keyPackage is a fresh KeyPackage of user name's device.
func (k *kit) keyPackage(name string) *mls.KeyPackageBundle {
	k.t.Helper()
	u := k.users[name]
	kb, err := mls.NewKeyPackage(rand.Reader, suite, u.sig, mls.NewBasicCredential([]byte(u.device)), &mls.KeyPackageOptions{NotBefore: time.Now().Add(-time.Hour)})
	if err != nil {
		k.t.Fatal(err)
	}
	return kb
}

// deviceKeyPackage is a KeyPackage of another device of user name.
func (k *kit) deviceKeyPackage(name, device string) *mls.KeyPackageBundle {
	k.t.Helper()
	kb, err := mls.NewKeyPackage(rand.Reader, suite, k.users[name].sig, mls.NewBasicCredential([]byte(device)), &mls.KeyPackageOptions{NotBefore: time.Now().Add(-time.Hour)})
	if err != nil {
		k.t.Fatal(err)
	}
	return kb
}

// change encodes a room-state op against the state of epoch at.
func (k *kit) change(at dag.EventID, op roomstate.Op) roomevent.Change {
	k.t.Helper()
	st, err := k.e.StateAt(at)
	if err != nil {
		k.t.Fatal(err)
	}
	comp, update, err := roomstate.EncodeOp(st, op)
	if err != nil {
		k.t.Fatal(err)
	}
	return roomevent.Change{Component: uint16(comp), Update: update}
}

// commitSpec describes a commit event for the table tests.
type commitSpec struct {
	by       string // user whose group commits
	claim    string // user the event names as sender (default: by)
	origin   string // server domain of the event (default: the claimed user's)
	parent   dag.EventID
	props    []mls.Proposal
	changes  []roomevent.Change
	noGI     bool          // leave out the GroupInfo on a first commit
	mlsBytes []byte        // replace the MLS commit bytes
	adopt    []dag.EventID // state events among its DAG parents, which it adopts
}

// commitEvent builds the commit of spec from by's group (not merged) and
// returns its event and pending commit.
func (k *kit) commitEvent(s commitSpec) (*dag.Event, *mls.PendingCommit) {
	k.t.Helper()
	u := k.users[s.by]
	claim := u
	if s.claim != "" {
		claim = k.users[s.claim]
	}
	origin := s.origin
	if origin == "" {
		origin = roomstate.URI(claim.user).Domain()
	}
	c := &roomevent.Commit{Sender: roomevent.Sender{User: claim.user, Client: claim.device}, Parent: s.parent, Changes: s.changes}
	if s.parent == k.create.ID() && !s.noGI {
		gi, err := u.g.GroupInfo(true)
		if err != nil {
			k.t.Fatal(err)
		}
		if c.GroupInfo, err = (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatGroupInfo, GroupInfo: gi}).Marshal(); err != nil {
			k.t.Fatal(err)
		}
	}
	pc, err := u.g.Commit(rand.Reader, &mls.CommitOptions{Proposals: s.props, ForcePath: len(s.props) == 0})
	if err != nil {
		k.t.Fatal(err)
	}
	if c.Commit, err = pc.Message.Marshal(); err != nil {
		k.t.Fatal(err)
	}
	if s.mlsBytes != nil {
		c.Commit = s.mlsBytes
	}
	if pc.Welcome != nil {
		if c.Welcome, err = (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatWelcome, Welcome: pc.Welcome}).Marshal(); err != nil {
			k.t.Fatal(err)
		}
	}
	content, err := c.Marshal()
	if err != nil {
		k.t.Fatal(err)
	}
	return k.sign(origin, k.room, dag.KindCommit, append([]dag.EventID{k.create.ID()}, s.adopt...), content), pc
}

// step steps ev and returns the rejection of it, if any (Ready is
// advanced).
func (k *kit) step(ev *dag.Event) *Rejection {
	k.t.Helper()
	k.e.Step(ev)
	rd := k.e.Ready()
	k.e.Advance()
	for _, r := range rd.Rejected {
		if r.Event == ev.ID() {
			return &r
		}
	}
	return nil
}

// addBob makes the honest first commit: alice adds bob (device and
// participant); every group moves to its epoch and bob joins.
func (k *kit) addBob() dag.EventID {
	k.t.Helper()
	kb := k.keyPackage("bob")
	ev, pc := k.commitEvent(commitSpec{by: "alice", parent: k.create.ID(), props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}},
		changes: []roomevent.Change{k.change(k.create.ID(), &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: roomstate.URI(k.users["bob"].user), Role: roomstate.RoleMember}}})}})
	if r := k.step(ev); r != nil {
		k.t.Fatalf("honest first commit rejected: %v", r.Err)
	}
	c, _ := roomevent.DecodeCommit(ev.Content)
	k.firstMLS = c.Commit
	if err := k.users["alice"].g.MergeCommit(pc, ev.ID().Bytes(), time.Now()); err != nil {
		k.t.Fatal(err)
	}
	g, err := mls.JoinGroup(pc.Welcome, kb, &mls.JoinOptions{Config: mls.GroupConfig{RatchetTreeInWelcome: true}, EpochID: ev.ID().Bytes()})
	if err != nil {
		k.t.Fatal(err)
	}
	k.users["bob"].g = g
	return ev.ID()
}

// foreignGroup is a group of user name's device alone with the room's
// group ID, moved on by epochs commits (a non-member's group at a given
// epoch number).
func (k *kit) foreignGroup(name string, epochs int) *mls.Group {
	k.t.Helper()
	u := k.users[name]
	g, err := mls.CreateGroup(rand.Reader, suite, []byte(k.room.String()), u.sig, mls.NewBasicCredential([]byte(u.device)), nil)
	if err != nil {
		k.t.Fatal(err)
	}
	for range epochs {
		pc, err := g.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
		if err != nil {
			k.t.Fatal(err)
		}
		if err := g.MergeCommit(pc, []byte("foreign"), time.Now()); err != nil {
			k.t.Fatal(err)
		}
	}
	return g
}
