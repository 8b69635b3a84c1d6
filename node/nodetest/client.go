package nodetest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node"
)

// Suite is the MLS cipher suite of the kit's devices.
const Suite = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// StreamWait bounds how long a test waits for one stream line on one node.
const StreamWait = 5 * time.Second

// JSON is a decoded JSON object.
type JSON = map[string]any

// Client is one device talking to a node's client API.
type Client struct {
	T      testing.TB
	Base   string // "http://" + the node's API address
	Token  string // the device's bearer token ("" for none)
	User   string
	Device string
	Sig    mls.SignaturePrivateKey // the device's MLS signature key
	// UserURI and DeviceURI are the MIMI URIs registration answered.
	UserURI, DeviceURI string
}

// Call sends a request and returns the status and the decoded JSON body.
func (c *Client) Call(method, path, contentType string, body []byte) (int, JSON) {
	c.T.Helper()
	resp, raw := c.CallRaw(method, path, contentType, body)
	var out JSON
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.T.Fatalf("%s %s: status %d, body is not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// CallRaw sends a request with the device's token and returns the
// response (its body closed) and the body's bytes.
func (c *Client) CallRaw(method, path, contentType string, body []byte) (*http.Response, []byte) {
	c.T.Helper()
	req, err := http.NewRequest(method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		c.T.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// Post sends v as JSON.
func (c *Client) Post(path string, v any) (int, JSON) {
	c.T.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.T.Fatal(err)
	}
	return c.Call("POST", path, "application/json", b)
}

// Get sends a GET.
func (c *Client) Get(path string) (int, JSON) {
	c.T.Helper()
	return c.Call("GET", path, "", nil)
}

// Must returns a check that fails the test unless the status is want, and
// returns the body: Must(t, 201)(c.Post(...)).
func Must(t testing.TB, want int) func(int, JSON) JSON {
	return func(status int, body JSON) JSON {
		t.Helper()
		if status != want {
			t.Fatalf("status %d, want %d: %v", status, want, body)
		}
		return body
	}
}

// Register creates a user and its first device on n with a fresh MLS
// signature key.
func Register(t testing.TB, n *node.Node, user, device string) *Client {
	t.Helper()
	sig, pub, err := Suite.GenerateSignatureKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{T: t, Base: "http://" + n.APIAddr(), User: user, Device: device, Sig: sig}
	body := Must(t, 201)(c.Post("/v1/register", JSON{"user": user, "device": device, "signature_key": base64.StdEncoding.EncodeToString(pub)}))
	c.Token, c.UserURI, c.DeviceURI = Str(body["token"]), Str(body["user_uri"]), Str(body["device_uri"])
	return c
}

// KeyPackage returns a fresh KeyPackage bundle of the device and its
// MLSMessage encoding.
func (c *Client) KeyPackage(lastResort bool) (*mls.KeyPackageBundle, []byte) {
	c.T.Helper()
	kb, err := mls.NewKeyPackage(rand.Reader, Suite, c.Sig, mls.NewBasicCredential([]byte(c.DeviceURI)), &mls.KeyPackageOptions{LastResort: lastResort, NotBefore: time.Now().Add(-time.Hour)})
	if err != nil {
		c.T.Fatal(err)
	}
	raw, err := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kb.KeyPackage}).Marshal()
	if err != nil {
		c.T.Fatal(err)
	}
	return kb, raw
}

// Group creates the MLS group of a room for c, with the ratchet tree in
// Welcomes.
func (c *Client) Group(room string) *mls.Group {
	c.T.Helper()
	g, err := mls.CreateGroup(rand.Reader, Suite, []byte(room), c.Sig, mls.NewBasicCredential([]byte(c.DeviceURI)),
		&mls.CreateOptions{Config: mls.GroupConfig{RatchetTreeInWelcome: true}})
	if err != nil {
		c.T.Fatal(err)
	}
	return g
}

// SendMessage encrypts text in g and submits it in epoch.
func (c *Client) SendMessage(g *mls.Group, room, epoch, text string) JSON {
	c.T.Helper()
	msg, err := g.Send(rand.Reader, nil, []byte(text))
	if err != nil {
		c.T.Fatal(err)
	}
	raw, err := msg.Marshal()
	if err != nil {
		c.T.Fatal(err)
	}
	return Must(c.T, 201)(c.Call("POST", fmt.Sprintf("/v1/rooms/%s/messages?epoch=%s", room, epoch), "application/octet-stream", raw))
}

// Stream is an open GET /v1/stream whose event lines arrive on a channel.
type Stream struct {
	lines chan clientapi.StreamLine
	body  io.Closer
}

// OpenStream opens the device's event stream with query ("?since=3&room=...").
func (c *Client) OpenStream(query string) *Stream {
	c.T.Helper()
	req, _ := http.NewRequest("GET", c.Base+"/v1/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.T.Fatalf("stream: status %d: %s", resp.StatusCode, b)
	}
	s := &Stream{lines: make(chan clientapi.StreamLine, 1024), body: resp.Body}
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
	c.T.Cleanup(func() { s.body.Close() })
	return s
}

// Next returns the next event line, failing after timeout.
func (s *Stream) Next(t testing.TB, timeout time.Duration) clientapi.StreamLine {
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

// WaitFor reads lines until one matches, failing after timeout.
func (s *Stream) WaitFor(t testing.TB, timeout time.Duration, match func(clientapi.StreamLine) bool) clientapi.StreamLine {
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

// LineEvent decodes and verifies the signed DAG event of an event line,
// and checks that the line's metadata are the event's.
func LineEvent(t testing.TB, l clientapi.StreamLine) *dag.Event {
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

// Str returns v if it is a string, else "".
func Str(v any) string { s, _ := v.(string); return s }

// RoomID parses a room ID, failing the test if it is not one.
func RoomID(t testing.TB, s string) dag.RoomID {
	t.Helper()
	id, err := dag.ParseRoomID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// EventID parses an event ID, failing the test if it is not one.
func EventID(t testing.TB, s string) dag.EventID {
	t.Helper()
	id, err := dag.ParseEventID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Close ends the stream.
func (s *Stream) Close() error { return s.body.Close() }
