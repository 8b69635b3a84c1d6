package p2p_test

import (
	"bufio"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

type inviteCall struct {
	from   dag.ServerID
	notice p2p.InviteNotice
}

// inviteNet starts three servers; server 1 takes invite notices with onInvite.
func inviteNet(t *testing.T, onInvite func(ctx context.Context, from dag.ServerID, n p2p.InviteNotice)) *p2ptest.Network {
	return p2ptest.New(t, 3, p2ptest.Options{Seed: 41, Configure: func(i int, cfg *p2p.Config) {
		if i == 1 {
			cfg.OnInvite = onInvite
		}
	}})
}

func inviteStatus(err error) (p2p.InviteStatus, bool) {
	var ie *p2p.InviteError
	if errors.As(err, &ie) {
		return ie.Status, true
	}
	return 0, false
}

// TestInviteNotice: a notice reaches the callback with the notifier's
// identity; while one is in progress a second from the same notifier is
// answered busy (notices are never queued), one from another notifier is
// taken.
func TestInviteNotice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := make(chan inviteCall, 8)
		release := make(chan struct{})
		nw := inviteNet(t, func(ctx context.Context, from dag.ServerID, n p2p.InviteNotice) {
			calls <- inviteCall{from, n}
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
		defer nw.Close()
		room := nw.CreateRoom(0)
		time.Sleep(2 * time.Second) // connections settle (simultaneous dials close one)
		notice := p2p.InviteNotice{Room: room, Invitation: room.CreateID()}
		to := nw.Nodes[1].ID
		ctx := context.Background()
		if err := nw.Nodes[0].Mesh.SendInvite(ctx, to, notice); err != nil {
			t.Fatalf("first notice: %v", err)
		}
		if c := <-calls; c.from != nw.Nodes[0].ID || c.notice != notice {
			t.Fatalf("callback got %+v, want the notice from server 0", c)
		}
		if st, ok := inviteStatus(nw.Nodes[0].Mesh.SendInvite(ctx, to, notice)); !ok || st != p2p.InviteBusy {
			t.Fatalf("second notice while the first runs: status %v (refusal %v), want busy", st, ok)
		}
		if err := nw.Nodes[2].Mesh.SendInvite(ctx, to, notice); err != nil {
			t.Fatalf("notice from another server: %v", err)
		}
		<-calls
		close(release)
		synctest.Wait()
		// Server 2 serves no invite protocol: the notice cannot be sent.
		if err := nw.Nodes[0].Mesh.SendInvite(ctx, nw.Nodes[2].ID, notice); err == nil {
			t.Fatal("notice to a server without the protocol succeeded")
		}
	})
}

// TestInviteRateLimit: a notifier gets its burst of notices taken, then
// rate_limited answers, and the callback is not called for those.
func TestInviteRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		nw := inviteNet(t, func(context.Context, dag.ServerID, p2p.InviteNotice) { calls++ })
		defer nw.Close()
		room := nw.CreateRoom(0)
		time.Sleep(2 * time.Second) // connections settle (simultaneous dials close one)
		notice := p2p.InviteNotice{Room: room, Invitation: room.CreateID()}
		taken, limited := 0, 0
		for range 20 {
			err := nw.Nodes[0].Mesh.SendInvite(context.Background(), nw.Nodes[1].ID, notice)
			synctest.Wait() // the callback has returned before the next notice
			if st, ok := inviteStatus(err); ok && st == p2p.InviteRateLimited {
				limited++
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			taken++
		}
		if taken != 5 || limited != 15 || calls != 5 {
			t.Fatalf("taken %d, rate-limited %d, callbacks %d; want 5, 15, 5", taken, limited, calls)
		}
	})
}

// TestInviteMalformed: bytes that are not a notice get bad_request, an
// offense, and no callback.
func TestInviteMalformed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		nw := inviteNet(t, func(context.Context, dag.ServerID, p2p.InviteNotice) { calls++ })
		defer nw.Close()
		evil := nw.AddHost(p2ptest.Key(99, 0))
		home := nw.Nodes[1]
		if _, err := nw.MN.ConnectPeers(evil.ID(), home.PeerID()); err != nil {
			t.Fatal(err)
		}
		s, err := evil.NewStream(context.Background(), home.PeerID(), p2p.InviteProtocol)
		if err != nil {
			t.Fatal(err)
		}
		if err := p2p.WriteFrame(s, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		body, err := p2p.ReadFrame(bufio.NewReader(s), 1024)
		if err != nil {
			t.Fatal(err)
		}
		ans, err := p2p.UnmarshalInviteAnswer(body)
		if err != nil || ans.Status != p2p.InviteBadRequest {
			t.Fatalf("answer %+v, %v; want bad_request", ans, err)
		}
		synctest.Wait()
		if calls != 0 || home.Mesh.Offenses(evil.ID(), p2p.OffenseMalformed) != 1 {
			t.Fatalf("callbacks %d, offenses %d; want 0, 1", calls, home.Mesh.Offenses(evil.ID(), p2p.OffenseMalformed))
		}
	})
}

// TestInviteStreamBudget: a peer holds at most two invite streams before
// its notices are in; a third is answered busy at once, and the idle ones
// are reset after the read timeout.
func TestInviteStreamBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := inviteNet(t, func(context.Context, dag.ServerID, p2p.InviteNotice) {})
		defer nw.Close()
		evil := nw.AddHost(p2ptest.Key(98, 0))
		home := nw.Nodes[1]
		if _, err := nw.MN.ConnectPeers(evil.ID(), home.PeerID()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		// Each stream announces a 10-byte notice and sends none of it (the
		// write also makes the lazily negotiated stream reach the handler).
		open := func() network.Stream {
			s, err := evil.NewStream(context.Background(), home.PeerID(), p2p.InviteProtocol)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write([]byte{10}); err != nil {
				t.Fatal(err)
			}
			return s
		}
		for range 2 {
			defer open().Close()
		}
		synctest.Wait()
		s := open()
		body, err := p2p.ReadFrame(bufio.NewReader(s), 1024)
		if err != nil {
			t.Fatal(err)
		}
		if ans, err := p2p.UnmarshalInviteAnswer(body); err != nil || ans.Status != p2p.InviteBusy {
			t.Fatalf("third idle stream: %+v, %v; want busy", ans, err)
		}
		time.Sleep(6 * time.Second) // past the read timeout
		if n := home.Mesh.StreamRefusals()[p2p.RefuseIdle]; n != 2 {
			t.Fatalf("idle invite streams reset: %d, want 2", n)
		}
	})
}
