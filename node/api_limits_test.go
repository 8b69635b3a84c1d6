package node_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// counterValue reads one counter of a vector.
func counterValue(t *testing.T, v *prometheus.CounterVec, label string) float64 {
	t.Helper()
	var m dto.Metric
	if err := v.WithLabelValues(label).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// startLimitedNode starts a loopback test node whose configuration edit
// changes.
func startLimitedNode(t *testing.T, edit func(c *node.Config)) *node.Node {
	t.Helper()
	return nodetest.Start(t, nodetest.Options{Config: edit})
}

// callRaw sends a request and returns the response with its body read.
func callRaw(c *nodetest.Client, method, path, contentType string, body []byte) (*http.Response, string) {
	c.T.Helper()
	resp, raw := c.CallRaw(method, path, contentType, body)
	return resp, string(raw)
}

// wantLimited asserts a 429 rate_limited answer of bucket kind with a
// Retry-After in whole seconds.
func wantLimited(t *testing.T, resp *http.Response, body, kind string) {
	t.Helper()
	if resp.StatusCode != 429 || !strings.Contains(body, `"rate_limited"`) || !strings.Contains(body, "this "+kind) {
		t.Fatalf("want 429 rate_limited for %s, got %d %s", kind, resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" || strings.Trim(ra, "0123456789") != "" || ra == "0" {
		t.Fatalf("Retry-After = %q, want whole seconds", ra)
	}
}

// TestRateLimits hits each bucket kind: device, user, room and the
// registering address, each answered 429 with Retry-After and counted.
func TestRateLimits(t *testing.T) {
	slow := func(burst int) node.Rate { return node.Rate{PerMinute: 1, Burst: burst} }
	t.Run("device", func(t *testing.T) {
		n := startLimitedNode(t, func(c *node.Config) { c.API.Rate.Device = slow(3) })
		alice := nodetest.Register(t, n, "alice", "phone")
		for range 3 {
			nodetest.Must(t, 200)(alice.Get("/v1/whoami"))
		}
		resp, body := callRaw(alice, "GET", "/v1/whoami", "", nil)
		wantLimited(t, resp, body, "device")
		if ra := resp.Header.Get("Retry-After"); ra != "60" {
			t.Fatalf("Retry-After %s, want 60 (1 per minute)", ra)
		}
		// Another device has its own bucket.
		bob := nodetest.Register(t, n, "bob", "phone")
		nodetest.Must(t, 200)(bob.Get("/v1/whoami"))
		if got := counterValue(t, n.Metrics().APIRateLimited, "device"); got != 1 {
			t.Fatalf("rate-limited metric = %v", got)
		}
	})
	t.Run("user", func(t *testing.T) {
		n := startLimitedNode(t, func(c *node.Config) { c.API.Rate.User = slow(4) })
		alice := nodetest.Register(t, n, "alice", "phone")
		laptop := nodetest.Must(t, 201)(alice.Post("/v1/devices", nodetest.JSON{"device": "laptop", "signature_key": testSigKey(t)}))
		l := &nodetest.Client{T: t, Base: alice.Base, Token: nodetest.Str(laptop["token"])}
		nodetest.Must(t, 200)(alice.Get("/v1/whoami"))
		nodetest.Must(t, 200)(l.Get("/v1/whoami"))
		nodetest.Must(t, 200)(l.Get("/v1/whoami"))
		resp, body := callRaw(alice, "GET", "/v1/whoami", "", nil) // the user's 5th request
		wantLimited(t, resp, body, "user")
		nodetest.Must(t, 200)(nodetest.Register(t, n, "bob", "phone").Get("/v1/whoami"))
	})
	t.Run("room", func(t *testing.T) {
		n := startLimitedNode(t, func(c *node.Config) { c.API.Rate.Room = slow(2) })
		alice := nodetest.Register(t, n, "alice", "phone")
		created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"name": "Club"}))
		room, epoch := nodetest.Str(created["room"]), nodetest.Str(created["event"])
		g := alice.Group(room)
		alice.SendMessage(g, room, epoch, "one")
		alice.SendMessage(g, room, epoch, "two")
		msg, _ := g.Send(randReader(), nil, []byte("three"))
		raw, _ := msg.Marshal()
		resp, body := callRaw(alice, "POST", "/v1/rooms/"+room+"/messages?epoch="+epoch, "application/octet-stream", raw)
		wantLimited(t, resp, body, "room")
		// Another room has its own bucket; reading is not a submission.
		other := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"name": "Other"}))
		alice.SendMessage(alice.Group(nodetest.Str(other["room"])), nodetest.Str(other["room"]), nodetest.Str(other["event"]), "hi")
		nodetest.Must(t, 200)(alice.Get("/v1/rooms/" + room))
	})
	t.Run("register_ip", func(t *testing.T) {
		n := startLimitedNode(t, func(c *node.Config) { c.API.Rate.RegisterIP = slow(2) })
		nodetest.Register(t, n, "alice", "phone")
		nodetest.Register(t, n, "bob", "phone")
		anon := &nodetest.Client{T: t, Base: "http://" + n.APIAddr()}
		resp, body := callRaw(anon, "POST", "/v1/register", "application/json", []byte(`{"user":"carol","device":"x","signature_key":"`+testSigKey(t)+`"}`))
		wantLimited(t, resp, body, "register_ip")
		if exists, _ := n.Accounts().Exists("carol"); exists {
			t.Fatal("a throttled registration created the user")
		}
	})
}

// TestSlowBodyCut: a request body that trickles is cut by the body
// deadline, while an idle event stream outlives both the body and the write
// timeouts.
func TestSlowBodyCut(t *testing.T) {
	n := startLimitedNode(t, func(c *node.Config) {
		c.API.Limits.BodyTimeoutMS = 300
		c.API.Limits.WriteTimeoutMS = 300
	})
	alice := nodetest.Register(t, n, "alice", "phone")
	s := alice.OpenStream("?since=0")

	c, err := net.Dial("tcp", n.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user\":")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	if took := time.Since(start); resp.StatusCode != 400 || took > 2*time.Second {
		t.Fatalf("slow body: status %d after %v, want 400 after about 300 ms", resp.StatusCode, took)
	}

	time.Sleep(time.Second) // the stream idles past both timeouts
	created := nodetest.Must(t, 201)(alice.Post("/v1/rooms", nodetest.JSON{"name": "Club"}))
	if e := s.Next(t, 5*time.Second); e.Event != nodetest.Str(created["event"]) {
		t.Fatalf("stream after idling: %+v", e)
	}
}

// TestAPIConfigValidation: the API's keys are checked with a message that
// names the key.
func TestAPIConfigValidation(t *testing.T) {
	for in, want := range map[string]string{
		`{"version":1,"api":{"registration":"invite"}}`:                                            `"api.registration"`,
		`{"version":1,"api":{"limits":{"max_conns":0}}}`:                                           `"api.limits.max_conns"`,
		`{"version":1,"api":{"limits":{"body_timeout_ms":-5}}}`:                                    `"api.limits.body_timeout_ms"`,
		`{"version":1,"api":{"limits":{"max_header_bytes":100}}}`:                                  `"api.limits.max_header_bytes"`,
		`{"version":1,"api":{"rate":{"device":{"per_minute":5,"burst":0}}}}`:                       `"api.rate.device"`,
		`{"version":1,"api":{"rate":{"room":{"per_minute":-1,"burst":1}}}}`:                        `"api.rate.room"`,
		`{"version":1,"api":{"rate":{"users":{"per_minute":1,"burst":1}}}}`:                        `unknown key "api.rate.users"`,
		`{"version":1,"api":{"registration":"closed","rate":{"user":{"per_minute":0,"burst":0}}}}`: "",
	} {
		_, err := node.ParseConfig([]byte(in))
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
