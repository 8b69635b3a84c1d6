package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/p2p"
)

// startNodeWith starts a test node whose configuration change adjusts
// first (the registration rate of one address is lifted: the tests
// register many users from loopback).
func startNodeWith(t *testing.T, dir, serverName string, change func(*node.Config), bootstrap ...string) *node.Node {
	t.Helper()
	return startNodeOn(t, nil, dir, serverName, change, bootstrap...)
}

// startNodeOn is startNodeWith with the node's libp2p host on mocknet net
// (nil: loopback TCP).
func startNodeOn(t *testing.T, net *nodetest.Net, dir, serverName string, change func(*node.Config), bootstrap ...string) *node.Node {
	t.Helper()
	return nodetest.Start(t, nodetest.Options{Net: net, Dir: dir, Name: serverName, Bootstrap: bootstrap, Config: func(c *node.Config) {
		c.API.Rate.RegisterIP = node.Rate{}
		if change != nil {
			change(c)
		}
	}})
}

// counter returns the value of a counter of reg with the given labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// uploadKPs uploads n one-time KeyPackages and a last-resort one for c and
// returns the last-resort one's encoding.
func uploadKPs(c *nodetest.Client, t *testing.T, n *node.Node, count int) string {
	t.Helper()
	enc := base64.StdEncoding.EncodeToString
	var kps []string
	for range count {
		_, raw := c.KeyPackage(false)
		kps = append(kps, enc(raw))
	}
	_, last := c.KeyPackage(true)
	kps = append(kps, enc(last))
	nodetest.Must(t, 200)(c.Post("/v1/keypackages", nodetest.JSON{"key_packages": kps}))
	return enc(last)
}

// claimedKP returns the single client's KeyPackage of a claim answer.
func claimedKP(t *testing.T, body nodetest.JSON) string {
	t.Helper()
	clients, _ := body["clients"].([]any)
	if len(clients) != 1 {
		t.Fatalf("claim answer %v: want one client", body)
	}
	return nodetest.Str(clients[0].(map[string]any)["key_package"])
}

// TestKeyPackageDrain: a local stranger and a stranger server claim bob's
// KeyPackages over and over. No one-time KeyPackage is handed out (only the
// last-resort one), the per-requester limits answer 429 locally and
// rate_limited over p2p, a server claiming for a user of a domain it does
// not serve is a stranger whatever user it names (last-resort only, even
// for a user the target allowed), and every claim is counted by outcome.
func TestKeyPackageDrain(t *testing.T) {
	net := nodetest.NewNet(t)
	a := startNodeOn(t, net, t.TempDir(), "a.test", nil)
	b := startNodeOn(t, net, t.TempDir(), "b.test", nil, a.PeerAddrs()[0])
	bob := nodetest.Register(t, b, "bob", "phone")
	last := uploadKPs(bob, t, b, 10)
	bobURI := "mimi://b.test/u/bob"

	// A local stranger: last resort only, then 429 with Retry-After.
	mallory := nodetest.Register(t, b, "mallory", "phone")
	lastResort, limited := 0, 0
	for range 30 {
		status, body := mallory.Post("/v1/keypackages/claim", nodetest.JSON{"user": bobURI})
		switch {
		case status == 200 && claimedKP(t, body) == last:
			lastResort++
		case status == 429 && body["error"] == "rate_limited":
			limited++
		default:
			t.Fatalf("stranger's claim: %d %v", status, body)
		}
	}
	if lastResort != accounts.ClaimUserRate.Burst || limited != 30-accounts.ClaimUserRate.Burst {
		t.Fatalf("local stranger: %d last-resort, %d limited; want %d and %d", lastResort, limited, accounts.ClaimUserRate.Burst, 30-accounts.ClaimUserRate.Burst)
	}

	// A stranger server: eve on a puts b in a room of hers (b joins it by
	// the invite notice, so a is a known server for a.test), then claims.
	eve := nodetest.Register(t, a, "eve", "phone")
	room := nodetest.Str(nodetest.Must(t, 201)(eve.Post("/v1/rooms", nodetest.JSON{"preset": "private-group",
		"servers": []nodetest.JSON{{"server_id": b.ServerID().String(), "domain": "b.test"}}}))["room"])
	nodetest.Eventually(t, 10*time.Second, "b joins eve's room", func() string {
		if st, _ := b.Rooms().State(nodetest.RoomID(t, room)); st == nil {
			return "not joined"
		}
		return ""
	})
	remote, remoteLimited := 0, 0
	for range 25 {
		status, body := eve.Post("/v1/keypackages/claim", nodetest.JSON{"user": bobURI, "room": room})
		switch {
		case status == 200 && claimedKP(t, body) == last:
			remote++
		case status == 429:
			remoteLimited++
		default:
			t.Fatalf("remote stranger's claim: %d %v", status, body)
		}
	}
	if remote == 0 || remoteLimited == 0 {
		t.Fatalf("remote stranger: %d last-resort, %d limited; want both", remote, remoteLimited)
	}

	// A server that no room lists claims, as a user of a.test whom trent
	// allowed and as a user of a made-up domain: it is not trusted to
	// speak for either, so trent's one-time KeyPackages stay.
	trent := nodetest.Register(t, b, "trent", "phone")
	trentLast := uploadKPs(trent, t, b, 2)
	nodetest.Must(t, 200)(trent.Post("/v1/consent", nodetest.JSON{"user": "mimi://a.test/u/eve"}))
	h, err := net.Host(newServerKey(t))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	spy, err := p2p.New(p2p.Config{Host: h, Store: dag.NewMemStore(dag.Limits{}), ACL: p2p.NewMemACL()})
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	bInfo := peer.AddrInfo{ID: b.Mesh().Host().ID(), Addrs: b.Mesh().Host().Addrs()}
	if err := h.Connect(context.Background(), bInfo); err != nil {
		t.Fatal(err)
	}
	for _, requester := range []string{"mimi://a.test/u/eve", "mimi://evil.test/u/x"} {
		km, err := spy.FetchKeyPackages(context.Background(), bInfo.ID, p2p.KeyPackageRequest{RequestingUser: requester, TargetUser: "mimi://b.test/u/trent"})
		if err != nil || len(km.Clients) != 1 || base64.StdEncoding.EncodeToString(km.Clients[0].KeyPackage) != trentLast {
			t.Fatalf("claim by an unlisted server as %s: %+v, %v; want trent's last-resort KeyPackage", requester, km, err)
		}
	}
	if n, _, err := b.Accounts().KeyPackageCount("trent", "phone"); err != nil || n != 2 {
		t.Fatalf("trent's one-time KeyPackages after the spoofed claims: %d (%v), want 2", n, err)
	}

	if n, _, err := b.Accounts().KeyPackageCount("bob", "phone"); err != nil || n != 10 {
		t.Fatalf("bob's one-time KeyPackages after the drain: %d (%v), want all 10", n, err)
	}
	reg := b.Metrics().Registry
	got := map[string]float64{}
	for _, o := range []string{accounts.ClaimOneTime, accounts.ClaimLastResort, accounts.ClaimRefused} {
		got[o] = counter(t, reg, "rhizome_keypackage_claims_total", map[string]string{"outcome": o})
	}
	// Refused on b: the local stranger's and the remote stranger's over
	// bob's limit (the rest of those a refused itself); the spy's two got
	// last-resort KeyPackages.
	if got[accounts.ClaimOneTime] != 0 || got[accounts.ClaimLastResort] != float64(lastResort+remote+2) || got[accounts.ClaimRefused] <= float64(limited) {
		t.Fatalf("claims counted %v; want 0 one-time, %d last-resort, more than %d refused", got, lastResort+remote+2, limited)
	}
	t.Logf("drain: local stranger %d last-resort + %d limited; remote stranger %d last-resort + %d limited; metrics %v", lastResort, limited, remote, remoteLimited, got)
}

// TestClaimConsent: a user who allows another gets one-time KeyPackages
// claimed by them; withdrawn, last resort again; a shared room counts as
// consent too.
func TestClaimConsent(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "a.test", nil)
	bob := nodetest.Register(t, n, "bob", "phone")
	last := uploadKPs(bob, t, n, 3)
	carol := nodetest.Register(t, n, "carol", "phone")
	bobURI := "mimi://a.test/u/bob"
	claim := func(c *nodetest.Client) string {
		return claimedKP(t, nodetest.Must(t, 200)(c.Post("/v1/keypackages/claim", nodetest.JSON{"user": bobURI})))
	}

	if claim(carol) != last {
		t.Fatal("a stranger got a one-time KeyPackage")
	}
	list := nodetest.Must(t, 200)(bob.Post("/v1/consent", nodetest.JSON{"user": "mimi://a.test/u/carol"}))
	if l, _ := list["allowed"].([]any); len(l) != 1 || l[0] != "mimi://a.test/u/carol" {
		t.Fatalf("consent list = %v", list)
	}
	if claim(carol) == last {
		t.Fatal("an allowed user got the last-resort KeyPackage")
	}
	nodetest.Must(t, 200)(bob.Call("DELETE", "/v1/consent?user=mimi://a.test/u/carol", "", nil))
	if claim(carol) != last {
		t.Fatal("consent withdrawn, yet a one-time KeyPackage")
	}
	nodetest.Must(t, 404)(bob.Call("DELETE", "/v1/consent?user=mimi://a.test/u/carol", "", nil))
	nodetest.Must(t, 400)(bob.Post("/v1/consent", nodetest.JSON{"user": "carol"}))

	// A shared room: dave creates one with bob in it.
	dave := nodetest.Register(t, n, "dave", "phone")
	created := nodetest.Must(t, 201)(dave.Post("/v1/rooms", nodetest.JSON{"preset": "private-group"}))
	room, createID := nodetest.Str(created["room"]), nodetest.Str(created["event"])
	if claim(dave) != last {
		t.Fatal("no shared room yet, yet a one-time KeyPackage")
	}
	_, kp := bob.KeyPackage(false)
	_, _, body := addUserCommit(dave, t, n, room, createID, kp, "mimi://a.test/u/bob")
	nodetest.Must(t, 201)(dave.Post("/v1/rooms/"+room+"/commits", body))
	if claim(dave) == last {
		t.Fatal("a room shared with bob, yet the last-resort KeyPackage")
	}
	if got := counter(t, n.Metrics().Registry, "rhizome_keypackage_claims_total", map[string]string{"outcome": accounts.ClaimOneTime}); got != 2 {
		t.Fatalf("one-time claims counted: %v, want 2", got)
	}
}

func newServerKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
