package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/badgerstore"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// TestOrderRestartKeepsUnprocessedPromise simulates a crash right after the
// node stored its own suspect vote (its promise to ack nothing more in term
// 0) and before it processed it: the arrival log ends with a commit, the
// hub's seal of it, a message, then the suspect. On restart the machine
// must know the promise before it steps the commit and the seal (stepped as
// one run before the message), so it never acks in term 0.
func TestOrderRestartKeepsUnprocessedPromise(t *testing.T) {
	dir := t.TempDir()
	n := startOrderNode(t, dir, "a.test")
	alice := nodetest.Register(t, n, "alice", "phone")
	bKey, b, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Crash",
		"servers": []nodetest.JSON{{"server_id": b.String(), "domain": "b.test"}}}))
	room := nodetest.RoomID(t, nodetest.Str(created["room"]))
	create := nodetest.EventID(t, nodetest.Str(created["event"]))
	self := n.ServerID()
	g := alice.Group(nodetest.Str(created["room"]))
	gi, err := groupInfoOf(g)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := g.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	commitRaw, _ := pc.Message.Marshal()
	msg, err := g.Send(rand.Reader, nil, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	msgRaw, _ := msg.Marshal()
	nodetest.Stop(t, n)

	key, _, err := node.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[dag.ServerID]ed25519.PrivateKey{self: key, b: bKey}
	hub := consensus.DefaultCandidates(room.CreateID().Bytes(), create.Bytes(), []consensus.ServerID{consensus.ServerID(self), consensus.ServerID(b)})[0]
	st, err := badgerstore.Open(filepath.Join(dir, node.EventsDir), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key ed25519.PrivateKey, kind dag.Kind, content []byte) dag.EventID {
		t.Helper()
		tips, err := st.Tips(room)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dag.NewSigned(key, room, kind, tips, time.Now().UnixMilli(), content)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := st.Put(ev); err != nil || res.Status != dag.StatusStored {
			t.Fatalf("put %v: %v %v", kind, res.Status, err)
		}
		return ev.ID()
	}
	snd := roomevent.Sender{User: alice.UserURI, Client: alice.DeviceURI}
	content := func(m interface{ Marshal() ([]byte, error) }) []byte {
		t.Helper()
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	x := put(key, dag.KindCommit, content(&roomevent.Commit{Sender: snd, Parent: create, Commit: commitRaw, GroupInfo: gi}))
	put(keys[dag.ServerID(hub)], dag.KindSeal, content(&consensus.Seal{Slot: consensus.EventID(create.Bytes()), Commit: consensus.EventID(x.Bytes()), Term: 0}))
	put(key, dag.KindMessage, content(&roomevent.Message{Sender: snd, Epoch: create, Message: msgRaw}))
	put(key, dag.KindSuspect, content(&consensus.Suspect{Term: 0}))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	n2 := startOrderNode(t, dir, "a.test")
	alice.Base = "http://" + n2.APIAddr()
	// The room was processed during Start; the sealed commit is canonical.
	if o := nodetest.Must(t, 200)(alice.Get("/v1/rooms/" + room.String() + "/order")); o["tip"] != x.String() {
		t.Fatalf("order after restart = %v, want tip %v", o, x)
	}
	time.Sleep(20 * testTick)
	for k, c := range ownVotes(t, n2, room) {
		if k.kind == dag.KindAck && k.term == 0 {
			t.Fatalf("acked in term 0 after promising it (%d votes %+v)", c, k)
		}
	}
}
