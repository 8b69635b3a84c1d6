package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// TestOrderConcurrentCommits submits two commits for the same parent on two
// nodes at once. Every node ends with the same canonical chain, certified;
// the loser is never canonical at the end (if a node applied it first, an
// order line undid it); each node's order lines replay to its chain; the
// members list carries the winner's participant add only; a commit on a
// stale parent is refused with stale_parent naming the tip.
func TestOrderConcurrentCommits(t *testing.T) {
	t0 := time.Now()
	cl := newOrderCluster(t)
	streams := make([]*orderStream, 3)
	for i, u := range cl.users {
		streams[i] = openOrderStream(u, t, "?since=0&room="+cl.room)
	}
	adds := []string{"mimi://a.test/u/dave", "mimi://b.test/u/erin"}
	type result struct {
		status int
		body   nodetest.JSON
	}
	var results [2]result
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			st, body := cl.commit(t, i, cl.create, adds[i])
			results[i] = result{st, body}
		})
	}
	wg.Wait()
	var accepted []string
	for i, r := range results {
		switch r.status {
		case 201:
			accepted = append(accepted, nodetest.Str(r.body["event"]))
		case 409:
			// The other commit reached this node and was sealed first.
			if r.body["error"] != "stale_parent" || !strings.Contains(nodetest.Str(r.body["message"]), "the tip is ") {
				t.Fatalf("commit %d: 409 %v", i, r.body)
			}
		default:
			t.Fatalf("commit %d: %d %v", i, r.status, r.body)
		}
	}
	if len(accepted) == 0 {
		t.Fatal("no commit accepted")
	}
	t.Logf("accepted %d of 2 competing commits", len(accepted))
	final := cl.waitSameOrder(t, 15*time.Second, 1, 0, 1, 2)
	winner := final.Canonical[cl.base]
	if !slices.Contains(accepted, winner) {
		t.Fatalf("canonical %s is none of the submitted commits %v", winner, accepted)
	}
	winAdd := adds[slices.IndexFunc(results[:], func(r result) bool { return nodetest.Str(r.body["event"]) == winner })]
	for i, s := range streams {
		lines := s.waitReplayed(t, 10*time.Second, final)
		for _, l := range lines {
			if l.Room != cl.room || l.Cursor == 0 {
				t.Fatalf("node %d: order line %+v", i, l)
			}
		}
		for _, loser := range accepted {
			if loser == winner {
				continue
			}
			applied, undone := false, false
			for _, l := range lines {
				applied = applied || slices.Contains(l.Applied, loser)
				undone = undone || (applied && slices.Contains(l.Undone, loser))
			}
			t.Logf("node %d: loser applied=%v undone=%v, %d order lines", i, applied, undone, len(lines))
			if applied && !undone {
				t.Fatalf("node %d applied the loser %s and never undid it: %+v", i, loser, lines)
			}
			if applied && lines[len(lines)-1].RetainUntilMS == 0 && !slices.ContainsFunc(lines, func(l clientapi.StreamLine) bool {
				return len(l.Undone) > 0 && l.RetainUntilMS > time.Now().UnixMilli()-60_000
			}) {
				t.Fatalf("node %d: undo without a retention deadline: %+v", i, lines)
			}
		}
		members := cl.members(t, i)
		if !slices.Contains(members, winAdd) {
			t.Fatalf("node %d members %v lack the winner's add %s", i, members, winAdd)
		}
		for _, a := range adds {
			if a != winAdd && slices.Contains(members, a) {
				t.Fatalf("node %d members %v hold the loser's add %s", i, members, a)
			}
		}
	}
	// The loser's author rebuilds on a stale parent: refused, naming the tip.
	status, body := cl.commit(t, 2, cl.create, "mimi://c.test/u/frank")
	if status != 409 || body["error"] != "stale_parent" || !strings.Contains(nodetest.Str(body["message"]), winner) {
		t.Fatalf("commit on a stale parent: %d %v", status, body)
	}
	// On the tip it goes through and is certified everywhere.
	resp := nodetest.Must(t, 201)(cl.commit(t, 2, winner, "mimi://c.test/u/frank"))
	c2 := nodetest.Str(resp["event"])
	got := cl.waitSameOrder(t, 15*time.Second, 2, 0, 1, 2)
	if got.Tip != c2 {
		t.Fatalf("chain after the second commit = %+v, want tip %s", got, c2)
	}
	// The answer's cursor is the commit's own line, before the order line
	// that applies it, so resuming from it shows that line.
	lines := streams[2].waitReplayed(t, 10*time.Second, got)
	at := slices.IndexFunc(lines, func(l clientapi.StreamLine) bool { return slices.Contains(l.Applied, c2) })
	if cur, _ := resp["cursor"].(float64); at < 0 || cur == 0 || uint64(cur) >= lines[at].Cursor {
		t.Fatalf("submission cursor %v, order line applying it %+v", resp["cursor"], lines)
	}
	// A message encrypted in an epoch before the tip is refused, naming
	// the tip: frank, added by c2, could never decrypt it.
	msg, err := cl.group(t, 2, winner).Send(rand.Reader, nil, []byte("late"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := msg.Marshal()
	status, body = cl.users[2].Call("POST", "/v1/rooms/"+cl.room+"/messages?epoch="+winner, "application/octet-stream", raw)
	if status != 409 || body["error"] != "stale_epoch" || !strings.Contains(nodetest.Str(body["message"]), c2) {
		t.Fatalf("message in a stale epoch: %d %v", status, body)
	}
	t.Logf("took %v", time.Since(t0).Round(time.Millisecond))
}

// TestOrderPartitionHeal cuts one node off, commits on both sides, and
// heals. The majority certifies its commit; the minority seals its own
// tentatively (its members list shows the change), and after the heal every
// node converges on the majority's chain: the minority's commit is undone
// in an order line on the cut-off node, with a retention deadline, and its
// participant add is gone from its members list.
func TestOrderPartitionHeal(t *testing.T) {
	t0 := time.Now()
	cl := newOrderClusterOn(t, nil) // Isolate needs the TCP host's gater
	c := cl.nodes[2]
	cs := openOrderStream(cl.users[2], t, "?since=0&room="+cl.room)
	iso, err := c.Isolate()
	if err != nil {
		t.Fatal(err)
	}

	minority := nodetest.Str(nodetest.Must(t, 201)(cl.commit(t, 2, cl.create, "mimi://c.test/u/minnie"))["event"])
	majority := nodetest.Str(nodetest.Must(t, 201)(cl.commit(t, 0, cl.create, "mimi://a.test/u/max"))["event"])
	maj := cl.waitSameOrder(t, 15*time.Second, 1, 0, 1)
	if maj.Tip != majority {
		t.Fatalf("majority chain %+v, want %s", maj, majority)
	}
	nodetest.Eventually(t, 15*time.Second, "minority seals its commit tentatively", func() string {
		if o := cl.order(t, 2); o.Tip != minority || o.Certified != cl.create {
			return fmt.Sprint(o)
		}
		return ""
	})
	if m := cl.members(t, 2); !slices.Contains(m, "mimi://c.test/u/minnie") {
		t.Fatalf("minority members %v lack its tentative add", m)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := iso.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	final := cl.waitSameOrder(t, 20*time.Second, 1, 0, 1, 2)
	if final.Tip != majority {
		t.Fatalf("converged on %+v, want the majority's %s", final, majority)
	}
	lines := cs.waitReplayed(t, 10*time.Second, final)
	i := slices.IndexFunc(lines, func(l clientapi.StreamLine) bool { return slices.Contains(l.Undone, minority) })
	if i < 0 {
		t.Fatalf("no order line on the cut-off node undoes %s: %+v", minority, lines)
	}
	if lines[i].RetainUntilMS <= time.Now().UnixMilli() || !slices.Contains(lines[i].Applied, majority) {
		t.Fatalf("undo line %+v: want the majority's commit applied and a future retention deadline", lines[i])
	}
	if v := metricValue(t, c, "rhizome_order_reorgs_total", "", ""); v < 1 {
		t.Fatalf("cut-off node counts %v reorgs", v)
	}
	for n := range 3 {
		m := cl.members(t, n)
		if slices.Contains(m, "mimi://c.test/u/minnie") || !slices.Contains(m, "mimi://a.test/u/max") {
			t.Fatalf("node %d members after heal = %v", n, m)
		}
	}
	t.Logf("took %v", time.Since(t0).Round(time.Millisecond))
}

// TestOrderRestart stops a node after two certified commits, certifies a
// third without it, and restarts it: it reaches the same canonical chain,
// its stream's order lines (read from cursor 0 after the restart) replay to
// it, and no node ever signed two votes of a kind for one slot and term.
func TestOrderRestart(t *testing.T) {
	t0 := time.Now()
	cl := newOrderCluster(t)
	tip := cl.create
	for k, add := range []string{"mimi://a.test/u/u1", "mimi://b.test/u/u2"} {
		tip = nodetest.Str(nodetest.Must(t, 201)(cl.commit(t, k, tip, add))["event"])
		cl.waitSameOrder(t, 15*time.Second, k+1, 0, 1, 2)
	}
	before := cl.order(t, 1)
	nodetest.Stop(t, cl.nodes[1])
	third := nodetest.Str(nodetest.Must(t, 201)(cl.commit(t, 0, tip, "mimi://a.test/u/u3"))["event"])
	cl.waitSameOrder(t, 15*time.Second, 3, 0, 2)

	b := nodetest.Start(t, orderNode(cl.net, cl.dirs[1], cl.names[1], cl.nodes[0].PeerAddrs()[0]))
	cl.nodes[1] = b
	cl.users[1].Base = "http://" + b.APIAddr()
	if got := cl.order(t, 1); !slices.Equal(got.Canonical, before.Canonical) || got.Certified != before.Certified {
		// The restarted node may already have pulled the third commit.
		if !slices.Equal(got.Canonical[:min(cl.base+2, len(got.Canonical))], before.Canonical) {
			t.Fatalf("order right after restart = %+v, before the stop %+v", got, before)
		}
	}
	final := cl.waitSameOrder(t, 15*time.Second, 3, 0, 1, 2)
	if final.Tip != third {
		t.Fatalf("final chain %+v, want tip %s", final, third)
	}
	openOrderStream(cl.users[1], t, "?since=0&room="+cl.room).waitReplayed(t, 10*time.Second, final)
	for i, n := range cl.nodes {
		for k, count := range ownVotes(t, n, cl.roomID) {
			if count > 1 {
				t.Fatalf("node %d signed %d votes for %+v", i, count, k)
			}
		}
	}
	t.Logf("took %v", time.Since(t0).Round(time.Millisecond))
}

// TestOrderBadVotes feeds a node bad votes: a vote whose content does not
// decode is refused and counted, never a panic; a vote from a server
// outside the room, or from one that a state event alone added (not a
// voter, rule M3), is refused by the machine and counted; refused votes
// stay out of the feed.
func TestOrderBadVotes(t *testing.T) {
	n := startOrderNode(t, t.TempDir(), "a.test")
	alice := nodetest.Register(t, n, "alice", "phone")
	otherKey, other, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	outsiderKey, _, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Votes",
		"servers": []nodetest.JSON{{"server_id": other.String(), "domain": "b.test"}}}))
	room := nodetest.RoomID(t, nodetest.Str(created["room"]))
	create := nodetest.EventID(t, nodetest.Str(created["event"]))
	inject := func(key ed25519.PrivateKey, kind dag.Kind, content []byte) *dag.Event {
		t.Helper()
		tips, err := n.Store().Tips(room)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dag.NewSigned(key, room, kind, tips, time.Now().UnixMilli(), content)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Store().Put(ev); err != nil {
			t.Fatal(err)
		}
		n.Rooms().PokeRoom(room)
		return ev
	}
	rejected := func(reason string) float64 {
		return metricValue(t, n, "rhizome_events_rejected_total", "reason", reason)
	}
	for _, kind := range []dag.Kind{dag.KindSeal, dag.KindAck, dag.KindSuspect} {
		inject(otherKey, kind, []byte{0xff, 0x01})
	}
	ack, err := (&consensus.Ack{Slot: cid(create), Commit: cid(create), Term: 0}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	inject(outsiderKey, dag.KindAck, ack)
	// A standalone state event may not add a server (servers change only
	// by commit, so an epoch's servers never depend on arrival order): it
	// is refused, and the server it names stays an outsider whose ack the
	// machine refuses (rule M3).
	lateKey, late, err := dag.GenerateServerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := n.Rooms().State(room)
	comp, update, err := roomstate.EncodeOp(st, &roomstate.ServersUpdate{Added: []roomstate.Server{{ID: roomstate.ServerID(late), Domain: "c.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	sev := &roomevent.State{
		Sender:  roomevent.Sender{User: alice.UserURI, Client: alice.DeviceURI},
		Changes: []roomevent.Change{{Component: uint16(comp), Update: update}},
	}
	if err := sev.Sign(room, ed25519.NewKeyFromSeed(alice.Sig.Bytes())); err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString
	if got := nodetest.Must(t, 403)(alice.Post("/v1/rooms/"+room.String()+"/state", nodetest.JSON{
		"changes": []nodetest.JSON{{"component": uint16(comp), "update": enc(update)}}, "signature": enc(sev.Signature),
	})); !strings.Contains(nodetest.Str(got["message"]), "servers") {
		t.Fatalf("state event adding a server: %v", got)
	}
	refused := inject(lateKey, dag.KindAck, ack)
	nodetest.Eventually(t, 10*time.Second, "bad votes counted", func() string {
		m, u := rejected("malformed-vote"), rejected("vote-unauthorized")
		if m != 3 || u != 2 {
			return fmt.Sprintf("malformed-vote %v, vote-unauthorized %v", m, u)
		}
		return ""
	})
	// Refused votes are not in the feed, which records what was accepted.
	feeds, err := n.Rooms().FeedByRoom(room)
	if err != nil {
		t.Fatal(err)
	}
	for _, fe := range feeds[room] {
		if fe.Event == refused.ID() || node.IsVote(fe.Kind) {
			t.Fatalf("feed holds a refused vote: %+v", fe)
		}
	}
	// Two servers, so a commit needs the absent server's ack to be
	// certified; this node is hub or not, but the room still answers.
	body := nodetest.Must(t, 200)(alice.Get("/v1/rooms/" + room.String() + "/order"))
	if body["tip"] != create.String() || len(body["canonical"].([]any)) != 0 {
		t.Fatalf("order after bad votes = %v", body)
	}
}

// TestOrderMembershipChange adds two servers to a one-server room with a
// commit that carries the servers change (rule M1). From the next slot on
// they vote: the next commit is certified with the ack of the one that is
// up; the other joins late and, syncing the whole history in one batch,
// counts the first one's votes too; with both stopped a further commit
// stays uncertified.
func TestOrderMembershipChange(t *testing.T) {
	a := startOrderNode(t, t.TempDir(), "a.test")
	b := startOrderNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	alice := nodetest.Register(t, a, "alice", "phone")
	bob := nodetest.Register(t, b, "bob", "phone")
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Grow"}))
	room, create := nodetest.Str(created["room"]), nodetest.Str(created["event"])
	roomID := nodetest.RoomID(t, room)
	g := alice.Group(room)
	enc := base64.StdEncoding.EncodeToString
	commit := func(parent string, ops ...roomstate.Op) string {
		t.Helper()
		req := nodetest.JSON{"parent": parent}
		if parent == create {
			gi, err := groupInfoOf(g)
			if err != nil {
				t.Fatal(err)
			}
			req["group_info"] = enc(gi)
		}
		pc, err := g.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := pc.Message.Marshal()
		st, _ := a.Rooms().State(roomID)
		var changes []nodetest.JSON
		for _, op := range ops {
			comp, update, err := roomstate.EncodeOp(st, op)
			if err != nil {
				t.Fatal(err)
			}
			changes = append(changes, nodetest.JSON{"component": uint16(comp), "update": enc(update)})
		}
		req["commit"], req["changes"] = enc(raw), changes
		id := nodetest.Str(nodetest.Must(t, 201)(alice.Post("/v1/rooms/"+room+"/commits", req))["event"])
		if err := g.MergeCommit(pc, nodetest.EventID(t, id).Bytes(), time.Now()); err != nil {
			t.Fatal(err)
		}
		return id
	}
	orderOf := func(c *nodetest.Client) nodetest.JSON {
		return nodetest.Must(t, 200)(c.Get("/v1/rooms/" + room + "/order"))
	}

	c := startOrderNode(t, t.TempDir(), "c.test") // isolated; joins later
	nodetest.Stop(t, c)
	c1 := commit(create,
		&roomstate.ServersUpdate{Added: []roomstate.Server{{ID: roomstate.ServerID(b.ServerID()), Domain: "b.test"}, {ID: roomstate.ServerID(c.ServerID()), Domain: "c.test"}}},
		&roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://b.test/u/bob", Role: roomstate.RoleMember}}})
	if o := orderOf(alice); o["certified"] != c1 {
		t.Fatalf("one-server room: commit not certified at once: %v", o)
	}
	nodetest.Must(t, 202)(bob.Post("/v1/rooms/"+room+"/join", nodetest.JSON{"via": []string{a.ServerID().String()}}))
	nodetest.Eventually(t, 10*time.Second, "b has the room", func() string {
		if status, body := bob.Get("/v1/rooms/" + room + "/order"); status != 200 || body["certified"] != c1 {
			return fmt.Sprint(status, body)
		}
		return ""
	})
	c2 := commit(c1, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://a.test/u/carl", Role: roomstate.RoleMember}}})
	nodetest.Eventually(t, 10*time.Second, "c2 certified on both", func() string {
		for _, c := range []*nodetest.Client{alice, bob} {
			if o := orderOf(c); o["certified"] != c2 {
				return fmt.Sprint(o)
			}
		}
		return ""
	})
	acks := 0
	for k := range ownVotes(t, b, roomID) {
		if k.kind == dag.KindAck && k.slot == fmt.Sprintf("%x", cid(nodetest.EventID(t, c1))) {
			acks++ // in term 0, or later if c's silence as hub cost a term
		}
	}
	if acks == 0 {
		t.Fatalf("b never acked in slot c1")
	}
	// The late server gets the whole history at once, as one sync batch
	// would deliver it: the commit that made b a voter and b's first votes
	// are stepped in one run, before that commit is canonical there.
	cdir := c.Config().DataDir
	c = startOrderNode(t, cdir, "c.test")
	if _, err := c.Local().AddRoom(roomID, feed.RoomRecord{How: feed.JoinedAPI}); err != nil {
		t.Fatal(err)
	}
	nodetest.Stop(t, c)
	copyRoomLog(t, a, roomID, filepath.Join(cdir, node.EventsDir))
	c = startOrderNode(t, cdir, "c.test")
	if v, ok := c.Rooms().Order(roomID); !ok || v.Certified().String() != c2 {
		t.Fatalf("late server's order %+v: want c2 %s certified with b's ack", v, c2)
	}
	nodetest.Stop(t, b)
	c3 := commit(c2, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: "mimi://a.test/u/cora", Role: roomstate.RoleMember}}})
	time.Sleep(400 * testTick) // well past SealTimeout (150 ticks): a lone server would have certified by now
	if o := orderOf(alice); o["certified"] != c2 {
		t.Fatalf("with b and c down, a alone certified %v (c3 %s): b and c do not vote", o, c3)
	}
}

// TestOrderingTickConfig reads ordering.tick_ms and refuses values outside
// 1 to 1000 ms.
func TestOrderingTickConfig(t *testing.T) {
	cfg, err := node.ParseConfig([]byte(`{"version": 1, "ordering": {"tick_ms": 20}}`))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Tick() != 20*time.Millisecond {
		t.Fatalf("tick = %v, want 20ms", n.Tick())
	}
	if d, _ := node.New(node.DefaultConfig(), nil); d.Tick() != node.DefaultTick {
		t.Fatalf("default tick = %v, want %v", d.Tick(), node.DefaultTick)
	}
	for _, bad := range []string{`-1`, `5000`} {
		_, err := node.ParseConfig([]byte(`{"version": 1, "ordering": {"tick_ms": ` + bad + `}}`))
		if !errors.Is(err, node.ErrConfig) || !strings.Contains(err.Error(), "ordering.tick_ms") {
			t.Fatalf("tick_ms %s: err = %v", bad, err)
		}
	}
}
