package node_test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/badgerstore"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// testTick is the consensus tick of the ordering tests: with the default
// parameters a silent hub is suspected after 0.75 s and a lone server seals
// tentatively after 2 to 3 s.
const testTick = 5 * time.Millisecond

// orderNode is how the ordering tests start nodes: short consensus ticks,
// a fast heads exchange and no operations endpoints; on mocknet net, or on
// loopback TCP if net is nil.
func orderNode(net *nodetest.Net, dir, serverName string, bootstrap ...string) nodetest.Options {
	return nodetest.Options{
		Dir: dir, Name: serverName, Bootstrap: bootstrap, Net: net,
		HeadsInterval: 300 * time.Millisecond, Tick: testTick,
		Config: func(c *node.Config) { c.Metrics.Listen = "" },
	}
}

// startOrderNode starts an order node on loopback TCP.
func startOrderNode(t testing.TB, dir, serverName string, bootstrap ...string) *node.Node {
	t.Helper()
	return nodetest.Start(t, orderNode(nil, dir, serverName, bootstrap...))
}

// orderCluster is three nodes on loopback with one room whose servers are
// all three, and one admin user on each node, all three devices in the
// room's MLS group: alice created it, and her first commit (the setup
// commit, certified everywhere) added bob and carol as admins with their
// devices. Commits of the tests are real MLS commits: each user keeps a
// snapshot of its group at every epoch the cluster created, so a test can
// commit on any parent (servers verify commits as MLS observers).
type orderCluster struct {
	net    *nodetest.Net // the nodes' mocknet (nil: loopback TCP)
	nodes  []*node.Node
	dirs   []string
	names  []string
	users  []*nodetest.Client
	room   string
	roomID dag.RoomID
	root   string // the create event
	create string // the setup commit: the epoch the tests start from
	base   int    // canonical commits before the tests' own (the setup commit)
	// epochs[i][E] is user i's group at epoch E.
	mu     sync.Mutex // guards epochs (commits run concurrently)
	epochs []map[string]*mls.Snapshot
}

func newOrderCluster(t testing.TB) *orderCluster {
	t.Helper()
	return newOrderClusterOn(t, nodetest.NewNet(t))
}

// newOrderClusterOn is newOrderCluster with the nodes' libp2p hosts on
// mocknet net (nil: loopback TCP).
func newOrderClusterOn(t testing.TB, net *nodetest.Net) *orderCluster {
	t.Helper()
	cl := &orderCluster{names: []string{"a.test", "b.test", "c.test"}, net: net}
	for i, name := range cl.names {
		dir := t.TempDir()
		var boot []string
		if i > 0 {
			boot = cl.nodes[0].PeerAddrs()[:1]
		}
		n := nodetest.Start(t, orderNode(net, dir, name, boot...))
		cl.nodes, cl.dirs = append(cl.nodes, n), append(cl.dirs, dir)
		cl.users = append(cl.users, nodetest.Register(t, n, []string{"alice", "bob", "carol"}[i], "phone"))
		cl.epochs = append(cl.epochs, map[string]*mls.Snapshot{})
	}
	alice := cl.users[0]
	var servers []nodetest.JSON
	for i, n := range cl.nodes[1:] {
		servers = append(servers, nodetest.JSON{"server_id": n.ServerID().String(), "domain": cl.names[i+1]})
	}
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"preset": "private-group", "name": "Order", "servers": servers}))
	cl.room, cl.root = nodetest.Str(created["room"]), nodetest.Str(created["event"])
	cl.roomID = nodetest.RoomID(t, cl.room)
	for i := 1; i < 3; i++ {
		// The other servers may still be connecting: retry a refused join.
		nodetest.Eventually(t, 15*time.Second, "the join of user "+fmt.Sprint(i), func() string {
			if status, body := cl.users[i].Post("/v1/rooms/"+cl.room+"/join", nodetest.JSON{"via": []string{cl.nodes[0].ServerID().String()}}); status != 202 {
				return fmt.Sprint(status, body)
			}
			return ""
		})
	}
	nodetest.Eventually(t, 15*time.Second, "every server has the room", func() string {
		for i, n := range cl.nodes {
			if st, _ := n.Rooms().State(cl.roomID); st == nil {
				return fmt.Sprintf("node %d has no state of the room", i)
			}
		}
		return ""
	})
	// The setup commit: alice adds bob and carol as admins (so their
	// commits may add people), with their devices.
	g := alice.Group(cl.room)
	gi, err := groupInfoOf(g)
	if err != nil {
		t.Fatal(err)
	}
	var props []mls.Proposal
	var bundles []*mls.KeyPackageBundle
	for i := 1; i < 3; i++ {
		kb, raw := cl.users[i].KeyPackage(false)
		m, err := mls.UnmarshalMLSMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		props = append(props, &mls.AddProposal{KeyPackage: *m.KeyPackage})
		bundles = append(bundles, kb)
	}
	pc, err := g.Commit(rand.Reader, &mls.CommitOptions{Proposals: props})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := cl.nodes[0].Rooms().State(cl.roomID)
	comp, update, err := roomstate.EncodeOp(st, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{
		{User: roomstate.URI(cl.users[1].UserURI), Role: roomstate.RoleAdmin},
		{User: roomstate.URI(cl.users[2].UserURI), Role: roomstate.RoleAdmin},
	}})
	if err != nil {
		t.Fatal(err)
	}
	commitRaw, _ := pc.Message.Marshal()
	welcomeRaw, _ := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatWelcome, Welcome: pc.Welcome}).Marshal()
	enc := base64.StdEncoding.EncodeToString
	setup := nodetest.Must(t, 201)(alice.Post("/v1/rooms/"+cl.room+"/commits", nodetest.JSON{
		"parent": cl.root, "commit": enc(commitRaw), "welcome": enc(welcomeRaw), "group_info": enc(gi),
		"changes": []nodetest.JSON{{"component": uint16(comp), "update": enc(update)}},
	}))
	cl.create, cl.base = nodetest.Str(setup["event"]), 1
	epochID := nodetest.EventID(t, cl.create).Bytes()
	if err := g.MergeCommit(pc, epochID, time.Now()); err != nil {
		t.Fatal(err)
	}
	cl.epochs[0][cl.create] = g.Snapshot()
	for i, kb := range bundles {
		jg, err := mls.JoinGroup(pc.Welcome, kb, &mls.JoinOptions{Config: mls.GroupConfig{RatchetTreeInWelcome: true}, EpochID: epochID})
		if err != nil {
			t.Fatal(err)
		}
		cl.epochs[i+1][cl.create] = jg.Snapshot()
	}
	nodetest.Eventually(t, 20*time.Second, "every user sees the room", func() string {
		for i, u := range cl.users {
			if status, body := u.Get("/v1/rooms/" + cl.room); status != 200 || len(body["members"].([]any)) != 3 {
				return fmt.Sprintf("user %d: %d %v", i, status, body)
			}
		}
		return ""
	})
	cl.waitSameOrder(t, 20*time.Second, 0, 0, 1, 2)
	return cl
}

// group returns a copy of user i's group at epoch (nil if the cluster did
// not make that epoch).
func (cl *orderCluster) group(t testing.TB, i int, epoch string) *mls.Group {
	t.Helper()
	s, ok := cl.epochs[i][epoch] // the caller holds cl.mu, or no commit runs
	if !ok {
		return nil
	}
	g, err := s.Restore()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// commit submits a real MLS commit (a path update) by user i on parent
// that adds the user add (a MIMI URI) to the room as a participant. When
// the node takes it, every user's group at the new epoch is recorded.
func (cl *orderCluster) commit(t testing.TB, i int, parent, add string) (int, nodetest.JSON) {
	t.Helper()
	cl.mu.Lock()
	g := cl.group(t, i, parent)
	cl.mu.Unlock()
	if g == nil {
		t.Errorf("user %d has no group at epoch %s", i, parent)
		return 0, nil
	}
	pc, err := g.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	raw, err := pc.Message.Marshal()
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	st, _ := cl.nodes[i].Rooms().State(cl.roomID)
	comp, update, err := roomstate.EncodeOp(st, &roomstate.ParticipantUpdate{Added: []roomstate.UserRole{{User: roomstate.URI(add), Role: roomstate.RoleMember}}})
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	enc := base64.StdEncoding.EncodeToString
	status, body := cl.users[i].Post("/v1/rooms/"+cl.room+"/commits", nodetest.JSON{
		"parent": parent, "commit": enc(raw), "changes": []nodetest.JSON{{"component": uint16(comp), "update": enc(update)}},
	})
	if status != 201 {
		return status, body
	}
	e := nodetest.Str(body["event"])
	id, err := dag.ParseEventID(e)
	if err != nil {
		t.Error(err)
		return status, body
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if err := g.MergeCommit(pc, id.Bytes(), time.Now()); err != nil {
		t.Error(err)
		return status, body
	}
	cl.epochs[i][e] = g.Snapshot()
	for j := range cl.users {
		if j == i {
			continue
		}
		gj := cl.group(t, j, parent)
		if gj == nil {
			continue
		}
		if _, err := gj.ProcessMessage(pc.Message, &mls.ProcessOptions{EpochID: id.Bytes(), Now: time.Now()}); err != nil {
			t.Errorf("user %d processes user %d's commit: %v", j, i, err)
			continue
		}
		cl.epochs[j][e] = gj.Snapshot()
	}
	return status, body
}

// order is GET /v1/rooms/{room}/order on node i.
func (cl *orderCluster) order(t testing.TB, i int) clientapi.Order {
	t.Helper()
	body := nodetest.Must(t, 200)(cl.users[i].Get("/v1/rooms/" + cl.room + "/order"))
	raw, _ := json.Marshal(body)
	var o clientapi.Order
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// waitSameOrder waits until the given nodes report the same canonical
// chain of length n, fully certified, and returns it.
func (cl *orderCluster) waitSameOrder(t testing.TB, timeout time.Duration, n int, nodes ...int) clientapi.Order {
	t.Helper()
	var first clientapi.Order
	nodetest.Eventually(t, timeout, "nodes agree on a certified chain", func() string {
		first = cl.order(t, nodes[0])
		for _, i := range nodes {
			o := first
			if i != nodes[0] {
				o = cl.order(t, i)
			}
			if len(o.Canonical) != n+cl.base || o.Certified != o.Tip || !slices.Equal(o.Canonical, first.Canonical) {
				return fmt.Sprintf("node %d: %+v; node %d: %+v", nodes[0], first, i, o)
			}
		}
		return ""
	})
	return first
}

// members returns the users listed on node i.
func (cl *orderCluster) members(t testing.TB, i int) []string {
	t.Helper()
	var out []string
	for _, m := range nodetest.Must(t, 200)(cl.users[i].Get("/v1/rooms/" + cl.room + "/members"))["members"].([]any) {
		out = append(out, nodetest.Str(m.(map[string]any)["user"]))
	}
	return out
}

// orderStream collects the order lines of a stream.
type orderStream struct {
	lines chan clientapi.StreamLine
	got   []clientapi.StreamLine
}

func openOrderStream(c *nodetest.Client, t testing.TB, query string) *orderStream {
	t.Helper()
	req, _ := http.NewRequest("GET", c.Base+"/v1/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	s := &orderStream{lines: make(chan clientapi.StreamLine, 1024)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l clientapi.StreamLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Type == clientapi.LineOrder {
				s.lines <- l
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// replayed applies every order line (undone newest first, then applied
// oldest first) and returns the chain they describe.
func replayed(lines []clientapi.StreamLine) []string {
	var chain []string
	for _, l := range lines {
		for _, u := range l.Undone {
			if len(chain) > 0 && chain[len(chain)-1] == u {
				chain = chain[:len(chain)-1]
			} else {
				return append(chain, "<undone "+u+" is not the tip>")
			}
		}
		chain = append(chain, l.Applied...)
	}
	return chain
}

// waitReplayed reads order lines until they replay to want with its
// certified commit, and returns every line read so far.
func (s *orderStream) waitReplayed(t testing.TB, timeout time.Duration, want clientapi.Order) []clientapi.StreamLine {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if n := len(s.got); n > 0 && slices.Equal(replayed(s.got), want.Canonical) && s.got[n-1].Certified == want.Certified && s.got[n-1].Tip == want.Tip {
			return s.got
		}
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatal("stream closed")
			}
			s.got = append(s.got, l)
		case <-deadline:
			t.Fatalf("order lines %+v do not replay to %+v within %v", s.got, want, timeout)
		}
	}
}

// voteKey names one vote slot: at most one vote of a kind per server, slot
// (seal, ack) and term.
type voteKey struct {
	kind dag.Kind
	slot string
	term uint64
}

// ownVotes counts node n's stored votes in the room by kind, slot and term.
func ownVotes(t testing.TB, n *node.Node, room dag.RoomID) map[voteKey]int {
	t.Helper()
	out := map[voteKey]int{}
	var after uint64
	for {
		entries, err := n.Store().Log(room, after, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			return out
		}
		for _, e := range entries {
			after = e.Seq
			ev, err := n.Store().Get(e.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Origin != n.ServerID() || !node.IsVote(ev.Kind) {
				continue
			}
			switch ev.Kind {
			case dag.KindSeal:
				s, err := consensus.ParseSeal(ev.Content)
				if err != nil {
					t.Fatalf("own seal %v does not decode: %v", ev.ID(), err)
				}
				out[voteKey{dag.KindSeal, fmt.Sprintf("%x/%v", s.Slot, s.Tentative), s.Term}]++
			case dag.KindAck:
				a, err := consensus.ParseAck(ev.Content)
				if err != nil {
					t.Fatalf("own ack %v does not decode: %v", ev.ID(), err)
				}
				out[voteKey{dag.KindAck, fmt.Sprintf("%x", a.Slot), a.Term}]++
			case dag.KindSuspect:
				s, err := consensus.ParseSuspect(ev.Content)
				if err != nil {
					t.Fatalf("own suspect %v does not decode: %v", ev.ID(), err)
				}
				out[voteKey{dag.KindSuspect, "", s.Term}]++
			}
		}
	}
}

// metricValue reads a counter of n's metrics registry: the series whose
// label (if given) has the value, 0 if absent.
func metricValue(t testing.TB, n *node.Node, name, label, value string) float64 {
	t.Helper()
	fams, err := n.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// histogramMean is the mean of histogram name of n's metrics registry
// (0 without samples) and its sample count.
func histogramMean(t testing.TB, n *node.Node, name string) (float64, uint64) {
	t.Helper()
	fams, err := n.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			if c := h.GetSampleCount(); c > 0 {
				return h.GetSampleSum() / float64(c), c
			}
		}
	}
	return 0, 0
}

// copyRoomLog copies the room's events from running node n into the stopped
// node's event store at dir, in n's arrival order (parents first).
func copyRoomLog(t testing.TB, n *node.Node, room dag.RoomID, dir string) {
	t.Helper()
	st, err := badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var after uint64
	for {
		entries, err := n.Store().Log(room, after, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			return
		}
		for _, e := range entries {
			after = e.Seq
			ev, err := n.Store().Get(e.ID)
			if err != nil {
				t.Fatal(err)
			}
			if res, err := st.Put(ev); err != nil || (res.Status != dag.StatusStored && res.Status != dag.StatusDuplicate) {
				t.Fatalf("copy %v: %v %v", e.ID, res.Status, err)
			}
		}
	}
}

// cid converts a DAG event ID to the consensus package's ID.
func cid(id dag.EventID) consensus.EventID { return consensus.EventID(id.Bytes()) }
