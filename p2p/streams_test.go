package p2p_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// inboundStreams counts h's open inbound streams of proto.
func inboundStreams(h host.Host, proto protocol.ID) int {
	n := 0
	for _, c := range h.Network().Conns() {
		for _, s := range c.GetStreams() {
			if s.Protocol() == proto && s.Stat().Direction == network.DirInbound {
				n++
			}
		}
	}
	return n
}

// sampler records the largest value f returns, polled every 10 ms until
// stopped.
type sampler struct {
	mu   sync.Mutex
	max  int
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

func sample(f func() int) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			v := f()
			s.mu.Lock()
			s.max = max(s.max, v)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return s
}

// end stops the sampler (it may be called more than once) and returns the
// largest value seen.
func (s *sampler) end() int {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// heldClosed sums the held streams the server ended, over xs.
func heldClosed(xs []*p2ptest.Hostile) int {
	n := 0
	for _, x := range xs {
		n += x.Stats().HeldClosed
	}
	return n
}

// waitHeldClosed polls (every 10 ms) until want of xs's held streams are
// ended by the server or limit passes, and returns how long it took.
func waitHeldClosed(t *testing.T, xs []*p2ptest.Hostile, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for heldClosed(xs) < want {
		if time.Since(start) > limit {
			t.Fatalf("%d of %d held streams ended after %v", heldClosed(xs), want, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestStreamHold replays the stream-hold attack on a room server (server 0):
// 80 identities of no room open 8 sync streams each and send nothing, 80
// more send valid requests, and 8 hostile servers of the room hold 8
// streams each. The strangers' streams are reset before anything is read
// (all 640 within 100 ms); the room servers' after the 5 s read timeout;
// the inbound sync streams never exceed the 64 the hostile room servers may
// hold (the resource manager's limit is 256); and meanwhile an honest
// server's heads request is answered within 100 ms, and a server coming
// back from isolation catches up on 100 events within 5 s of the heal (its
// redial backoff is at most 2 s here; the same catch-up without the attack
// is measured first, for the log).
func TestStreamHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 2, p2ptest.Options{Seed: 51, Latency: 2 * time.Millisecond, Configure: func(_ int, cfg *p2p.Config) {
			cfg.HeadsInterval = time.Minute
		}})
		defer nw.Close()
		victim, honest := nw.Nodes[0], nw.Nodes[1]
		room := nw.CreateRoom(0)
		if _, err := nw.WaitConverged(room, []dag.EventID{room.CreateID()}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		// Baseline: server 1 comes back 100 events behind, no attack.
		want := []dag.EventID{room.CreateID()}
		nw.Isolate(1)
		for range 100 {
			want = append(want, nw.Send(0, room).ID())
		}
		nw.Heal()
		baseline, err := nw.WaitConverged(room, want, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nw.Isolate(1) // and again, to come back during the attack
		for range 100 {
			want = append(want, nw.Send(0, room).ID())
		}

		strangers := nw.AddSybils(61, 80)
		askers := nw.AddSybils(62, 80)
		members := nw.AddSybils(63, 8)
		for _, x := range members {
			nw.ACL.Allow(room, x.ID)
		}
		ctx := context.Background()
		count := sample(func() int { return inboundStreams(victim.Host, p2p.SyncProtocol) })
		defer count.end()

		start := time.Now()
		for _, x := range members {
			if n, err := x.HoldStreams(ctx, victim.PeerID(), p2p.SyncProtocol, 8); n != 8 || err != nil {
				t.Fatalf("member holds %d streams: %v", n, err)
			}
		}
		for _, x := range strangers {
			if n, err := x.HoldStreams(ctx, victim.PeerID(), p2p.SyncProtocol, 8); n != 8 || err != nil {
				t.Fatalf("stranger holds %d streams: %v", n, err)
			}
		}
		var wg sync.WaitGroup
		var resets int
		var mu sync.Mutex
		for _, x := range askers {
			wg.Go(func() {
				resp, err := x.Sync(ctx, victim.PeerID(), &p2p.SyncRequest{Kind: p2p.SyncHeads, Room: room})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					t.Errorf("a stranger's request was answered: %+v", resp)
				} else {
					resets++
				}
			})
		}
		wg.Wait()
		took := waitHeldClosed(t, strangers, 80*8, 100*time.Millisecond)
		t.Logf("640 strangers' streams reset in %v (%v after the attack began); %d of 80 requests reset unanswered",
			took, time.Since(start), resets)

		// While the room servers still hold their 64 streams: the isolated
		// server comes back and catches up, and its heads request is
		// answered at once.
		nw.Heal()
		caughtUp, err := nw.WaitConverged(room, want, 5*time.Second)
		if err != nil {
			t.Fatalf("catch-up during the hold: %v", err)
		}
		t1 := time.Now()
		if _, err := honest.Mesh.Heads(ctx, victim.PeerID(), room); err != nil || time.Since(t1) > 100*time.Millisecond {
			t.Fatalf("honest heads during the hold: %v after %v", err, time.Since(t1))
		}
		if n := heldClosed(members); n != 0 {
			t.Fatalf("%d room servers' streams already reset %v after they opened: not during the hold", n, time.Since(start))
		}
		t.Logf("catch-up of 100 events %v after the heal, %v into the hold (without the attack: %v)", caughtUp, time.Since(start), baseline)

		waitHeldClosed(t, members, 8*8, 7*time.Second)
		since := time.Since(start)
		if since < 5*time.Second || since > 5*time.Second+500*time.Millisecond {
			t.Fatalf("room servers' idle streams reset %v after they opened, want just after the 5 s read timeout", since)
		}
		peak := count.end()
		t.Logf("room servers' 64 idle streams reset %v after opening; peak inbound sync streams %d", since, peak)
		if peak > 64+2 {
			t.Fatalf("peak of %d inbound sync streams, want at most the 64 the room servers hold (+2 honest)", peak)
		}
		refused := victim.Mesh.StreamRefusals()
		if refused[p2p.RefuseStranger] < 80*8+80 || refused[p2p.RefuseIdle] < 64 {
			t.Fatalf("refusals %v, want >= 720 stranger and >= 64 idle", refused)
		}
		nw.Close()
	})
}

// TestStreamDirectorySlots has strangers hold KeyPackage directory streams
// (the directory serves strangers, so they are not refused): a peer gets 2
// slots and its third request is answered busy; 20 strangers at 2 idle
// streams each fill the strangers' 24 slots (16 are answered busy at once)
// and another stranger is answered busy, while a server of a shared room,
// drawing on its own pool, is served; the 24 idle streams are reset after
// the 5 s read timeout, and then strangers are served again; and 8 hostile
// room servers fill the room servers' 16 slots, so a ninth is busy.
func TestStreamDirectorySlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := p2p.NewMemKeyPackages()
		for k := range 4 {
			dir.Add(bob, "c1", 1, fmt.Appendf(nil, "c1-kp%d", k))
		}
		nw := directoryNet(t, dir, p2p.Rate{PerSecond: 100, Burst: 100})
		defer nw.Close()
		room := nw.CreateRoom(0) // servers 0 and 1 share a room
		home := nw.Nodes[1]
		ctx := context.Background()
		req := p2p.KeyPackageRequest{RequestingUser: alice, TargetUser: bob}
		holders := nw.AddSybils(71, 20)
		other := nw.AddHostile(72, 0)
		start := time.Now()
		for _, x := range holders {
			if n, err := x.HoldStreams(ctx, home.PeerID(), p2p.KeyPackageProtocol, 2); n != 2 || err != nil {
				t.Fatalf("holds %d directory streams: %v", n, err)
			}
		}
		time.Sleep(100 * time.Millisecond) // the holds reach the handler
		if n := inboundStreams(home.Host, p2p.KeyPackageProtocol); n != 24 {
			t.Fatalf("%d directory streams held, want the strangers' 24 slots (the other 16 answered busy)", n)
		}
		for name, x := range map[string]*p2ptest.Hostile{"third stream of a holder": holders[0], "another stranger": other} {
			resp, err := x.ClaimKeyPackages(ctx, home.PeerID(), req)
			if err != nil || resp.Status != p2p.DirectoryBusy {
				t.Fatalf("%s: %+v, %v; want busy", name, resp, err)
			}
		}
		km, err := nw.Nodes[0].Mesh.FetchKeyPackages(ctx, home.PeerID(), req)
		if err != nil || len(km.Clients) != 1 {
			t.Fatalf("room server's fetch during the hold: %+v, %v", km, err)
		}
		waitHeldClosed(t, holders, 24, 6*time.Second)
		if since := time.Since(start); since < 5*time.Second || since > 5*time.Second+500*time.Millisecond {
			t.Fatalf("idle directory streams reset %v after opening, want just after the 5 s read timeout", since)
		}
		if got := home.Mesh.StreamRefusals()[p2p.RefuseIdle]; got != 24 {
			t.Fatalf("%d idle refusals, want 24", got)
		}
		resp, err := other.ClaimKeyPackages(ctx, home.PeerID(), req)
		if err != nil || resp.Status != p2p.DirectoryOK {
			t.Fatalf("stranger's request once the slots are free: %+v, %v", resp, err)
		}

		// The room servers' pool has 16 slots: 8 hostile room servers at 2
		// fill it, and a ninth is answered busy.
		members := nw.AddSybils(73, 9)
		for _, x := range members {
			nw.ACL.Allow(room, x.ID)
		}
		for _, x := range members[:8] {
			if n, err := x.HoldStreams(ctx, home.PeerID(), p2p.KeyPackageProtocol, 2); n != 2 || err != nil {
				t.Fatalf("member holds %d directory streams: %v", n, err)
			}
		}
		time.Sleep(100 * time.Millisecond)
		if n := inboundStreams(home.Host, p2p.KeyPackageProtocol); n != 16 {
			t.Fatalf("%d directory streams held by room servers, want their pool's 16", n)
		}
		resp, err = members[8].ClaimKeyPackages(ctx, home.PeerID(), req)
		if err != nil || resp.Status != p2p.DirectoryBusy {
			t.Fatalf("a ninth room server with the pool full: %+v, %v; want busy", resp, err)
		}
		nw.Close()
	})
}

// TestStreamSlowReader has a server of the room, on real loopback hosts,
// ask for about 1 MiB of events and never read the answer: the server's
// write blocks once the stream's flow-control window is full, and the
// watchdog resets the stream when RequestTimeout (2 s here) has passed
// since it opened, not before.
func TestStreamSlowReader(t *testing.T) {
	acl := p2p.NewMemACL()
	loop := netip.MustParsePrefix("127.0.0.0/8")
	srvHost, _, srvKey := newTestHost(t, 70, nil, loop)
	store := dag.NewMemStore(dag.Limits{})
	srv, err := p2p.New(p2p.Config{Host: srvHost, Store: store, ACL: acl, HeadsInterval: time.Hour,
		RequestTimeout: 2 * time.Second, RequestReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	create, err := dag.NewSigned(srvKey, dag.RoomID{}, dag.KindCreate, nil, 1, []byte("slow"))
	if err != nil {
		t.Fatal(err)
	}
	room := create.RoomID()
	if _, err := store.Put(create); err != nil {
		t.Fatal(err)
	}
	ids := []dag.EventID{create.ID()}
	for i := range 20 {
		ev, err := dag.NewSigned(srvKey, room, dag.KindMessage, ids[len(ids)-1:], int64(i+2), make([]byte, 60_000))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Put(ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID())
	}
	cli, _, cliKey := newTestHost(t, 71, nil, loop)
	for _, k := range []ed25519.PrivateKey{srvKey, cliKey} {
		sid, _ := dag.ServerIDFromKey(k.Public().(ed25519.PublicKey))
		acl.Allow(room, sid)
	}
	if err := srv.JoinRoom(room); err != nil {
		t.Fatal(err)
	}
	if err := connect(t, cli, addrOf(t, srvHost, "tcp")); err != nil {
		t.Fatal(err)
	}
	body, err := (&p2p.SyncRequest{Kind: p2p.SyncGetEvents, Room: room, IDs: dag.SortIDs(ids)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := cli.NewStream(ctx, srvHost.ID(), p2p.SyncProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	start := time.Now()
	if err := p2p.WriteFrame(s, body); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	for srv.StreamRefusals()[p2p.RefuseIdle] == 0 {
		if time.Since(start) > 4*time.Second {
			t.Fatal("the slow reader's stream outlived RequestTimeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(start); took < 1900*time.Millisecond {
		t.Fatalf("stream reset %v after it opened, before RequestTimeout", took)
	} else {
		t.Logf("slow reader's stream reset %v after it opened", took)
	}
}
