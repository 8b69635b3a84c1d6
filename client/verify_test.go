package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// The verify kit feeds one client (bob's phone, b.test) the stream of a
// room directly, with no node in between: signed DAG events of two servers
// (a.test, b.test), real MLS commits of the other users' groups, and order
// lines making them canonical. It plays a server that lets anything
// through.

type vkUser struct {
	user, device string
	sig          mls.SignaturePrivateKey
	g            *mls.Group
}

type vkit struct {
	t      *testing.T
	dir    string
	c      *Client
	srv    map[string]ed25519.PrivateKey // by domain
	users  map[string]*vkUser            // by name; bob's g is unused (the client holds it)
	room   dag.RoomID
	create *dag.Event
	ts     int64 // event timestamps: real time, at which lifetimes are judged
	cursor uint64
	// e1 is the first commit (alice adds bob and carol), firstMLS its MLS
	// bytes and st1 the room state after it.
	e1       dag.EventID
	firstMLS []byte
	st1      *roomstate.State
}

// newVKit opens the client, makes the room (alice creates it) and makes
// alice add bob (the client) and carol as members; every group is at the
// first commit's epoch afterwards.
func newVKit(t *testing.T) *vkit {
	t.Helper()
	k := &vkit{t: t, dir: t.TempDir(), srv: map[string]ed25519.PrivateKey{}, users: map[string]*vkUser{},
		ts: time.Now().UnixMilli()}
	var srvs []roomstate.Server
	for _, d := range []string{"a.test", "b.test"} {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.srv[d] = priv
		var id roomstate.ServerID
		copy(id[:], pub)
		srvs = append(srvs, roomstate.Server{ID: id, Domain: d})
	}
	for name, d := range map[string]string{"alice": "a.test", "bob": "b.test", "carol": "b.test", "dave": "a.test"} {
		sig, _, err := Suite.GenerateSignatureKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.users[name] = &vkUser{user: "mimi://" + d + "/u/" + name, device: "mimi://" + d + "/d/" + name + "/phone", sig: sig}
	}

	// The client is bob's phone, with one KeyPackage in its store.
	c, err := Open(k.dir, Options{WaitTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	k.c = c
	t.Cleanup(func() { k.c.Close() })
	bob := k.users["bob"]
	id := &identity{Server: "http://127.0.0.1:1", User: "bob", Device: "phone", UserURI: bob.user, DeviceURI: bob.device, Signature: bob.sig.Bytes()}
	if err := c.setIdentity(id); err != nil {
		t.Fatal(err)
	}
	bobKP := k.keyPackage(bob.sig, bob.device)
	raw, err := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: bobKP.KeyPackage}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := bobKP.KeyPackage.Ref()
	if err != nil {
		t.Fatal(err)
	}
	b := newBatch()
	b.putJSON([]byte(keyIdent), id)
	b.putJSON([]byte(pfxKP+hex.EncodeToString(ref)), &kpRecord{KeyPackage: raw, InitPriv: bobKP.InitPriv, EncPriv: bobKP.EncryptionKey})
	if err := c.st.commit(b); err != nil {
		t.Fatal(err)
	}

	// alice creates the room.
	alice := k.users["alice"]
	st, err := roomstate.NewRoom(roomstate.PresetPrivateGroup, roomstate.RoomConfig{Room: "mimi://a.test/r/verify", Name: "Verify", Creator: roomstate.URI(alice.user), Servers: srvs})
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
	content, err := (&roomevent.Create{Creator: roomevent.Sender{User: alice.user, Client: alice.device}, Preset: "private-group", State: state}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	k.create = k.sign("a.test", dag.RoomID{}, dag.KindCreate, nil, content)
	k.room = dag.RoomID(k.create.ID())
	k.feed(k.eventLine(k.create, "create"))
	if alice.g, err = mls.CreateGroup(rand.Reader, Suite, []byte(k.room.String()), alice.sig, mls.NewBasicCredential([]byte(alice.device)),
		&mls.CreateOptions{Config: mls.GroupConfig{RatchetTreeInWelcome: true}}); err != nil {
		t.Fatal(err)
	}

	// alice adds bob and carol (devices and participant entries).
	carolKP := k.keyPackage(k.users["carol"].sig, k.users["carol"].device)
	add := &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: roomstate.URI(bob.user), Role: roomstate.RoleMember}, {User: roomstate.URI(k.users["carol"].user), Role: roomstate.RoleMember}}}
	ev, pc := k.commitEvent(vkSpec{by: "alice", parent: k.create.ID(), st: st, ops: []roomstate.Op{add},
		props: []mls.Proposal{&mls.AddProposal{KeyPackage: *bobKP.KeyPackage}, &mls.AddProposal{KeyPackage: *carolKP.KeyPackage}}})
	k.e1 = ev.ID()
	cm, _ := roomevent.DecodeCommit(ev.Content)
	k.firstMLS = cm.Commit
	if k.st1, err = roomstate.Apply(st, roomstate.Change{Actor: roomstate.Actor{Kind: roomstate.ActorUser, User: roomstate.URI(alice.user), Client: roomstate.ClientID(alice.device)}, Op: add}); err != nil {
		t.Fatal(err)
	}
	k.canonical(ev)
	if err := alice.g.MergeCommit(pc, k.e1.Bytes(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if k.users["carol"].g, err = mls.JoinGroup(pc.Welcome, carolKP, &mls.JoinOptions{Config: mls.GroupConfig{RatchetTreeInWelcome: true}, EpochID: k.e1.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if ri := k.roomInfo(); !ri.Joined || string(ri.EpochID) != k.e1.String() || ri.Epoch != 1 || ri.Members != 3 {
		t.Fatalf("after the first commit: %+v; skipped %v", ri, c.Skipped())
	}
	return k
}

func (k *vkit) keyPackage(sig mls.SignaturePrivateKey, device string) *mls.KeyPackageBundle {
	k.t.Helper()
	kb, err := mls.NewKeyPackage(rand.Reader, Suite, sig, mls.NewBasicCredential([]byte(device)), &mls.KeyPackageOptions{NotBefore: time.Now().Add(-time.Hour)})
	if err != nil {
		k.t.Fatal(err)
	}
	return kb
}

func (k *vkit) sign(domain string, room dag.RoomID, kind dag.Kind, prev []dag.EventID, content []byte) *dag.Event {
	k.t.Helper()
	k.ts++
	ev, err := dag.NewSigned(k.srv[domain], room, kind, prev, k.ts, content)
	if err != nil {
		k.t.Fatal(err)
	}
	return ev
}

func (k *vkit) eventLine(ev *dag.Event, kind string) *clientapi.StreamLine {
	k.cursor++
	return &clientapi.StreamLine{Type: clientapi.LineEvent, Cursor: k.cursor, Room: k.room.String(), Event: ev.ID().String(), Kind: kind, Raw: ev.Bytes(),
		Origin: hex.EncodeToString(ev.Origin[:])}
}

// feed processes one line; a line must never fail the stream.
func (k *vkit) feed(l *clientapi.StreamLine) {
	k.t.Helper()
	if err := k.c.processLine(context.Background(), l); err != nil {
		k.t.Fatalf("line %d (%s %s): %v", l.Cursor, l.Type, l.Kind, err)
	}
}

// canonical feeds commit event ev and an order line making it canonical.
func (k *vkit) canonical(ev *dag.Event) {
	k.t.Helper()
	k.feed(k.eventLine(ev, "commit"))
	k.cursor++
	k.feed(&clientapi.StreamLine{Type: clientapi.LineOrder, Cursor: k.cursor, Room: k.room.String(), Tip: ev.ID().String(), Applied: []string{ev.ID().String()}})
}

func (k *vkit) roomInfo() RoomInfo {
	k.t.Helper()
	rs, err := k.c.Rooms()
	if err != nil || len(rs) != 1 {
		k.t.Fatalf("rooms = %+v, %v", rs, err)
	}
	return rs[0]
}

// reopen closes the client and opens its store again (the rooms are
// rebuilt from their replay logs).
func (k *vkit) reopen() {
	k.t.Helper()
	if err := k.c.Close(); err != nil {
		k.t.Fatal(err)
	}
	c, err := Open(k.dir, Options{WaitTimeout: time.Second})
	if err != nil {
		k.t.Fatalf("reopen: %v", err)
	}
	k.c = c
}

// logged reports whether the room's replay log has an entry for event.
func (k *vkit) logged(event string) bool {
	k.t.Helper()
	found := false
	err := k.c.st.scan(roomPrefix(k.room.String())+"log/", func(_, v []byte) error {
		var e logEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		found = found || e.Event == event
		return nil
	})
	if err != nil {
		k.t.Fatal(err)
	}
	return found
}

// vkSpec describes a commit event on the room.
type vkSpec struct {
	by       string      // user whose group commits
	g        *mls.Group  // commit from this group instead of by's
	claim    string      // user the event names as sender (default: by)
	parent   dag.EventID // default: e1
	st       *roomstate.State
	props    []mls.Proposal
	ops      []roomstate.Op // stapled changes, encoded against st (default: st1)
	mlsBytes []byte         // replace the MLS commit bytes
	adopt    []dag.EventID  // state events among its DAG parents, which it adopts
}

// commitEvent builds the commit of s (not merged) and returns its event,
// signed by the claimed user's server, and the pending commit.
func (k *vkit) commitEvent(s vkSpec) (*dag.Event, *mls.PendingCommit) {
	k.t.Helper()
	u := k.users[s.by]
	claim := u
	if s.claim != "" {
		claim = k.users[s.claim]
	}
	g := u.g
	if s.g != nil {
		g = s.g
	}
	if s.parent == (dag.EventID{}) {
		s.parent = k.e1
	}
	if s.st == nil {
		s.st = k.st1
	}
	c := &roomevent.Commit{Sender: roomevent.Sender{User: claim.user, Client: claim.device}, Parent: s.parent}
	for _, op := range s.ops {
		comp, update, err := roomstate.EncodeOp(s.st, op)
		if err != nil {
			k.t.Fatal(err)
		}
		c.Changes = append(c.Changes, roomevent.Change{Component: uint16(comp), Update: update})
	}
	pc, err := g.Commit(rand.Reader, &mls.CommitOptions{Proposals: s.props, ForcePath: len(s.props) == 0})
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
	domain := roomstate.URI(claim.user).Domain()
	return k.sign(domain, k.room, dag.KindCommit, append([]dag.EventID{k.create.ID()}, s.adopt...), content), pc
}

// renamed returns a copy of user name's group whose own leaf carries the
// credential of identity. The mls API never changes a leaf's credential,
// but a hostile member can: the copy's next commit with an UpdatePath is
// a valid MLS commit (signature, tags, path) whose new leaf renames the
// device in every member's tree.
func (k *vkit) renamed(name, identity string) *mls.Group {
	k.t.Helper()
	g, err := k.users[name].g.Snapshot().Restore()
	if err != nil {
		k.t.Fatal(err)
	}
	me := g.LeafIndex()
	ln, ok := g.Tree().Leaf(me)
	if !ok {
		k.t.Fatal("no own leaf")
	}
	// A fresh LeafNode: a decoded one re-encodes as its original bytes.
	renamed := &mls.LeafNode{EncryptionKey: ln.EncryptionKey, SignatureKey: ln.SignatureKey, Credential: mls.NewBasicCredential([]byte(identity)),
		Capabilities: ln.Capabilities, Source: ln.Source, Lifetime: ln.Lifetime, ParentHash: ln.ParentHash, Extensions: ln.Extensions, Signature: ln.Signature}
	if err := g.Tree().UpdateLeaf(me, renamed); err != nil {
		k.t.Fatal(err)
	}
	return g
}

// TestClientRefusesCommits mirrors the room package's commit policy table
// (room/policy_test.go) on the client side: the client is bob's phone in a
// room where alice (admin) added bob and carol (members), and a server that
// lets anything through makes each row's commit canonical. The client must
// refuse it as servers would, with the reason named in Skipped; the room
// stays at its epoch, the commit is not in the replay log, the replay after
// a restart gives the same epoch, and the group still processes the next
// honest commit. The honest row is applied.
func TestClientRefusesCommits(t *testing.T) {
	type row struct {
		name  string
		build func(k *vkit) *dag.Event
		want  string // refusal reason; "" for an honest commit
	}
	rows := []row{
		{"honest: alice adds dave with his device and participant entry", func(k *vkit) *dag.Event {
			kb := k.keyPackage(k.users["dave"].sig, k.users["dave"].device)
			ev, _ := k.commitEvent(vkSpec{by: "alice", props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}},
				ops: []roomstate.Op{&roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: roomstate.URI(k.users["dave"].user), Role: roomstate.RoleMember}}}}})
			return ev
		}, ""},
		{"replay: the first commit's MLS bytes again, on the next epoch", func(k *vkit) *dag.Event {
			ev, _ := k.commitEvent(vkSpec{by: "alice", mlsBytes: k.firstMLS})
			return ev
		}, refusedMLS},
		{"relabel: alice's commit under carol's name, through carol's server", func(k *vkit) *dag.Event {
			ev, _ := k.commitEvent(vkSpec{by: "alice", claim: "carol"})
			return ev
		}, refusedSender},
		{"client add without the participant add", func(k *vkit) *dag.Event {
			kb := k.keyPackage(k.users["dave"].sig, k.users["dave"].device)
			ev, _ := k.commitEvent(vkSpec{by: "alice", props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}}})
			return ev
		}, refusedPolicy},
		{"participant removal that leaves the user's client in the group", func(k *vkit) *dag.Event {
			ev, _ := k.commitEvent(vkSpec{by: "alice", ops: []roomstate.Op{&roomstate.ParticipantUpdate{Removed: []roomstate.URI{roomstate.URI(k.users["carol"].user)}}}})
			return ev
		}, refusedPolicy},
		{"a member adds a device of another user (not its own, no participant add)", func(k *vkit) *dag.Event {
			kb := k.keyPackage(k.users["alice"].sig, "mimi://a.test/d/alice/laptop")
			ev, _ := k.commitEvent(vkSpec{by: "carol", props: []mls.Proposal{&mls.AddProposal{KeyPackage: *kb.KeyPackage}}})
			return ev
		}, refusedPolicy},
		{"a member removes the admin (no canKick)", func(k *vkit) *dag.Event {
			ev, _ := k.commitEvent(vkSpec{by: "carol", props: []mls.Proposal{&mls.RemoveProposal{Removed: 0}},
				ops: []roomstate.Op{&roomstate.ParticipantUpdate{Removed: []roomstate.URI{roomstate.URI(k.users["alice"].user)}}}})
			return ev
		}, refusedPolicy},
		{"a member changes a role (no canChangeUserRole)", func(k *vkit) *dag.Event {
			ev, _ := k.commitEvent(vkSpec{by: "carol",
				ops: []roomstate.Op{&roomstate.ParticipantUpdate{RoleChanges: []roomstate.UserRole{{User: roomstate.URI(k.users["carol"].user), Role: roomstate.RoleAdmin}}}}})
			return ev
		}, refusedPolicy},
		{"a member's UpdatePath renames its device to another user's", func(k *vkit) *dag.Event {
			ev, _ := k.commitEvent(vkSpec{by: "carol", g: k.renamed("carol", "mimi://a.test/d/alice/laptop")})
			return ev
		}, refusedPolicy},
		{"a member's UpdatePath renames its device to another device of its user", func(k *vkit) *dag.Event {
			ev, _ := k.commitEvent(vkSpec{by: "carol", g: k.renamed("carol", "mimi://b.test/d/carol/laptop")})
			return ev
		}, refusedPolicy},
		{"a non-member's commit (dave's own group with the room's group ID)", func(k *vkit) *dag.Event {
			dave := k.users["dave"]
			g, err := mls.CreateGroup(rand.Reader, Suite, []byte(k.room.String()), dave.sig, mls.NewBasicCredential([]byte(dave.device)), nil)
			if err != nil {
				t.Fatal(err)
			}
			pc, err := g.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := g.MergeCommit(pc, []byte("foreign"), time.Now()); err != nil {
				t.Fatal(err)
			}
			ev, _ := k.commitEvent(vkSpec{by: "dave", g: g})
			return ev
		}, refusedMLS},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			k := newVKit(t)
			ev := r.build(k)
			id := ev.ID().String()
			k.canonical(ev)
			ri := k.roomInfo()
			if r.want == "" {
				if string(ri.EpochID) != id || ri.Epoch != 2 || ri.Members != 4 {
					t.Fatalf("honest commit not applied: %+v; skipped %v", ri, k.c.Skipped())
				}
				k.reopen()
				if ri := k.roomInfo(); string(ri.EpochID) != id || ri.Epoch != 2 || ri.Members != 4 {
					t.Fatalf("after reopen: %+v", ri)
				}
				return
			}
			if string(ri.EpochID) != k.e1.String() || ri.Epoch != 1 || ri.Members != 3 {
				t.Fatalf("refused commit moved the room: %+v; skipped %v", ri, k.c.Skipped())
			}
			sk := k.c.Skipped()
			if len(sk) == 0 || !strings.Contains(sk[len(sk)-1], id) || !strings.Contains(sk[len(sk)-1], ErrCommitRefused.Error()+" ("+r.want+")") {
				t.Fatalf("skipped %q, want the last to name %s and %q", sk, id, ErrCommitRefused.Error()+" ("+r.want+")")
			}
			if k.logged(id) {
				t.Fatal("the refused commit is in the replay log")
			}
			k.reopen()
			if ri := k.roomInfo(); string(ri.EpochID) != k.e1.String() || ri.Epoch != 1 || ri.Members != 3 {
				t.Fatalf("after reopen: %+v", ri)
			}
			// Nothing was half-applied: the replayed group processes
			// alice's next honest commit on the same epoch.
			next, _ := k.commitEvent(vkSpec{by: "alice"})
			k.canonical(next)
			if ri := k.roomInfo(); string(ri.EpochID) != next.ID().String() || ri.Epoch != 2 {
				t.Fatalf("honest commit after the refusal not applied: %+v; skipped %v", ri, k.c.Skipped())
			}
		})
	}
}

// TestClientRefusedRenameKeepsGroup: a commit refused by the roster check
// was already processed; the group restored in memory (no restart in
// between) still processes alice's next honest commit on the same epoch,
// with carol's device under its own name.
func TestClientRefusedRenameKeepsGroup(t *testing.T) {
	k := newVKit(t)
	ev, _ := k.commitEvent(vkSpec{by: "carol", g: k.renamed("carol", "mimi://a.test/d/alice/laptop")})
	k.canonical(ev)
	if ri := k.roomInfo(); string(ri.EpochID) != k.e1.String() || ri.Epoch != 1 {
		t.Fatalf("renaming commit applied: %+v; skipped %v", ri, k.c.Skipped())
	}
	next, _ := k.commitEvent(vkSpec{by: "alice"})
	k.canonical(next)
	if ri := k.roomInfo(); string(ri.EpochID) != next.ID().String() || ri.Epoch != 2 || ri.Members != 3 {
		t.Fatalf("honest commit after the refusal not applied: %+v; skipped %v", ri, k.c.Skipped())
	}
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	g := k.c.rooms[k.room.String()].g
	ln, ok := g.Tree().Leaf(k.users["carol"].g.LeafIndex())
	if !ok || string(ln.Credential.Identity) != k.users["carol"].device {
		t.Fatalf("carol's leaf after the refusal: %v", ln)
	}
}

// TestVerifyCommitTyped checks that a refusal is a typed error wrapping
// ErrCommitRefused, and that verifying changes neither the group nor the
// room state.
func TestVerifyCommitTyped(t *testing.T) {
	k := newVKit(t)
	ev, _ := k.commitEvent(vkSpec{by: "alice", claim: "carol"})
	ce := commitOf(ev, ev.ID().String(), hex.EncodeToString(ev.Origin[:]))
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	r := k.c.rooms[k.room.String()]
	e := &logEntry{Op: "commit", Event: ce.ID, Parent: ce.Parent, MLS: ce.MLS, Changes: ce.Changes, Actor: ce.Actor}
	st, epoch := r.state, r.g.Epoch()
	if _, err := verifyCommit(r, r.state, e); !errors.Is(err, ErrCommitRefused) || !strings.Contains(err.Error(), "("+refusedSender+")") {
		t.Fatalf("relabelled commit: %v, want ErrCommitRefused (%s)", err, refusedSender)
	}
	e.Actor = actorJSON{User: k.users["alice"].user, Client: k.users["alice"].device, Origin: e.Actor.Origin}
	if _, err := verifyCommit(r, r.state, e); err != nil {
		t.Fatalf("the same commit under alice's name: %v", err)
	}
	if r.state != st || r.g.Epoch() != epoch {
		t.Fatal("verifyCommit changed the room")
	}
}
