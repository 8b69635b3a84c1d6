package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/mls"
)

const testSuite = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// streamWait bounds how long a test waits for one stream line on one node.
const streamWait = 5 * time.Second

// startTestNode starts a node with a real badger store in dir, a real
// libp2p host on loopback TCP and the API on a loopback port.
func startTestNode(t testing.TB, dir, serverName string, bootstrap ...string) *Node {
	t.Helper()
	n, err := New(LoopbackConfig(dir, serverName, bootstrap...), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.headsInterval = 500 * time.Millisecond
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(t, n) }) // a second Stop is a no-op
	return n
}

func stopNode(t testing.TB, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// apiClient is one device talking to a node's API.
type apiClient struct {
	t      testing.TB
	base   string
	token  string
	user   string
	device string
	sig    mls.SignaturePrivateKey
}

type jsonObj = map[string]any

// call sends a request and returns the status and the decoded JSON body.
func (c *apiClient) call(method, path, contentType string, body []byte) (int, jsonObj) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out jsonObj
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: status %d, body is not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func (c *apiClient) post(path string, v any) (int, jsonObj) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.call("POST", path, "application/json", b)
}

func (c *apiClient) get(path string) (int, jsonObj) {
	c.t.Helper()
	return c.call("GET", path, "", nil)
}

// must returns a check that fails the test unless the status is want, and
// returns the body: must(t, 201)(c.post(...)).
func must(t testing.TB, want int) func(int, jsonObj) jsonObj {
	return func(status int, body jsonObj) jsonObj {
		t.Helper()
		if status != want {
			t.Fatalf("status %d, want %d: %v", status, want, body)
		}
		return body
	}
}

// register creates a user and its first device with a fresh MLS signature
// key.
func register(t testing.TB, n *Node, user, device string) *apiClient {
	t.Helper()
	sig, pub, err := testSuite.GenerateSignatureKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{t: t, base: "http://" + n.APIAddr(), user: user, device: device, sig: sig}
	body := must(t, 201)(c.post("/v1/register", jsonObj{"user": user, "device": device, "signature_key": base64.StdEncoding.EncodeToString(pub)}))
	c.token = body["token"].(string)
	return c
}

func (c *apiClient) deviceURI(n *Node) string { return n.accounts.DeviceURI(c.user, c.device) }
func (c *apiClient) userURI(n *Node) string   { return n.accounts.UserURI(c.user) }

// keyPackage returns a fresh KeyPackage bundle of the device and its
// MLSMessage encoding.
func (c *apiClient) keyPackage(n *Node, lastResort bool) (*mls.KeyPackageBundle, []byte) {
	c.t.Helper()
	kb, err := mls.NewKeyPackage(rand.Reader, testSuite, c.sig, mls.NewBasicCredential([]byte(c.deviceURI(n))), &mls.KeyPackageOptions{LastResort: lastResort, NotBefore: time.Now().Add(-time.Hour)})
	if err != nil {
		c.t.Fatal(err)
	}
	raw, err := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kb.KeyPackage}).Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	return kb, raw
}

// stream is an open GET /v1/stream whose lines arrive on a channel.
type stream struct {
	lines chan clientapi.StreamLine
	body  io.Closer
}

func (c *apiClient) openStream(query string) *stream {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+"/v1/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.t.Fatalf("stream: status %d: %s", resp.StatusCode, b)
	}
	s := &stream{lines: make(chan clientapi.StreamLine, 1024), body: resp.Body}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e clientapi.StreamLine
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == clientapi.LineEvent {
				s.lines <- e
			}
		}
	}()
	c.t.Cleanup(func() { s.body.Close() })
	return s
}

// next returns the next event line, failing after timeout.
func (s *stream) next(t testing.TB, timeout time.Duration) clientapi.StreamLine {
	t.Helper()
	select {
	case e, ok := <-s.lines:
		if !ok {
			t.Fatal("stream closed")
		}
		return e
	case <-time.After(timeout):
		t.Fatalf("no stream event within %v", timeout)
	}
	return clientapi.StreamLine{}
}

// waitFor reads lines until one matches, failing after timeout.
func (s *stream) waitFor(t testing.TB, timeout time.Duration, match func(clientapi.StreamLine) bool) clientapi.StreamLine {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-s.lines:
			if !ok {
				t.Fatal("stream closed")
			}
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("no matching stream event within %v", timeout)
		}
	}
}

// lineEvent decodes and verifies the signed DAG event of an event line,
// and checks that the line's metadata are the event's.
func lineEvent(t testing.TB, l clientapi.StreamLine) *dag.Event {
	t.Helper()
	ev, err := dag.Decode(l.Raw)
	if err != nil {
		t.Fatalf("line %d: raw does not decode: %v", l.Cursor, err)
	}
	if err := ev.Verify(); err != nil {
		t.Fatalf("line %d: raw does not verify: %v", l.Cursor, err)
	}
	if ev.ID().String() != l.Event || ev.RoomID().String() != l.Room || ev.Kind.String() != l.Kind || ev.Origin.String() != l.Origin || ev.Timestamp != l.TS {
		t.Fatalf("line %+v does not describe its event (%v, room %v, %v, origin %v, ts %d)", l, ev.ID(), ev.RoomID(), ev.Kind, ev.Origin, ev.Timestamp)
	}
	return ev
}

// group creates the MLS group of a room for c, with the ratchet tree in
// Welcomes.
func (c *apiClient) group(n *Node, room string) *mls.Group {
	c.t.Helper()
	g, err := mls.CreateGroup(rand.Reader, testSuite, []byte(room), c.sig, mls.NewBasicCredential([]byte(c.deviceURI(n))),
		&mls.CreateOptions{Config: mls.GroupConfig{RatchetTreeInWelcome: true}})
	if err != nil {
		c.t.Fatal(err)
	}
	return g
}

// sendMessage encrypts text in g and submits it in epoch.
func (c *apiClient) sendMessage(g *mls.Group, room, epoch, text string) jsonObj {
	c.t.Helper()
	msg, err := g.Send(rand.Reader, nil, []byte(text))
	if err != nil {
		c.t.Fatal(err)
	}
	raw, err := msg.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	return must(c.t, 201)(c.call("POST", fmt.Sprintf("/v1/rooms/%s/messages?epoch=%s", room, epoch), "application/octet-stream", raw))
}

func str(v any) string { s, _ := v.(string); return s }

func mustRoomID(t testing.TB, s string) dag.RoomID {
	t.Helper()
	id, err := dag.ParseRoomID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func hasPrefix(v any, p string) bool { return strings.HasPrefix(str(v), p) }

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func randReader() io.Reader { return rand.Reader }

func badgerIteratorOptions() badger.IteratorOptions { return badger.DefaultIteratorOptions }
