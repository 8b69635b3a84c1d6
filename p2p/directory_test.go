package p2p_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

const (
	bob   = "mimi://b.example/u/bob"
	alice = "mimi://a.example/u/alice"
)

// directoryNet starts two servers; server 1 is bob's home server with the
// given directory.
func directoryNet(t *testing.T, dir *p2p.MemKeyPackages, rate p2p.Rate) *p2ptest.Network {
	return p2ptest.New(t, 2, p2ptest.Options{Seed: 21, Latency: 2 * time.Millisecond, Configure: func(i int, cfg *p2p.Config) {
		if i == 1 {
			cfg.KeyPackages = dir
			cfg.DirectoryRate = rate
		}
	}})
}

func TestKeyPackageDirectory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := p2p.NewMemKeyPackages()
		for k := range 2 {
			dir.Add(bob, "c1", 1, fmt.Appendf(nil, "c1-kp%d", k))
		}
		dir.SetLastResort(bob, "c1", 1, []byte("c1-last"))
		dir.Add(bob, "c2", 1, []byte("c2-kp0"))
		dir.Add(bob, "c3", 2, []byte("c3-suite2"))
		dir.Consent = func(q p2p.KeyPackageQuery) p2p.UserCode {
			if q.RequestingUser == "mimi://x.example/u/blocked" {
				return p2p.UserNoConsent
			}
			return p2p.UserSuccess
		}
		nw := directoryNet(t, dir, p2p.Rate{PerSecond: 100, Burst: 100})
		defer nw.Close()
		home := nw.Nodes[1].PeerID()
		fetch := func(req p2p.KeyPackageRequest) p2p.KeyMaterial {
			t.Helper()
			km, err := nw.Nodes[0].Mesh.FetchKeyPackages(context.Background(), home, req)
			if err != nil {
				t.Fatal(err)
			}
			return km
		}
		type client struct {
			status p2p.ClientCode
			kp     string
		}
		summary := func(km p2p.KeyMaterial) map[string]client {
			out := map[string]client{}
			for _, c := range km.Clients {
				out[c.ClientURI] = client{c.Status, string(c.KeyPackage)}
			}
			return out
		}
		req := p2p.KeyPackageRequest{RequestingUser: alice, TargetUser: bob, CipherSuites: []uint16{1}}
		steps := []struct {
			name string
			req  p2p.KeyPackageRequest
			user p2p.UserCode
			want map[string]client
		}{
			{"first: one-time for every suite-1 client", req, p2p.UserPartialSuccess, map[string]client{
				"c1": {p2p.ClientSuccess, "c1-kp0"}, "c2": {p2p.ClientSuccess, "c2-kp0"}, "c3": {p2p.ClientNothingCompatible, ""}}},
			{"second: c2 exhausted", req, p2p.UserPartialSuccess, map[string]client{
				"c1": {p2p.ClientSuccess, "c1-kp1"}, "c2": {p2p.ClientExhausted, ""}, "c3": {p2p.ClientNothingCompatible, ""}}},
			{"third: c1 falls back to last resort", req, p2p.UserPartialSuccess, map[string]client{
				"c1": {p2p.ClientSuccess, "c1-last"}, "c2": {p2p.ClientExhausted, ""}, "c3": {p2p.ClientNothingCompatible, ""}}},
			{"last resort is handed out again", req, p2p.UserPartialSuccess, map[string]client{
				"c1": {p2p.ClientSuccess, "c1-last"}, "c2": {p2p.ClientExhausted, ""}, "c3": {p2p.ClientNothingCompatible, ""}}},
			{"suite 2 only", p2p.KeyPackageRequest{RequestingUser: alice, TargetUser: bob, CipherSuites: []uint16{2}}, p2p.UserPartialSuccess, map[string]client{
				"c1": {p2p.ClientNothingCompatible, ""}, "c2": {p2p.ClientExhausted, ""}, "c3": {p2p.ClientSuccess, "c3-suite2"}}},
			{"unknown user", p2p.KeyPackageRequest{RequestingUser: alice, TargetUser: "mimi://b.example/u/nobody"}, p2p.UserUnknown, map[string]client{}},
			{"no consent", p2p.KeyPackageRequest{RequestingUser: "mimi://x.example/u/blocked", TargetUser: bob}, p2p.UserNoConsent, map[string]client{}},
			{"incompatible protocol", p2p.KeyPackageRequest{Protocol: 2, RequestingUser: alice, TargetUser: bob}, p2p.UserIncompatibleProtocol, map[string]client{}},
		}
		for _, st := range steps {
			km := fetch(st.req)
			if km.UserStatus != st.user {
				t.Errorf("%s: user status %v, want %v", st.name, km.UserStatus, st.user)
			}
			got := summary(km)
			if fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Errorf("%s:\n got %v\nwant %v", st.name, got, st.want)
			}
		}
		nw.Close()
	})
}

// TestKeyPackageHandedOutOnce races many fetches against a directory with
// fewer one-time KeyPackages than requests: every one-time KeyPackage is
// handed out exactly once and the rest of the answers carry the last-resort
// KeyPackage.
func TestKeyPackageHandedOutOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneTime, fetches = 10, 25
		dir := p2p.NewMemKeyPackages()
		for k := range oneTime {
			dir.Add(bob, "phone", 1, fmt.Appendf(nil, "kp%d", k))
		}
		dir.SetLastResort(bob, "phone", 1, []byte("last"))
		nw := directoryNet(t, dir, p2p.Rate{PerSecond: 100, Burst: 100})
		defer nw.Close()
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range fetches {
			wg.Go(func() {
				km, err := nw.Nodes[0].Mesh.FetchKeyPackages(context.Background(), nw.Nodes[1].PeerID(),
					p2p.KeyPackageRequest{RequestingUser: alice, TargetUser: bob})
				if err != nil {
					t.Error(err)
					return
				}
				if km.UserStatus != p2p.UserSuccess || len(km.Clients) != 1 {
					t.Errorf("answer %+v", km)
					return
				}
				mu.Lock()
				seen[string(km.Clients[0].KeyPackage)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		for k := range oneTime {
			if n := seen[fmt.Sprintf("kp%d", k)]; n != 1 {
				t.Errorf("one-time KeyPackage kp%d handed out %d times", k, n)
			}
		}
		if seen["last"] != fetches-oneTime {
			t.Errorf("last resort handed out %d times, want %d", seen["last"], fetches-oneTime)
		}
		if left := dir.Remaining(bob, "phone"); left != 0 {
			t.Errorf("%d one-time KeyPackages left", left)
		}
		nw.Close()
	})
}

func TestKeyPackageRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := p2p.NewMemKeyPackages()
		dir.SetLastResort(bob, "phone", 1, []byte("last"))
		nw := directoryNet(t, dir, p2p.Rate{PerSecond: 1, Burst: 3})
		defer nw.Close()
		req := p2p.KeyPackageRequest{RequestingUser: alice, TargetUser: bob}
		for i := range 4 {
			_, err := nw.Nodes[0].Mesh.FetchKeyPackages(context.Background(), nw.Nodes[1].PeerID(), req)
			var de *p2p.DirectoryError
			switch {
			case i < 3 && err != nil:
				t.Fatalf("request %d within the burst: %v", i, err)
			case i == 3 && !(errors.As(err, &de) && de.Status == p2p.DirectoryRateLimited):
				t.Fatalf("request over the burst: got %v, want rate_limited", err)
			}
		}
		time.Sleep(2 * time.Second) // the bucket refills
		if _, err := nw.Nodes[0].Mesh.FetchKeyPackages(context.Background(), nw.Nodes[1].PeerID(), req); err != nil {
			t.Fatalf("after refill: %v", err)
		}
		nw.Close()
	})
}
