package p2p_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// TestHeadsPageBound: a heads exchange reads at most 64 pages of 256. Of a
// room with 16,484 tips it returns the lowest 16,384, ascending.
func TestHeadsPageBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bound = 64 * p2p.MaxRequestIDs
		nw := p2ptest.New(t, 2, p2ptest.Options{Seed: 17})
		defer nw.Close()
		room := nw.CreateRoom(0)
		n := nw.Nodes[0]
		evs := make([]*dag.Event, bound+100)
		for k := range evs {
			ev, err := dag.NewSigned(n.Key, room, dag.KindMessage, []dag.EventID{room.CreateID()}, int64(1000+k), fmt.Appendf(nil, "tip %d", k))
			if err != nil {
				t.Fatal(err)
			}
			evs[k] = ev
		}
		if _, errs := n.Store.PutAll(evs); slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
			t.Fatal("put tips failed")
		}
		tips, err := n.Store.Tips(room)
		if err != nil || len(tips) != len(evs) {
			t.Fatalf("%d tips, %v", len(tips), err)
		}
		heads, err := nw.Nodes[1].Mesh.Heads(context.Background(), n.PeerID(), room)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(heads, tips[:bound]) {
			t.Fatalf("%d heads, want the lowest %d tips", len(heads), bound)
		}
	})
}

// TestHeadsBadPage: a responder whose next page does not start above the
// cursor (here: the same page again, with more set, forever) is an offense,
// and the exchange ends there.
func TestHeadsBadPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := p2ptest.New(t, 1, p2ptest.Options{Seed: 19})
		defer nw.Close()
		room := nw.CreateRoom(0)
		key := p2ptest.Key(998, 1)
		evil := nw.AddHost(key)
		evilID, _ := dag.ServerIDFromKey(key.Public().(ed25519.PublicKey))
		nw.ACL.Allow(room, evilID)
		page := []dag.EventID{room.CreateID()}
		evil.SetStreamHandler(p2p.SyncProtocol, func(s network.Stream) {
			defer s.Close()
			raw, err := p2p.ReadFrame(bufio.NewReader(s), p2p.MaxRequestSize)
			if err != nil {
				s.Reset()
				return
			}
			if _, err := p2p.UnmarshalSyncRequest(raw); err != nil {
				s.Reset()
				return
			}
			body, err := (&p2p.SyncResponse{Kind: p2p.SyncHeads, Heads: page, More: true}).Marshal()
			if err != nil {
				t.Error(err)
				return
			}
			_ = p2p.WriteFrame(s, body)
		})
		if _, err := nw.MN.ConnectPeers(evil.ID(), nw.Nodes[0].PeerID()); err != nil {
			t.Fatal(err)
		}
		m := nw.Nodes[0].Mesh
		if _, err := m.Heads(context.Background(), evil.ID(), room); !errors.Is(err, p2p.ErrMalformedMessage) {
			t.Fatalf("heads exchange with a repeating page: %v, want a malformed answer", err)
		}
		if got := m.Offenses(evil.ID(), p2p.OffenseMalformed); got == 0 {
			t.Error("no malformed offense for a page below its cursor")
		}
	})
}
