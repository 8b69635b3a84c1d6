package p2p_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// openHeld opens a sync stream from "from" to "to" and writes one byte of a
// frame length, and reports whether the stream is still open a moment
// later (the resource manager resets streams over its limits).
func openHeld(t *testing.T, from host.Host, to peer.ID) (network.Stream, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := from.NewStream(ctx, to, p2p.SyncProtocol)
	if err != nil {
		return nil, false
	}
	if _, err := s.Write([]byte{0x80}); err != nil {
		return s, false
	}
	_ = s.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	_, err = s.Read(b[:])
	return s, isTimeout(err)
}

// TestLimitsInboundOutbound checks the split sync budget on real hosts with
// the real resource manager: with SyncStreams = 4 and SyncPeerStreams = 2,
// two peers holding two inbound streams each fill the inbound budget and a
// third peer's stream is reset, while the server can still open its own
// (outbound) sync streams: 4 of them, 2 per peer, and not a fifth.
func TestLimitsInboundOutbound(t *testing.T) {
	lim := p2p.DefaultLimits
	lim.SyncStreams, lim.SyncPeerStreams = 4, 2
	srv, _, err := p2p.NewHost(p2p.HostConfig{Key: p2ptest.Key(79, 0), Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	release := make(chan struct{})
	defer close(release)
	hold := func(s network.Stream) {
		<-release
		s.Close()
	}
	srv.SetStreamHandler(p2p.SyncProtocol, hold)
	var clients []host.Host
	for i := range 3 {
		c, _, _ := newTestHost(t, 40+i, nil)
		c.SetStreamHandler(p2p.SyncProtocol, hold)
		if err := connect(t, c, addrOf(t, srv, "tcp")); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	for i, c := range clients[:2] {
		for k := range 2 {
			if s, ok := openHeld(t, c, srv.ID()); !ok {
				t.Fatalf("client %d stream %d refused within the budget", i, k)
			} else {
				defer s.Close()
			}
		}
	}
	if s, ok := openHeld(t, clients[2], srv.ID()); ok {
		s.Close()
		t.Fatal("a fifth inbound sync stream was admitted over SyncStreams = 4")
	}
	for _, i := range []int{0, 2} {
		for k := range 2 {
			if s, ok := openHeld(t, srv, clients[i].ID()); !ok {
				t.Fatalf("outbound stream %d to client %d refused while the inbound budget is full", k, i)
			} else {
				defer s.Close()
			}
		}
	}
	if s, ok := openHeld(t, srv, clients[1].ID()); ok {
		s.Close()
		t.Fatal("a fifth outbound sync stream was admitted over SyncStreams = 4")
	}
}

// TestLimitsSybilsOnRealHost runs a room server on a real host with the
// default limits: 40 identities of no room (more than the 32 it takes to
// fill 256 sync streams at 8 each) open 8 sync streams each, and every one
// is reset, while a server of the room keeps getting its heads answered
// within a second.
func TestLimitsSybilsOnRealHost(t *testing.T) {
	acl := p2p.NewMemACL()
	loop := netip.MustParsePrefix("127.0.0.0/8")
	reg := prometheus.NewRegistry()
	srvKey := p2ptest.Key(77, 50)
	srvHost, gater, err := p2p.NewHost(p2p.HostConfig{Key: srvKey, DialPrefixes: []netip.Prefix{loop}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer srvHost.Close()
	store := dag.NewMemStore(dag.Limits{})
	srv, err := p2p.New(p2p.Config{Host: srvHost, Gater: gater, Store: store, ACL: acl, HeadsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	create, err := dag.NewSigned(srvKey, dag.RoomID{}, dag.KindCreate, nil, 1, []byte("sybils"))
	if err != nil {
		t.Fatal(err)
	}
	room := create.RoomID()
	honestHost, _, honestKey := newTestHost(t, 51, nil, loop)
	for _, k := range []ed25519.PrivateKey{srvKey, honestKey} {
		sid, _ := dag.ServerIDFromKey(k.Public().(ed25519.PublicKey))
		acl.Allow(room, sid)
	}
	if _, err := store.Put(create); err != nil {
		t.Fatal(err)
	}
	if err := srv.JoinRoom(room); err != nil {
		t.Fatal(err)
	}
	honest, err := p2p.New(p2p.Config{Host: honestHost, Store: dag.NewMemStore(dag.Limits{}), ACL: acl, HeadsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Close()
	if err := connect(t, honestHost, addrOf(t, srvHost, "tcp")); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	held := 0
	for i := range 40 {
		h, _, _ := newTestHost(t, 100+i, nil, loop)
		if err := connect(t, h, addrOf(t, srvHost, "tcp")); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 8 {
				if s, ok := openHeld(t, h, srvHost.ID()); ok {
					mu.Lock()
					held++
					mu.Unlock()
					defer s.Close()
				}
			}
		})
	}
	worst := time.Duration(0)
	for range 10 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := honest.Heads(ctx, srvHost.ID(), room)
		cancel()
		if err != nil {
			t.Fatalf("honest heads under the sybils: %v", err)
		}
		worst = max(worst, time.Since(start))
	}
	wg.Wait()
	if held != 0 {
		t.Fatalf("%d of 320 strangers' streams were held open", held)
	}
	if n := srv.StreamRefusals()[p2p.RefuseStranger]; n < 320 {
		t.Fatalf("%d stranger refusals, want 320", n)
	}
	if v := gathered(t, reg, "rhizome_p2p_streams_refused_total", "stranger"); v < 320 {
		t.Fatalf("rhizome_p2p_streams_refused_total{reason=stranger} = %v, want >= 320", v)
	}
	if v := gathered(t, reg, "libp2p_rcmgr_limit", "streams_inbound"); v <= 0 {
		t.Fatalf("no resource manager limits exported (%v)", v)
	}
	t.Logf("320 strangers' streams reset; honest heads worst %v", worst)
}

// gathered returns the value of the first series of family name in reg
// that has a label of the given value (-1 when there is none).
func gathered(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// isTimeout reports whether err is a read deadline passing (the stream is
// still open) rather than a reset or close.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// TestLimitsUnnegotiatedStreams opens raw streams that never negotiate a
// protocol (libp2p gives them 10 s) from one peer: the per-peer limit and
// the transient limit each stop them at their value.
func TestLimitsUnnegotiatedStreams(t *testing.T) {
	for _, tc := range []struct {
		name            string
		peer, transient int
		open, wantHeld  int
	}{
		{"per peer", 6, 512, 10, 6},
		{"transient", 64, 5, 10, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := p2p.DefaultLimits
			lim.PeerStreams, lim.TransientStreams = tc.peer, tc.transient
			srv, _, err := p2p.NewHost(p2p.HostConfig{Key: p2ptest.Key(80, 0), Limits: lim})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c, _, _ := newTestHost(t, 60, nil)
			if err := connect(t, c, addrOf(t, srv, "tcp")); err != nil {
				t.Fatal(err)
			}
			var streams []network.Stream
			for range tc.open {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				s, err := c.Network().NewStream(ctx, srv.ID())
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				defer s.Reset()
				_, _ = s.Write([]byte{0x13}) // the start of a multistream header, never finished
				streams = append(streams, s)
			}
			time.Sleep(500 * time.Millisecond)
			held := 0
			for _, s := range streams {
				_ = s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				var b [1]byte
				// Alive: the server's multistream header, or nothing yet.
				if _, err := s.Read(b[:]); err == nil || isTimeout(err) {
					held++
				}
			}
			if held != tc.wantHeld {
				t.Fatalf("%d of %d unnegotiated streams held, want %d", held, tc.open, tc.wantHeld)
			}
		})
	}
}
