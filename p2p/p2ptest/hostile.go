package p2ptest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/crypto/cryptobyte"
	"google.golang.org/protobuf/proto"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/tlspl"
	"github.com/rhizome-chat/rhizome/p2p"
)

// GossipProtocol is the gossipsub protocol a [Hostile] speaks (every
// Rhizome server speaks it too).
const GossipProtocol = protocol.ID("/meshsub/1.1.0")

// Bounds of a [Hostile]: what honest servers can make it spend.
const (
	// maxHostileInbound bounds the inbound gossip streams read at once
	// (one per honest peer is all gossipsub opens).
	maxHostileInbound = 64
	// maxHostileHeld bounds the streams held open at once.
	maxHostileHeld = 4096
	// maxGossipRPC bounds one gossip RPC read by a Hostile.
	maxGossipRPC = 4 << 20
	// hostileWriteTimeout bounds one write of the Hostile's.
	hostileWriteTimeout = 5 * time.Second
)

// ErrHostileClosed is returned by [Hostile] methods after Close.
var ErrHostileClosed = errors.New("p2ptest: hostile peer closed")

// Hostile is a misbehaving peer for adversarial tests: a libp2p host with
// an identity of its own (a server of no room, unless a test allows it in
// the ACL) that speaks gossipsub and Rhizome's sync and directory protocols
// with raw streams, obeying none of their rules, and counts what honest
// servers let reach it.
//
// Gossip is raw: a Hostile announces its subscriptions and grafts itself
// onto every peer's mesh for its rooms, and it publishes by writing
// gossipsub RPCs straight onto its stream to each peer, whether or not the
// peer announced the topic. So a server's defence is tested at its own
// door, not at the attacker's good manners.
//
// Goroutines: one per inbound gossip stream (at most 64), one per held
// stream (at most 4,096) and one per fake sync request being served. All
// stop in Close.
type Hostile struct {
	// Key is the Hostile's identity key; ID the server identity it gives.
	Key ed25519.PrivateKey
	ID  dag.ServerID
	// Host is the libp2p host it acts through.
	Host host.Host

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	ts      int64
	rooms   map[string]dag.RoomID // watched topics
	out     map[peer.ID]network.Stream
	streams map[network.Stream]bool // inbound, served or held: reset in Close
	held    map[network.Stream]bool
	inbound int
	wmu     sync.Mutex // serialises writes of gossip RPCs
	chains  map[dag.RoomID]*fakeChain
	stats   HostileStats
	topics  map[string]int // every topic peers announced: how many times
}

// HostileStats counts what reached a [Hostile] and what it sent. It is a
// snapshot: see [Hostile.Stats].
type HostileStats struct {
	// RoomMessages and RoomBytes count the gossip messages of watched
	// rooms received (duplicates included) and their payload bytes.
	RoomMessages, RoomBytes int
	// Messages and MessageBytes count the gossip messages of any topic
	// received (a topic may be named in a way the Hostile does not know).
	Messages, MessageBytes int
	// IHaveIDs counts the message IDs (which are event IDs) of watched
	// rooms advertised to the Hostile in gossip.
	IHaveIDs int
	// Announcements counts peers' subscriptions to a watched room's topic
	// received by the Hostile (also those received before it watched the
	// room: a peer's hello comes first).
	Announcements int
	// Grafts counts the peers that grafted the Hostile onto their mesh of
	// a watched room.
	Grafts int
	// RPCs and RPCBytes count every gossip RPC received, of any topic.
	RPCs, RPCBytes int
	// Sent counts the events the Hostile published (each once, however
	// many peers it wrote them to); Writes counts the event copies written
	// to a peer's stream and WriteErrors the writes and stream opens that
	// failed.
	Sent, Writes, WriteErrors int
	// SyncRequests counts the sync requests about a room it serves a
	// chain of that reached the fake sync server, by kind (requests about
	// other rooms are answered unknown_room and not counted).
	SyncRequests map[p2p.SyncKind]int
	// Held counts the streams held open now; HeldClosed the held streams
	// that the remote closed or reset.
	Held, HeldClosed int
}

// SyncTotal returns the number of sync requests of every kind.
func (s HostileStats) SyncTotal() int {
	n := 0
	for _, c := range s.SyncRequests {
		n += c
	}
	return n
}

// NewHostile makes h a hostile peer with identity key (h's own key). It
// registers the gossip stream handler at once, so h must not yet be
// connected to the servers it will attack. Close stops it; the caller
// closes h.
func NewHostile(h host.Host, key ed25519.PrivateKey) (*Hostile, error) {
	sid, err := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Hostile{
		Key: key, ID: sid, Host: h, ctx: ctx, cancel: cancel,
		rooms:   map[string]dag.RoomID{},
		out:     map[peer.ID]network.Stream{},
		streams: map[network.Stream]bool{},
		held:    map[network.Stream]bool{},
		chains:  map[dag.RoomID]*fakeChain{},
		topics:  map[string]int{},
		ts:      time.Now().UnixMilli(),
		stats:   HostileStats{SyncRequests: map[p2p.SyncKind]int{}},
	}
	h.SetStreamHandler(GossipProtocol, x.readGossip)
	return x, nil
}

// AddHostile adds a hostile peer with key Key(seed, i) to the mocknet,
// links and connects it to every server. It is closed before the network.
func (nw *Network) AddHostile(seed uint64, i int) *Hostile {
	nw.tb.Helper()
	key := Key(seed, i)
	h := nw.AddHost(key)
	x, err := NewHostile(h, key)
	if err != nil {
		nw.tb.Fatal(err)
	}
	nw.tb.Cleanup(x.Close)
	for _, n := range nw.Nodes {
		if _, err := nw.MN.ConnectPeers(h.ID(), n.PeerID()); err != nil {
			nw.tb.Fatalf("p2ptest: connect hostile: %v", err)
		}
	}
	return x
}

// AddSybils adds n hostile peers with keys Key(seed, 0..n-1), each
// connected to every server: many identities of one attacker.
func (nw *Network) AddSybils(seed uint64, n int) []*Hostile {
	nw.tb.Helper()
	out := make([]*Hostile, n)
	for i := range out {
		out[i] = nw.AddHostile(seed, i)
	}
	return out
}

// Close stops every goroutine of the Hostile, resets its streams and
// removes its stream handlers. It does not close the host. It may be called
// more than once.
func (x *Hostile) Close() {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return
	}
	x.closed = true
	var all []network.Stream
	for s := range x.streams {
		all = append(all, s)
	}
	for _, s := range x.out {
		all = append(all, s)
	}
	x.mu.Unlock()
	x.Host.RemoveStreamHandler(GossipProtocol)
	x.Host.RemoveStreamHandler(p2p.SyncProtocol)
	x.cancel()
	for _, s := range all {
		_ = s.Reset()
	}
	x.wg.Wait()
}

// Stats returns a snapshot of the counters.
func (x *Hostile) Stats() HostileStats {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.stats
	s.SyncRequests = make(map[p2p.SyncKind]int, len(x.stats.SyncRequests))
	for k, v := range x.stats.SyncRequests {
		s.SyncRequests[k] = v
	}
	s.Held = len(x.held)
	for t, n := range x.topics {
		if _, ok := x.rooms[t]; ok {
			s.Announcements += n
		}
	}
	return s
}

// AnnouncedTopics returns every gossip topic name some peer announced to
// the Hostile (a room ID in a topic name tells the Hostile the room
// exists).
func (x *Hostile) AnnouncedTopics() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]string, 0, len(x.topics))
	for t := range x.topics {
		out = append(out, t)
	}
	return out
}

// Connect dials pi (for Hostiles on real hosts; [Network.AddHostile]
// connects by itself).
func (x *Hostile) Connect(ctx context.Context, pi peer.AddrInfo) error {
	if err := x.Host.Connect(ctx, pi); err != nil {
		return fmt.Errorf("p2ptest: hostile connect %s: %w", pi.ID.ShortString(), err)
	}
	return nil
}

// Topic returns the gossip topic name of room, as servers name it.
func Topic(room dag.RoomID) string { return p2p.TopicName(room) }

// add registers s as one of the Hostile's streams (reset in Close) and
// reports whether the Hostile is still open; the caller then runs under
// x.wg and must call x.done(s).
func (x *Hostile) add(s network.Stream) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return false
	}
	x.streams[s] = true
	x.wg.Add(1)
	return true
}

func (x *Hostile) done(s network.Stream) {
	x.mu.Lock()
	delete(x.streams, s)
	x.mu.Unlock()
	x.wg.Done()
}

// Subscribe watches room: the Hostile announces its subscription to the
// room's topic and grafts itself onto the mesh of every connected peer,
// then counts every message, IHAVE and announcement of the room that
// reaches it (see [HostileStats]).
func (x *Hostile) Subscribe(room dag.RoomID) error {
	if err := x.watch(room); err != nil {
		return err
	}
	var errs []error
	for _, p := range x.Host.Network().Peers() {
		if _, err := x.stream(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// watch adds room to the watched rooms and announces it on the open
// outbound gossip streams.
func (x *Hostile) watch(room dag.RoomID) error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return ErrHostileClosed
	}
	t := Topic(room)
	_, had := x.rooms[t]
	x.rooms[t] = room
	out := make(map[peer.ID]network.Stream, len(x.out))
	for p, s := range x.out {
		out[p] = s
	}
	x.mu.Unlock()
	if had {
		return nil
	}
	hello := helloRPC([]string{t})
	for p, s := range out {
		if err := x.writeRPC(p, s, hello); err != nil {
			return err
		}
	}
	return nil
}

// helloRPC subscribes to topics and grafts onto their meshes.
func helloRPC(topics []string) *pb.RPC {
	rpc := &pb.RPC{Control: &pb.ControlMessage{}}
	for _, t := range topics {
		rpc.Subscriptions = append(rpc.Subscriptions, &pb.RPC_SubOpts{Subscribe: proto.Bool(true), Topicid: proto.String(t)})
		rpc.Control.Graft = append(rpc.Control.Graft, &pb.ControlGraft{TopicID: proto.String(t)})
	}
	return rpc
}

// stream returns the outbound gossip stream to p, opening it (with the
// hello of every watched topic) if needed.
func (x *Hostile) stream(p peer.ID) (network.Stream, error) {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil, ErrHostileClosed
	}
	if s := x.out[p]; s != nil {
		x.mu.Unlock()
		return s, nil
	}
	var topics []string
	for t := range x.rooms {
		topics = append(topics, t)
	}
	x.mu.Unlock()
	ctx, cancel := context.WithTimeout(x.ctx, hostileWriteTimeout)
	defer cancel()
	s, err := x.Host.NewStream(network.WithNoDial(ctx, "hostile"), p, GossipProtocol)
	if err != nil {
		x.count(func(st *HostileStats) { st.WriteErrors++ })
		return nil, fmt.Errorf("p2ptest: hostile gossip stream to %s: %w", p.ShortString(), err)
	}
	x.mu.Lock()
	if x.closed || x.out[p] != nil {
		old := x.out[p]
		x.mu.Unlock()
		_ = s.Reset()
		if old == nil {
			return nil, ErrHostileClosed
		}
		return old, nil
	}
	x.out[p] = s
	x.mu.Unlock()
	if err := x.writeRPC(p, s, helloRPC(topics)); err != nil {
		return nil, err
	}
	return s, nil
}

// writeRPC writes one length-delimited RPC on p's stream s; on failure the
// stream is dropped (the next write opens a new one).
func (x *Hostile) writeRPC(p peer.ID, s network.Stream, rpc *pb.RPC) error {
	body, err := proto.Marshal(rpc)
	if err != nil {
		return fmt.Errorf("p2ptest: encode gossip RPC: %w", err)
	}
	buf := binary.AppendUvarint(make([]byte, 0, len(body)+binary.MaxVarintLen64), uint64(len(body)))
	buf = append(buf, body...)
	x.wmu.Lock()
	_ = s.SetWriteDeadline(time.Now().Add(hostileWriteTimeout))
	_, err = s.Write(buf)
	x.wmu.Unlock()
	if err != nil {
		x.mu.Lock()
		if x.out[p] == s {
			delete(x.out, p)
		}
		x.stats.WriteErrors++
		x.mu.Unlock()
		_ = s.Reset()
		return fmt.Errorf("p2ptest: hostile gossip to %s: %w", p.ShortString(), err)
	}
	return nil
}

func (x *Hostile) count(f func(*HostileStats)) {
	x.mu.Lock()
	f(&x.stats)
	x.mu.Unlock()
}

// readGossip reads one inbound gossip stream and counts what it carries.
func (x *Hostile) readGossip(s network.Stream) {
	x.mu.Lock()
	full := x.inbound >= maxHostileInbound
	if !full {
		x.inbound++
	}
	x.mu.Unlock()
	if full || !x.add(s) {
		if !full {
			x.mu.Lock()
			x.inbound--
			x.mu.Unlock()
		}
		_ = s.Reset()
		return
	}
	defer func() {
		x.mu.Lock()
		x.inbound--
		x.mu.Unlock()
		x.done(s)
	}()
	r := bufio.NewReader(s)
	for {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > maxGossipRPC {
			_ = s.Reset()
			return
		}
		body := make([]byte, l)
		if _, err := io.ReadFull(r, body); err != nil {
			_ = s.Reset()
			return
		}
		var rpc pb.RPC
		if err := proto.Unmarshal(body, &rpc); err != nil {
			_ = s.Reset()
			return
		}
		x.tally(&rpc, len(body))
	}
}

// tally counts one received RPC.
func (x *Hostile) tally(rpc *pb.RPC, size int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := &x.stats
	st.RPCs++
	st.RPCBytes += size
	for _, sub := range rpc.GetSubscriptions() {
		if sub.GetSubscribe() {
			x.topics[sub.GetTopicid()]++
		}
	}
	for _, m := range rpc.GetPublish() {
		st.Messages++
		st.MessageBytes += len(m.GetData())
		if _, ok := x.rooms[m.GetTopic()]; ok {
			st.RoomMessages++
			st.RoomBytes += len(m.GetData())
		}
	}
	for _, ih := range rpc.GetControl().GetIhave() {
		if _, ok := x.rooms[ih.GetTopicID()]; ok {
			st.IHaveIDs += len(ih.GetMessageIDs())
		}
	}
	for _, g := range rpc.GetControl().GetGraft() {
		if _, ok := x.rooms[g.GetTopicID()]; ok {
			st.Grafts++
		}
	}
}

// NewEvent signs a message event of room with the Hostile's key on the
// given parents (sorted here), with content (nil: 32 random bytes, so
// every event is distinct).
func (x *Hostile) NewEvent(room dag.RoomID, parents []dag.EventID, content []byte) (*dag.Event, error) {
	if content == nil {
		content = make([]byte, 32)
		_, _ = rand.Read(content)
	}
	x.mu.Lock()
	x.ts++
	ts := x.ts
	x.mu.Unlock()
	ev, err := dag.NewSigned(x.Key, room, dag.KindMessage, parents, ts, content)
	if err != nil {
		return nil, fmt.Errorf("p2ptest: hostile event: %w", err)
	}
	return ev, nil
}

// RandomID returns a well-formed event ID that names no event.
func RandomID() dag.EventID {
	b := make([]byte, dag.IDLen)
	b[0], b[1] = 0x12, 0x20 // sha2-256 multihash
	_, _ = rand.Read(b[2:])
	id, err := dag.EventIDFromBytes(b)
	if err != nil {
		panic(err) // the prefix above is the only one checked
	}
	return id
}

// Publish gossips each event to every connected peer, on the topic of the
// event's room, one RPC per event, as a flood-publishing peer would. A
// peer whose stream fails is skipped for that event (and its stream
// reopened for the next). It returns how many events reached at least one
// peer's stream.
func (x *Hostile) Publish(events ...*dag.Event) (int, error) {
	sent := 0
	var firstErr error
	for _, ev := range events {
		t := Topic(ev.RoomID())
		if err := x.watch(ev.RoomID()); err != nil {
			return sent, err
		}
		rpc := &pb.RPC{Publish: []*pb.Message{{Data: ev.Bytes(), Topic: proto.String(t)}}}
		wrote := 0
		for _, p := range x.Host.Network().Peers() {
			s, err := x.stream(p)
			if err == nil {
				err = x.writeRPC(p, s, rpc)
			}
			if err != nil {
				if errors.Is(err, ErrHostileClosed) {
					return sent, err
				}
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			wrote++
		}
		x.count(func(st *HostileStats) {
			st.Writes += wrote
			if wrote > 0 {
				st.Sent++
			}
		})
		if wrote > 0 {
			sent++
		}
	}
	return sent, firstErr
}

// FloodOptions shape a [Hostile.Flood].
type FloodOptions struct {
	// Count is the number of events.
	Count int
	// Rate is events per second (0: as fast as the streams take them).
	Rate float64
	// Parents are the parents of every event (for example a room's real
	// tips, which makes each event a new tip); nil gives each event one
	// random parent that exists nowhere.
	Parents []dag.EventID
	// Size is each event's content size (0: 32 bytes).
	Size int
}

// Flood publishes opts.Count validly signed events of room, paced at
// opts.Rate, until done or ctx ends. It returns the IDs of the events that
// reached at least one peer's stream.
func (x *Hostile) Flood(ctx context.Context, room dag.RoomID, opts FloodOptions) ([]dag.EventID, error) {
	size := opts.Size
	if size <= 0 {
		size = 32
	}
	start := time.Now()
	var ids []dag.EventID
	for k := range opts.Count {
		if ctx.Err() != nil {
			return ids, ctx.Err()
		}
		if opts.Rate > 0 {
			due := start.Add(time.Duration(float64(k) / opts.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return ids, ctx.Err()
				case <-x.ctx.Done():
					return ids, ErrHostileClosed
				}
			}
		}
		parents := opts.Parents
		if parents == nil {
			parents = []dag.EventID{RandomID()}
		}
		content := make([]byte, size)
		_, _ = rand.Read(content)
		ev, err := x.NewEvent(room, parents, content)
		if err != nil {
			return ids, err
		}
		n, err := x.Publish(ev)
		if errors.Is(err, ErrHostileClosed) {
			return ids, err
		}
		if n > 0 {
			ids = append(ids, ev.ID())
		}
	}
	return ids, nil
}

// FakeChain signs n events of room, each on the one before, the first on
// base (for example the room's create event, so the chain hangs off the
// real room). It returns them oldest first; the last is the tip.
func (x *Hostile) FakeChain(room dag.RoomID, base []dag.EventID, n int) ([]*dag.Event, error) {
	out := make([]*dag.Event, 0, n)
	parents := base
	for i := range n {
		ev, err := x.NewEvent(room, parents, fmt.Appendf(nil, "fake %d", i))
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
		parents = []dag.EventID{ev.ID()}
	}
	return out, nil
}

// fakeChain is what the fake sync server serves for a room.
type fakeChain struct {
	byID  map[dag.EventID]*dag.Event
	heads []dag.EventID
}

// ServeChain makes the Hostile a sync server that serves events (a
// [Hostile.FakeChain], say) for their room: heads answers the events that
// no other event of the set names as parent, get_missing walks back from
// the asked heads through the set (stopping at the requester's known
// events, at the limit and at [p2p.ResponseBudget]), get_events answers by
// ID. It never refuses anyone. Every request about a served room that
// reaches it is counted ([HostileStats.SyncRequests]).
func (x *Hostile) ServeChain(events []*dag.Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	parent := map[dag.EventID]bool{}
	for _, ev := range events {
		c := x.chains[ev.RoomID()]
		if c == nil {
			c = &fakeChain{byID: map[dag.EventID]*dag.Event{}}
			x.chains[ev.RoomID()] = c
		}
		c.byID[ev.ID()] = ev
		for _, p := range ev.Prev {
			parent[p] = true
		}
	}
	for _, c := range x.chains {
		c.heads = c.heads[:0]
		for id := range c.byID {
			if !parent[id] {
				c.heads = append(c.heads, id)
			}
		}
		dag.SortIDs(c.heads)
	}
	x.Host.SetStreamHandler(p2p.SyncProtocol, x.serveSync)
}

// serveSync answers one sync request from the fake chains.
func (x *Hostile) serveSync(s network.Stream) {
	if !x.add(s) {
		_ = s.Reset()
		return
	}
	defer x.done(s)
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(hostileWriteTimeout))
	raw, err := readFrame(s, p2p.MaxRequestSize)
	if err != nil {
		_ = s.Reset()
		return
	}
	req, err := p2p.UnmarshalSyncRequest(raw)
	if err != nil {
		_ = s.Reset()
		return
	}
	x.mu.Lock()
	c := x.chains[req.Room]
	if c != nil {
		x.stats.SyncRequests[req.Kind]++
	}
	x.mu.Unlock()
	resp := &p2p.SyncResponse{Kind: req.Kind}
	if c == nil {
		resp.Status = p2p.StatusUnknownRoom
		resp.Message = "unknown room"
	} else {
		c.answer(req, resp)
	}
	body, err := resp.Marshal()
	if err != nil {
		_ = s.Reset()
		return
	}
	if err := writeFrame(s, body); err != nil {
		_ = s.Reset()
	}
}

func (c *fakeChain) answer(req *p2p.SyncRequest, resp *p2p.SyncResponse) {
	switch req.Kind {
	case p2p.SyncHeads:
		resp.Heads = c.heads[:min(len(c.heads), p2p.MaxRequestIDs)]
	case p2p.SyncGetEvents:
		for _, id := range req.IDs {
			if ev := c.byID[id]; ev != nil {
				resp.Events = append(resp.Events, ev.Bytes())
			}
		}
	case p2p.SyncGetMissing:
		known := map[dag.EventID]bool{}
		for _, id := range req.Known {
			known[id] = true
		}
		seen := map[dag.EventID]bool{}
		level, size := req.IDs, 0
		for len(level) > 0 {
			var next []dag.EventID
			for _, id := range level {
				ev := c.byID[id]
				if seen[id] || known[id] || ev == nil {
					continue
				}
				seen[id] = true
				if len(resp.Events) == int(req.Limit) || size+ev.Size() > p2p.ResponseBudget {
					return
				}
				size += ev.Size()
				resp.Events = append(resp.Events, ev.Bytes())
				next = append(next, ev.Prev...)
			}
			level = dag.SortIDs(next)
		}
		resp.Complete = true
	}
}

// A frame of Rhizome's request/response protocols is the opaque<V>
// encoding of its body (a minimal varint length, then the bytes; see
// p2p/frame.go). Each side sends exactly one and then closes its write
// half, so a frame is read to the end of the stream.

func writeFrame(w io.Writer, body []byte) error {
	b, err := tlspl.Marshal(func(b *cryptobyte.Builder) { tlspl.AddOpaque(b, body) })
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func readFrame(r io.Reader, limit int) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, int64(limit)+8))
	if err != nil {
		return nil, err
	}
	var body []byte
	if err := tlspl.Unmarshal(raw, "frame", func(s *cryptobyte.String) bool { return tlspl.ReadOpaque(s, &body) }); err != nil {
		return nil, err
	}
	if len(body) > limit {
		return nil, fmt.Errorf("%w: %d bytes", p2p.ErrFrameTooLarge, len(body))
	}
	return body, nil
}

// request sends one frame on a new stream of proto to p and returns the
// answer frame.
func (x *Hostile) request(ctx context.Context, p peer.ID, proto protocol.ID, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, hostileWriteTimeout)
	defer cancel()
	s, err := x.Host.NewStream(network.WithNoDial(ctx, "hostile"), p, proto)
	if err != nil {
		return nil, fmt.Errorf("p2ptest: hostile %s stream: %w", proto, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := writeFrame(s, body); err != nil {
		_ = s.Reset()
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return nil, err
	}
	raw, err := readFrame(s, p2p.MaxResponseSize)
	if err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("p2ptest: hostile %s answer: %w", proto, err)
	}
	return raw, nil
}

// Sync sends one raw sync request to p and returns the answer, whatever its
// status.
func (x *Hostile) Sync(ctx context.Context, p peer.ID, req *p2p.SyncRequest) (*p2p.SyncResponse, error) {
	body, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	raw, err := x.request(ctx, p, p2p.SyncProtocol, body)
	if err != nil {
		return nil, err
	}
	return p2p.UnmarshalSyncResponse(raw)
}

// ClaimKeyPackages sends one raw KeyPackage directory request to p (a
// user's home server) and returns the answer, whatever its status.
func (x *Hostile) ClaimKeyPackages(ctx context.Context, p peer.ID, req p2p.KeyPackageRequest) (*p2p.KeyPackageResponse, error) {
	if req.Protocol == 0 {
		req.Protocol = p2p.MLS10
	}
	body, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	raw, err := x.request(ctx, p, p2p.KeyPackageProtocol, body)
	if err != nil {
		return nil, err
	}
	return p2p.UnmarshalKeyPackageResponse(raw)
}

// HoldStreams opens k streams of proto to p and holds them: each sends one
// byte, 0x80, the first byte of a four-byte frame length (so the server's
// handler waits for the rest), then nothing. A watcher per stream counts
// the streams the remote closes or resets ([HostileStats.HeldClosed]).
// Streams are held until ReleaseStreams or Close; it returns how many it
// opened.
func (x *Hostile) HoldStreams(ctx context.Context, p peer.ID, proto protocol.ID, k int) (int, error) {
	opened := 0
	for range k {
		x.mu.Lock()
		full := len(x.held) >= maxHostileHeld
		x.mu.Unlock()
		if full {
			return opened, fmt.Errorf("p2ptest: hostile holds %d streams already", maxHostileHeld)
		}
		s, err := x.Host.NewStream(network.WithNoDial(ctx, "hostile"), p, proto)
		if err != nil {
			return opened, fmt.Errorf("p2ptest: hold %s stream %d: %w", proto, opened, err)
		}
		if _, err := s.Write([]byte{0x80}); err != nil {
			_ = s.Reset()
			return opened, fmt.Errorf("p2ptest: hold %s stream %d: %w", proto, opened, err)
		}
		if !x.add(s) {
			_ = s.Reset()
			return opened, ErrHostileClosed
		}
		x.mu.Lock()
		x.held[s] = true
		x.mu.Unlock()
		opened++
		go x.watchHeld(s)
	}
	return opened, nil
}

// watchHeld waits until the held stream s ends.
func (x *Hostile) watchHeld(s network.Stream) {
	defer x.done(s)
	var b [1]byte
	_, err := s.Read(b[:])
	x.mu.Lock()
	if x.held[s] && x.ctx.Err() == nil && err != nil {
		x.stats.HeldClosed++ // still held: the remote ended it
	}
	delete(x.held, s)
	x.mu.Unlock()
	_ = s.Reset()
}

// ReleaseStreams resets every held stream.
func (x *Hostile) ReleaseStreams() {
	x.mu.Lock()
	var all []network.Stream
	for s := range x.held {
		all = append(all, s)
	}
	clear(x.held)
	x.mu.Unlock()
	for _, s := range all {
		_ = s.Reset()
	}
}
