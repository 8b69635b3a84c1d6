package p2p_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// writersACL is a RoomACL whose writers are kept apart from its
// participants (the network's shared ACL), as the node's are, and whose
// Settle runs a hook.
type writersACL struct {
	*p2p.MemACL // participants
	writers     *p2p.MemACL
	settle      func(room dag.RoomID, w *p2p.MemACL) // nil: none
	settles     atomic.Int32
	// writesAt, if set, answers WritesAt (else every writer's event is
	// admitted).
	writesAt func(ev *dag.Event) bool
}

func (a *writersACL) WritesAt(room dag.RoomID, ev *dag.Event) bool {
	return a.writesAt == nil || a.writesAt(ev)
}

func (a *writersACL) Writer(room dag.RoomID, s dag.ServerID) bool {
	return a.writers.Participates(room, s)
}

func (a *writersACL) Settle(room dag.RoomID) {
	a.settles.Add(1)
	if a.settle != nil {
		a.settle(room, a.writers)
	}
}

// newWritersNetwork starts n servers whose ACLs share the participants
// and have writers of their own, each server a writer of every room
// created with CreateRoom (see allowWriters).
func newWritersNetwork(t *testing.T, n int, seed uint64, configure func(i int, cfg *p2p.Config)) (*p2ptest.Network, []*writersACL) {
	t.Helper()
	acls := make([]*writersACL, n)
	nw := p2ptest.New(t, n, p2ptest.Options{Seed: seed, Latency: 5 * time.Millisecond, Configure: func(i int, cfg *p2p.Config) {
		acls[i] = &writersACL{MemACL: cfg.ACL.(*p2p.MemACL), writers: p2p.NewMemACL()}
		cfg.ACL = acls[i]
		if configure != nil {
			configure(i, cfg)
		}
	}})
	return nw, acls
}

// allowWriters makes every server of nw a writer of room on every ACL.
func allowWriters(nw *p2ptest.Network, acls []*writersACL, room dag.RoomID) {
	for _, a := range acls {
		for _, n := range nw.Nodes {
			a.writers.Allow(room, n.ID)
		}
	}
}

// spy is a raw gossipsub instance on a bare host, subscribed to a topic,
// that counts the messages and bytes it receives.
type spy struct {
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	msgs  atomic.Int64
	bytes atomic.Int64
	wg    sync.WaitGroup
}

func newSpy(t *testing.T, ctx context.Context, nw *p2ptest.Network, key ed25519.PrivateKey, topics ...string) *spy {
	t.Helper()
	s := &spy{h: nw.AddHost(key)}
	var err error
	s.ps, err = pubsub.NewGossipSub(ctx, s.h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithMaxMessageSize(1<<20), pubsub.WithFloodPublish(true),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { return string(m.Data) }))
	if err != nil {
		t.Fatal(err)
	}
	for k, name := range topics {
		tp, err := s.ps.Join(name)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			s.topic = tp
		}
		sub, err := tp.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		count := k == 0
		s.wg.Go(func() {
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if count && m.ReceivedFrom != s.h.ID() {
					s.msgs.Add(1)
					s.bytes.Add(int64(len(m.Data)))
				}
			}
		})
	}
	for _, n := range nw.Nodes {
		if _, err := nw.MN.ConnectPeers(s.h.ID(), n.PeerID()); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func serverID(t *testing.T, key ed25519.PrivateKey) dag.ServerID {
	t.Helper()
	sid, err := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

func sendAll(t *testing.T, nw *p2ptest.Network, room dag.RoomID, n int, sent []dag.EventID) []dag.EventID {
	t.Helper()
	for i := range n {
		sent = append(sent, nw.Send(i%len(nw.Nodes), room).ID())
		time.Sleep(100 * time.Millisecond)
	}
	return sent
}

func assertNotStored(t *testing.T, nw *p2ptest.Network, what string, ids []dag.EventID) {
	t.Helper()
	for i, n := range nw.Nodes {
		stored := 0
		for _, id := range ids {
			if has, err := n.Store.Has(id); err != nil {
				t.Fatal(err)
			} else if has {
				stored++
			}
		}
		if stored > 0 {
			t.Errorf("server %d stored %d of the %d %s", i, stored, len(ids), what)
		}
	}
}

// TestSpiesReceiveNothing has two spies subscribe to a room's exact topic
// while three servers exchange events: a stranger (a server of no room)
// and a server of another room of the same servers. Neither receives a
// byte of the room's events, and the servers converge.
func TestSpiesReceiveNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 3, p2ptest.Options{Seed: 41, Latency: 5 * time.Millisecond})
		room := nw.CreateRoom(0)
		other := nw.CreateRoom(1)
		ctx, cancel := context.WithCancel(context.Background())
		stranger := newSpy(t, ctx, nw, p2ptest.Key(4141, 0), p2p.TopicName(room))
		neighbourKey := p2ptest.Key(4141, 1)
		nw.ACL.Allow(other, serverID(t, neighbourKey))
		neighbour := newSpy(t, ctx, nw, neighbourKey, p2p.TopicName(room), p2p.TopicName(other))
		time.Sleep(3 * time.Second) // hellos, subscriptions, heartbeats

		sent := sendAll(t, nw, room, 30, []dag.EventID{room.CreateID()})
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		// The neighbour does get the room it is a server of: the test can
		// tell delivery from silence.
		otherSent := []dag.EventID{other.CreateID()}
		for i := range 5 {
			otherSent = append(otherSent, nw.Send(i%3, other).ID())
		}
		if _, err := nw.WaitConverged(other, otherSent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		for _, s := range []struct {
			name string
			spy  *spy
		}{{"stranger", stranger}, {"server of another room", neighbour}} {
			if n, b := s.spy.msgs.Load(), s.spy.bytes.Load(); n != 0 || b != 0 {
				t.Errorf("the %s received %d messages (%d bytes) of the room", s.name, n, b)
			}
		}
		if len(neighbour.ps.ListPeers(p2p.TopicName(other))) == 0 {
			t.Error("the servers of the other room are not peers of its topic at the neighbour")
		}
		cancel()
		stranger.wg.Wait()
		neighbour.wg.Wait()
	})
}

// TestNonMemberInjectionRejected has a non-member gossip validly signed
// events of its own onto the room's exact topic: a stranger (a server of no
// room), whose pubsub streams the servers refuse; a server of another
// room of the same servers, whose gossip of this room the validator ignores
// before decoding, scoring it down once it exceeds the tolerated burst (an
// honest server lagging behind the room may forward a few); and a former
// server of the room (still a writer, no longer a participant), whose
// gossip is ignored without scoring it down. No server stores any of their
// events, and the room converges.
func TestNonMemberInjectionRejected(t *testing.T) {
	for _, tc := range []struct {
		name      string
		neighbour bool // participates in another room
		former    bool // a writer of the room, not a participant
	}{{"stranger", false, false}, {"server of another room", true, false}, {"former server", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw, acls := newWritersNetwork(t, 3, 42, nil)
				room := nw.CreateRoom(0)
				allowWriters(nw, acls, room)
				other := nw.CreateRoom(1)
				if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				key := p2ptest.Key(4242, 0)
				if tc.neighbour {
					nw.ACL.Allow(other, serverID(t, key))
				}
				if tc.former {
					for _, a := range acls {
						a.writers.Allow(room, serverID(t, key))
					}
				}
				x := newSpy(t, ctx, nw, key, p2p.TopicName(room))
				time.Sleep(3 * time.Second)

				var injected []dag.EventID
				count, gap := 3, 200*time.Millisecond
				if tc.neighbour && !tc.former {
					count, gap = 100, 10*time.Millisecond // past the burst of foreignRate
				}
				for k := range count {
					ev, err := dag.NewSigned(key, room, dag.KindMessage, []dag.EventID{room.CreateID()}, int64(k+1), fmt.Appendf(nil, "inject %d", k))
					if err != nil {
						t.Fatal(err)
					}
					if err := x.topic.Publish(ctx, ev.Bytes()); err != nil {
						t.Fatal(err)
					}
					injected = append(injected, ev.ID())
					time.Sleep(gap)
				}
				sent := sendAll(t, nw, room, 6, []dag.EventID{room.CreateID()})
				if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				assertNotStored(t, nw, "injected events", injected)
				if tc.neighbour {
					for i, n := range nw.Nodes {
						if got := n.Mesh.Rejections()[p2p.RejectNotParticipant]; got == 0 {
							t.Errorf("server %d counted no not-participant rejection", i)
						}
						scored := n.Mesh.Offenses(x.h.ID(), p2p.OffenseUnsolicited) > 0
						if scored == tc.former {
							t.Errorf("server %d: forwarder scored down %v, want %v", i, scored, !tc.former)
						}
					}
				}
				cancel()
				x.wg.Wait()
			})
		})
	}
}

// TestRelayedNonWriterIgnored has a participant of the room (a forwarder
// the servers must listen to) relay validly signed events whose origin is
// not a writer of the room: the servers ignore them (not stored, not
// relayed), do not score the forwarder down (it may only be ahead of
// them), and count the rejections.
func TestRelayedNonWriterIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, acls := newWritersNetwork(t, 3, 43, nil)
		room := nw.CreateRoom(0)
		allowWriters(nw, acls, room)
		if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fwdKey := p2ptest.Key(4343, 0)
		nw.ACL.Allow(room, serverID(t, fwdKey)) // participates, not a writer
		fwd := newSpy(t, ctx, nw, fwdKey, p2p.TopicName(room))
		time.Sleep(3 * time.Second)

		origin := p2ptest.Key(4343, 1)
		var relayed []dag.EventID
		for k := range 5 {
			ev, err := dag.NewSigned(origin, room, dag.KindMessage, []dag.EventID{room.CreateID()}, int64(k+1), fmt.Appendf(nil, "relayed %d", k))
			if err != nil {
				t.Fatal(err)
			}
			if err := fwd.topic.Publish(ctx, ev.Bytes()); err != nil {
				t.Fatal(err)
			}
			relayed = append(relayed, ev.ID())
		}
		sent := sendAll(t, nw, room, 6, []dag.EventID{room.CreateID()})
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		assertNotStored(t, nw, "relayed events of a non-writer", relayed)
		for i, n := range nw.Nodes {
			if pen := n.Mesh.Penalty(fwd.h.ID()); pen != 0 {
				t.Errorf("server %d scored the forwarder down (%.1f)", i, pen)
			}
			if got := n.Mesh.Rejections()[p2p.RejectNotWriter]; got == 0 {
				t.Errorf("server %d counted no not-writer rejection", i)
			}
		}
		cancel()
		fwd.wg.Wait()
	})
}

// pulledBatch stores, at server 0 only, an event m of server 0, then n
// events of server s chained on m, then an event of server 0 on the last
// of them, and returns their IDs in that order.
func pulledBatch(t *testing.T, nw *p2ptest.Network, room dag.RoomID, s ed25519.PrivateKey, n int) []dag.EventID {
	t.Helper()
	m := nw.NewEvent(0, room, []byte("adds s"))
	evs := []*dag.Event{m}
	prev := m.ID()
	for k := range n {
		ev, err := dag.NewSigned(s, room, dag.KindMessage, []dag.EventID{prev}, int64(k+1), fmt.Appendf(nil, "s %d", k))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
		prev = ev.ID()
	}
	last, err := dag.NewSigned(nw.Nodes[0].Key, room, dag.KindMessage, []dag.EventID{prev}, 1<<40, []byte("on s"))
	if err != nil {
		t.Fatal(err)
	}
	evs = append(evs, last)
	var ids []dag.EventID
	for _, ev := range evs {
		if _, err := nw.Nodes[0].Store.Put(ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID())
	}
	return ids
}

// TestPulledBatchAddsWriter: a pulled batch holds an event that makes a
// server S a writer (standing for a commit adding S), then S's events,
// then an event on them. Server 1 stores the first event, settles its ACL
// (which then knows S) and stores all the rest. With more of S's events
// than one pull holds tentatively, the rest come with the follow-up pull.
func TestPulledBatchAddsWriter(t *testing.T) {
	for _, n := range []int{5, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw, acls := newWritersNetwork(t, 2, 44, nil)
				room := nw.CreateRoom(0)
				allowWriters(nw, acls, room)
				if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				s := p2ptest.Key(4444, 0)
				acls[0].writers.Allow(room, serverID(t, s))
				var adds dag.EventID
				acls[1].settle = func(room dag.RoomID, w *p2p.MemACL) {
					if has, _ := nw.Nodes[1].Store.Has(adds); has {
						w.Allow(room, serverID(t, s))
					}
				}
				ids := pulledBatch(t, nw, room, s, n)
				adds = ids[0]
				want := append([]dag.EventID{room.CreateID()}, ids...)
				if _, err := nw.WaitConverged(room, want, 60*time.Second); err != nil {
					t.Fatal(err)
				}
				if acls[1].settles.Load() == 0 {
					t.Error("server 1 never settled its ACL")
				}
				if got := nw.Nodes[1].Mesh.Rejections()[p2p.RejectNotWriter]; got != 0 {
					t.Errorf("server 1 refused %d events for their origin", got)
				}
			})
		})
	}
}

// TestPulledNonWriterRefused: a pulled batch holds events of a server S
// and an event of server 0 on them. At server 1, S is either never a
// writer, or a writer (of some state seen) but not at its events'
// parents (WritesAt false). Server 1 settles, then stores none of them
// (not the writer's descendant either) and counts the refusals; the rest
// of the room still converges.
func TestPulledNonWriterRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		seed, keyS uint64
		setup      func(acls []*writersACL, room dag.RoomID, s dag.ServerID)
	}{
		{"not a writer", 45, 4545, func(acls []*writersACL, room dag.RoomID, s dag.ServerID) {
			acls[0].writers.Allow(room, s)
		}},
		{"not a writer at its parents", 47, 4747, func(acls []*writersACL, room dag.RoomID, s dag.ServerID) {
			for _, a := range acls {
				a.writers.Allow(room, s)
			}
			acls[1].writesAt = func(ev *dag.Event) bool { return ev.Origin != s }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw, acls := newWritersNetwork(t, 2, tc.seed, nil)
				room := nw.CreateRoom(0)
				allowWriters(nw, acls, room)
				if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				s := p2ptest.Key(tc.keyS, 0)
				tc.setup(acls, room, serverID(t, s))
				ids := pulledBatch(t, nw, room, s, 5)
				if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID(), ids[0]}, 30*time.Second, 1); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Second) // more heads exchanges
				for _, id := range ids[1:] {
					if has, _ := nw.Nodes[1].Store.Has(id); has {
						t.Errorf("server 1 stored %v", id)
					}
				}
				if pend, _ := nw.Nodes[1].Store.Pending(room); len(pend) != 0 {
					t.Errorf("server 1 holds %d pending events", len(pend))
				}
				rej := nw.Nodes[1].Mesh.Rejections()
				if rej[p2p.RejectNotWriter] == 0 || rej[p2p.RejectDescendant] == 0 {
					t.Errorf("rejections %v, want not-writer and descendant ones", rej)
				}
				if acls[1].settles.Load() == 0 {
					t.Error("server 1 did not settle before refusing")
				}
			})
		})
	}
}

// TestGossipRateLimits: over the per-origin or the per-room rate, gossip
// events are ignored, counted, and arrive later through sync.
func TestGossipRateLimits(t *testing.T) {
	slow := p2p.Rate{PerSecond: 1, Burst: 3}
	for _, tc := range []struct {
		name   string
		set    func(*p2p.Config)
		reason p2p.Rejection
	}{
		{"origin", func(c *p2p.Config) { c.OriginRate = slow }, p2p.RejectOriginRate},
		{"room", func(c *p2p.Config) { c.RoomRate = slow }, p2p.RejectRoomRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := p2ptest.New(t, 2, p2ptest.Options{Seed: 46, Latency: 5 * time.Millisecond, Configure: func(i int, cfg *p2p.Config) {
					if i == 1 {
						tc.set(cfg)
					}
				}})
				room := nw.CreateRoom(0)
				sent := []dag.EventID{room.CreateID()}
				if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Second) // the gossip mesh forms
				for range 20 {
					sent = append(sent, nw.Send(0, room).ID())
				}
				if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				rej := nw.Nodes[1].Mesh.Rejections()
				if rej[tc.reason] == 0 {
					t.Errorf("rejections %v, want %s", rej, tc.reason)
				}
				if got := rej[tc.reason]; got > 17 {
					t.Errorf("%d of 20 events over the rate, want at least the burst of 3 through", got)
				}
			})
		})
	}
}

// TestRefusedPeerLetInLater: a peer that pubsub was kept from (a stranger
// then) becomes a server of the room. The servers reconnect it once and
// it receives the room's gossip from then on; nobody loops closing and
// reopening connections.
func TestRefusedPeerLetInLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 3, p2ptest.Options{Seed: 47, Latency: 5 * time.Millisecond})
		room := nw.CreateRoom(0)
		ctx, cancel := context.WithCancel(context.Background())
		key := p2ptest.Key(4747, 0)
		late := newSpy(t, ctx, nw, key, p2p.TopicName(room))
		var conns atomic.Int32
		late.h.Network().Notify(&network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) { conns.Add(1) }})
		time.Sleep(3 * time.Second)
		sent := sendAll(t, nw, room, 5, []dag.EventID{room.CreateID()})
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if n := late.msgs.Load(); n != 0 {
			t.Fatalf("the stranger received %d messages", n)
		}

		nw.ACL.Allow(room, serverID(t, key))
		for _, n := range nw.Nodes {
			n.Mesh.RefreshPeers()
		}
		time.Sleep(5 * time.Second) // reconnections, hellos, heartbeats graft
		sent = sendAll(t, nw, room, 10, sent)
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if n := late.msgs.Load(); n == 0 {
			t.Error("the new server of the room received none of its gossip")
		}
		time.Sleep(10 * time.Second) // several heads rounds, each a refresh
		if n := conns.Load(); n > 2*int32(len(nw.Nodes)) {
			t.Errorf("%d connections to the new server, want a reconnection per server at most", n)
		}
		cancel()
		late.wg.Wait()
	})
}

// TestStrangerPubsubStreamsScored has a stranger open pubsub streams to a
// server over and over: each is reset before it is read, the first ones
// (an honest server that shares no room opens one per connection) cost it
// nothing, and a stream of them past the tolerated burst scores it down
// until it is blocked and disconnected.
func TestStrangerPubsubStreamsScored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 1, p2ptest.Options{Seed: 77})
		defer nw.Close()
		nw.CreateRoom(0)
		srv := nw.Nodes[0]
		h := nw.AddHost(p2ptest.Key(7777, 0))
		if _, err := nw.MN.ConnectPeers(h.ID(), srv.PeerID()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		open := func(n int) (opened int) {
			for range n {
				s, err := h.NewStream(context.Background(), srv.PeerID(), pubsub.GossipSubID_v11)
				if err != nil {
					continue
				}
				opened++
				// Negotiation is lazy: write, and read until the server
				// resets the stream.
				_, _ = s.Write([]byte{0})
				_, _ = s.Read(make([]byte, 1))
				_ = s.Reset()
				synctest.Wait()
			}
			return opened
		}
		if got := open(10); got != 10 {
			t.Fatalf("%d of 10 streams opened", got)
		}
		if n := srv.Mesh.Offenses(h.ID(), p2p.OffenseUnsolicited); n != 0 {
			t.Fatalf("10 refused streams: %d offenses, want 0 (within the burst)", n)
		}
		open(200)
		if n := srv.Mesh.Offenses(h.ID(), p2p.OffenseUnsolicited); n == 0 {
			t.Fatal("210 refused streams scored the stranger down 0 times")
		}
		if p := srv.Mesh.Penalty(h.ID()); p < 90 {
			t.Fatalf("penalty %.0f after 210 refused streams, want blocked (90)", p)
		}
		if srv.Host.Network().Connectedness(h.ID()) == network.Connected {
			t.Fatal("the blocked stranger is still connected")
		}
	})
}

// TestNotWriterAtParentsRefused: server S is a writer of the room on
// every ACL (a server of some state seen), but its events that build on a
// state without it (WritesAt false: standing for "S is not a server after
// the commit the event names", a removed server) are refused on every
// path: forwarded over gossip, and pulled in a batch with an honest
// event on them. None is stored or relayed, and the room converges.
func TestNotWriterAtParentsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		removed := []byte("after removal ")
		afterRemoval := func(ev *dag.Event) bool { return !bytes.HasPrefix(ev.Content, removed) }
		nw, acls := newWritersNetwork(t, 3, 46, nil)
		room := nw.CreateRoom(0)
		allowWriters(nw, acls, room)
		sKey := p2ptest.Key(4646, 0)
		for _, a := range acls {
			a.writers.Allow(room, serverID(t, sKey))
			a.writesAt = afterRemoval
		}
		if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		nw.ACL.Allow(room, serverID(t, sKey)) // S participates: it reaches the others' gossip
		s := newSpy(t, ctx, nw, sKey, p2p.TopicName(room))
		time.Sleep(3 * time.Second)

		var refused []dag.EventID
		for k := range 5 {
			ev, err := dag.NewSigned(sKey, room, dag.KindMessage, []dag.EventID{room.CreateID()}, int64(k+1), append(slices.Clone(removed), byte(k)))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.topic.Publish(ctx, ev.Bytes()); err != nil {
				t.Fatal(err)
			}
			refused = append(refused, ev.ID())
		}
		sent := sendAll(t, nw, room, 6, []dag.EventID{room.CreateID()})
		if _, err := nw.WaitConverged(room, sent, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		assertNotStored(t, nw, "gossiped events of a server not of the room at their parents", refused)
		for i, n := range nw.Nodes {
			if got := n.Mesh.Rejections()[p2p.RejectNotWriter]; got == 0 {
				t.Errorf("server %d counted no not-writer rejection", i)
			}
		}
		cancel()
		s.wg.Wait()
	})
}
