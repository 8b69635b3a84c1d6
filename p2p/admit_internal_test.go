package p2p

import (
	"crypto/ed25519"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rhizome-chat/rhizome/dag"
)

func mockHost(t *testing.T, mn mocknet.Mocknet, key ed25519.PrivateKey, addr string) (host.Host, dag.ServerID) {
	t.Helper()
	priv, err := PrivKey(key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := mn.AddPeer(priv, ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	sid, err := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return h, sid
}

// TestPullRefusesNonParticipant: a pull of a room from a peer that does not
// participate in it sends that peer nothing (not even a heads request) and
// counts the refusal; once the peer participates, the same pull asks it.
func TestPullRefusesNonParticipant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		defer mn.Close()
		keyA, keyB := ed25519Key(make([]byte, 32)), ed25519Key(append(make([]byte, 31), 1))
		a, sidA := mockHost(t, mn, keyA, "/ip6/100::1/tcp/4242")
		b, sidB := mockHost(t, mn, keyB, "/ip6/100::2/tcp/4242")
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if _, err := mn.ConnectPeers(a.ID(), b.ID()); err != nil {
			t.Fatal(err)
		}
		var asked atomic.Int32
		b.SetStreamHandler(SyncProtocol, func(s network.Stream) { asked.Add(1); _ = s.Reset() })

		create, err := dag.NewSigned(keyA, dag.RoomID{}, dag.KindCreate, nil, 1, []byte("room"))
		if err != nil {
			t.Fatal(err)
		}
		room := create.RoomID()
		acl := NewMemACL()
		acl.Allow(room, sidA)
		st := dag.NewMemStore(dag.Limits{})
		if _, err := st.Put(create); err != nil {
			t.Fatal(err)
		}
		m, err := New(Config{Host: a, Store: st, ACL: acl})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.JoinRoom(room); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		m.pull(room, b.ID(), true, nil)
		synctest.Wait()
		if n := asked.Load(); n != 0 {
			t.Fatalf("the non-participant got %d sync requests", n)
		}
		if got := m.Rejections()[RejectNotParticipant]; got != 1 {
			t.Errorf("%d not-participant refusals counted, want 1", got)
		}

		acl.Allow(room, sidB)
		m.pull(room, b.ID(), true, nil)
		synctest.Wait()
		if asked.Load() == 0 {
			t.Error("a participant was not asked")
		}
	})
}
