package p2p_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

func newTestHost(t *testing.T, i int, policy p2p.PeerPolicy, prefixes ...netip.Prefix) (host.Host, *p2p.Gater, ed25519.PrivateKey) {
	t.Helper()
	key := p2ptest.Key(77, i)
	h, g, err := p2p.NewHost(p2p.HostConfig{Key: key, Policy: policy, DialPrefixes: prefixes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, g, key
}

// addrOf returns h's listen address of the given transport ("tcp" or
// "quic-v1").
func addrOf(t *testing.T, h host.Host, transport string) peer.AddrInfo {
	t.Helper()
	for _, a := range h.Addrs() {
		if strings.Contains(a.String(), "/"+transport) && strings.HasPrefix(a.String(), "/ip4/127.0.0.1/") {
			if transport == "tcp" && strings.Contains(a.String(), "/quic") {
				continue
			}
			return peer.AddrInfo{ID: h.ID(), Addrs: []ma.Multiaddr{a}}
		}
	}
	t.Fatalf("host has no %s address on loopback: %v", transport, h.Addrs())
	return peer.AddrInfo{}
}

func connect(t *testing.T, from host.Host, to peer.AddrInfo) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return from.Connect(ctx, to)
}

// TestHostIdentityAndTransports starts real hosts on loopback: the peer ID
// is the server's Ed25519 key, and both TCP (with Noise) and QUIC connect.
func TestHostIdentityAndTransports(t *testing.T) {
	a, _, keyA := newTestHost(t, 0, nil)
	b, _, _ := newTestHost(t, 1, nil)
	want, err := p2p.PeerID(keyA.Public().(ed25519.PublicKey))
	if err != nil || a.ID() != want {
		t.Fatalf("peer ID %v, want %v (%v)", a.ID(), want, err)
	}
	pub, err := p2p.ServerKey(a.ID())
	if err != nil || !pub.Equal(keyA.Public()) {
		t.Fatalf("ServerKey: %v", err)
	}
	for _, tr := range []string{"tcp", "quic-v1"} {
		t.Run(tr, func(t *testing.T) {
			if err := connect(t, b, addrOf(t, a, tr)); err != nil {
				t.Fatal(err)
			}
			conns := b.Network().ConnsToPeer(a.ID())
			if len(conns) == 0 {
				t.Fatal("no connection")
			}
			st := conns[0].ConnState()
			if tr == "tcp" && st.Security != "/noise" {
				t.Fatalf("TCP security %q, want /noise", st.Security)
			}
			if tr == "quic-v1" && st.Transport != "quic-v1" {
				t.Fatalf("transport %q, want quic-v1", st.Transport)
			}
			_ = b.Network().ClosePeer(a.ID())
		})
	}
}

// refused asserts that a connection from "from" to "to" does not survive:
// an inbound refusal happens after the handshake (when the peer's identity
// is known), so the dialer may see a connection for a moment before the
// gated side closes it; the gated side must never keep one.
func refused(t *testing.T, from host.Host, to peer.AddrInfo, gated host.Host) {
	t.Helper()
	err := connect(t, from, to)
	deadline := time.Now().Add(5 * time.Second)
	for err == nil && from.Network().Connectedness(to.ID) == network.Connected {
		if time.Now().After(deadline) {
			t.Fatal("connection to the gated host survived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if gated.Network().Connectedness(from.ID()) == network.Connected {
		t.Fatal("the gated host kept the connection")
	}
}

// TestGater checks what the connection gater admits.
func TestGater(t *testing.T) {
	open, _, _ := newTestHost(t, 10, nil)
	var denied peer.ID
	closed, gClosed, _ := newTestHost(t, 11, p2p.PolicyFunc(func(id peer.ID) bool { return id != denied }))
	denied = open.ID()

	t.Run("policy refuses inbound", func(t *testing.T) {
		refused(t, open, addrOf(t, closed, "tcp"), closed)
	})
	t.Run("policy refuses outbound", func(t *testing.T) {
		if err := connect(t, closed, addrOf(t, open, "tcp")); err == nil {
			t.Fatal("dialed a denied peer")
		}
	})
	t.Run("blocked peer", func(t *testing.T) {
		other, _, _ := newTestHost(t, 12, nil)
		gClosed.Block(other.ID(), time.Minute)
		refused(t, other, addrOf(t, closed, "quic-v1"), closed)
		if !gClosed.Blocked(other.ID()) {
			t.Fatal("block not recorded")
		}
	})
	t.Run("non-Ed25519 identity", func(t *testing.T) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, _, err := crypto.ECDSAKeyPairFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		h, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		refused(t, h, addrOf(t, open, "tcp"), open)
	})
	t.Run("dial prefixes", func(t *testing.T) {
		lan, _, _ := newTestHost(t, 13, nil, netip.MustParsePrefix("10.0.0.0/8"))
		if err := connect(t, lan, addrOf(t, open, "tcp")); err == nil {
			t.Fatal("dialed loopback outside the allowed prefixes")
		}
		loop, _, _ := newTestHost(t, 14, nil, netip.MustParsePrefix("127.0.0.0/8"))
		if err := connect(t, loop, addrOf(t, open, "tcp")); err != nil {
			t.Fatalf("loopback inside the allowed prefixes: %v", err)
		}
	})
}

// TestMeshOnRealHosts runs two meshes on real loopback hosts (TCP and QUIC)
// found through the bootstrap list, and replicates a room between them.
func TestMeshOnRealHosts(t *testing.T) {
	acl := p2p.NewMemACL()
	var meshes []*p2p.Mesh
	var stores []*dag.MemStore
	var hosts []host.Host
	var keys []ed25519.PrivateKey
	for i := range 2 {
		h, g, key := newTestHost(t, 20+i, nil, netip.MustParsePrefix("127.0.0.0/8"))
		hosts, keys = append(hosts, h), append(keys, key)
		stores = append(stores, dag.NewMemStore(dag.Limits{}))
		_ = g
	}
	for i := range 2 {
		other := hosts[1-i]
		m, err := p2p.New(p2p.Config{Host: hosts[i], Store: stores[i], ACL: acl, HeadsInterval: time.Second,
			Bootstrap: []peer.AddrInfo{{ID: other.ID(), Addrs: other.Addrs()}}})
		if err != nil {
			t.Fatal(err)
		}
		meshes = append(meshes, m)
		t.Cleanup(func() { m.Close() })
	}
	create, err := dag.NewSigned(keys[0], dag.RoomID{}, dag.KindCreate, nil, 1, []byte("real"))
	if err != nil {
		t.Fatal(err)
	}
	room := create.RoomID()
	for i := range 2 {
		sid, _ := dag.ServerIDFromKey(keys[i].Public().(ed25519.PublicKey))
		acl.Allow(room, sid)
	}
	if _, err := stores[0].Put(create); err != nil {
		t.Fatal(err)
	}
	for _, m := range meshes {
		if err := m.JoinRoom(room); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if has, _ := stores[1].Has(create.ID()); has {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("create event did not replicate over loopback")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ev, err := dag.NewSigned(keys[1], room, dag.KindMessage, []dag.EventID{create.ID()}, 2, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := meshes[1].Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	for {
		if has, _ := stores[0].Has(ev.ID()); has {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("event did not replicate over loopback")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResourceLimits checks that the host's resource manager enforces the
// per-peer sync stream limit: with SyncPeerStreams = 2, a third concurrent
// sync stream from one peer is reset before the handler sees it.
func TestResourceLimits(t *testing.T) {
	if _, err := (p2p.Limits{}).ResourceManager(nil); err == nil {
		t.Fatal("zero limits accepted")
	}
	lim := p2p.DefaultLimits
	lim.SyncPeerStreams = 2
	srv, _, err := p2p.NewHost(p2p.HostConfig{Key: p2ptest.Key(78, 0), Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	held := make(chan network.Stream, 8)
	release := make(chan struct{})
	srv.SetStreamHandler(p2p.SyncProtocol, func(s network.Stream) {
		held <- s
		<-release
		s.Close()
	})
	defer close(release)
	cli, _, _ := newTestHost(t, 30, nil)
	if err := connect(t, cli, addrOf(t, srv, "tcp")); err != nil {
		t.Fatal(err)
	}
	var streams []network.Stream
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := cli.NewStream(ctx, srv.ID(), p2p.SyncProtocol)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write([]byte{0}); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	resets := 0
	for _, s := range streams {
		_ = s.SetReadDeadline(time.Now().Add(2 * time.Second))
		var b [1]byte
		_, err := s.Read(b[:])
		var ne net.Error
		timeout := errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		if err != nil && !timeout {
			t.Logf("stream error: %v", err)
			resets++
		}
	}
	if resets != 1 || len(held) != 2 {
		t.Fatalf("%d streams reset, %d reached the handler; want 1 and 2", resets, len(held))
	}
}
