package p2p

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rhizome-chat/rhizome/dag"
)

func mockMesh(t *testing.T, mn mocknet.Mocknet, i int, cfg Config) *Mesh {
	t.Helper()
	seed := sha256.Sum256([]byte{byte(i)})
	priv, err := PrivKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	h, err := mn.AddPeer(priv, ma.StringCast("/ip6/100::1:"+string(rune('a'+i))+"/tcp/1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Store, cfg.ACL = h, dag.NewMemStore(dag.Limits{}), NewMemACL()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDialerBackoff checks that the dialer retries an unreachable wanted
// peer with growing, capped backoff, and connects by itself once the link
// exists.
func TestDialerBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		defer mn.Close()
		cfg := Config{BackoffMin: 100 * time.Millisecond, BackoffMax: 1600 * time.Millisecond}
		a, b := mockMesh(t, mn, 0, cfg), mockMesh(t, mn, 1, cfg)
		defer a.Close()
		defer b.Close()
		a.AddPeer(peer.AddrInfo{ID: b.Host().ID()}) // no link yet: dials fail

		time.Sleep(20 * time.Second)
		a.dial.mu.Lock()
		st := *a.dial.peers[b.Host().ID()]
		a.dial.mu.Unlock()
		if st.backoff != cfg.BackoffMax {
			t.Errorf("backoff %v after 20 s of failures, want the cap %v", st.backoff, cfg.BackoffMax)
		}
		// 100+200+400+800 ms, then 1.6 s (+ up to 50 % jitter) each: about
		// 10 attempts in 20 s, far fewer than one per dial check (40).
		if st.attempts < 8 || st.attempts > 20 {
			t.Errorf("%d dial attempts in 20 s, want about 10", st.attempts)
		}

		if _, err := mn.LinkPeers(a.Host().ID(), b.Host().ID()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if a.Host().Network().Connectedness(b.Host().ID()) != network.Connected {
			t.Fatal("did not connect after the link came up")
		}
		a.dial.mu.Lock()
		reset := a.dial.peers[b.Host().ID()].backoff
		a.dial.mu.Unlock()
		if reset != 0 {
			t.Errorf("backoff %v after connecting, want reset to 0", reset)
		}
		// A lost connection is redialed.
		_ = a.Host().Network().ClosePeer(b.Host().ID())
		time.Sleep(2 * time.Second)
		if a.Host().Network().Connectedness(b.Host().ID()) != network.Connected {
			t.Fatal("did not redial a lost connection")
		}
	})
}

// TestMDNSNotifee checks what a LAN discovery hands the dialer: Rhizome
// servers are dialed, peers with other key types are ignored. (mDNS itself
// needs multicast on a real interface, which tests do not use.)
func TestMDNSNotifee(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		defer mn.Close()
		a, b := mockMesh(t, mn, 2, Config{}), mockMesh(t, mn, 3, Config{})
		defer a.Close()
		defer b.Close()
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		mdnsNotifee{a}.HandlePeerFound(peer.AddrInfo{ID: b.Host().ID()})
		// A secp256k1-keyed peer is no Rhizome server.
		_, pub, err := crypto.GenerateSecp256k1Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		mdnsNotifee{a}.HandlePeerFound(peer.AddrInfo{ID: id})
		a.dial.mu.Lock()
		_, wanted := a.dial.peers[id]
		a.dial.mu.Unlock()
		if wanted {
			t.Error("non-Ed25519 peer from mDNS added to the dial set")
		}
		time.Sleep(time.Second)
		if a.Host().Network().Connectedness(b.Host().ID()) != network.Connected {
			t.Fatal("peer found by mDNS was not dialed")
		}
	})
}
