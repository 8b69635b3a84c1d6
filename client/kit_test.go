package client

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// startNode starts a real node with the node test kit (nodetest): badger
// in dir, libp2p on loopback TCP, the API on a loopback port; the test's
// cleanup stops it.
func startNode(t *testing.T, dir, name string, bootstrap ...string) *node.Node {
	t.Helper()
	return nodetest.Start(t, nodetest.Options{Dir: dir, Name: name, Bootstrap: bootstrap})
}

func apiURL(n *node.Node) string { return "http://" + n.APIAddr() }

// device is a test client with a running Sync loop collecting deliveries.
type device struct {
	t      *testing.T
	c      *Client
	dir    string
	mu     sync.Mutex
	got    []Delivery
	cancel context.CancelFunc
	done   chan error
}

// newDevice opens a client in a fresh dir and registers it on n.
func newDevice(t *testing.T, n *node.Node, user, dev string) *device {
	t.Helper()
	d := openDevice(t, t.TempDir())
	if _, err := d.c.Register(context.Background(), apiURL(n), user, dev); err != nil {
		t.Fatalf("register %s/%s: %v", user, dev, err)
	}
	return d
}

// threeOnOneNode starts a node with devices alice, bob and carol (each a
// "phone", syncing), and a room that alice creates with preset and name.
func threeOnOneNode(t *testing.T, preset, name string) (alice, bob, carol *device, room string) {
	t.Helper()
	a := startNode(t, t.TempDir(), "a.test")
	alice = newDevice(t, a, "alice", "phone")
	bob = newDevice(t, a, "bob", "phone")
	carol = newDevice(t, a, "carol", "phone")
	for _, d := range []*device{alice, bob, carol} {
		d.start()
	}
	ri, err := alice.c.CreateRoom(context.Background(), preset, name)
	if err != nil {
		t.Fatal(err)
	}
	return alice, bob, carol, string(ri.Room)
}

func openDevice(t *testing.T, dir string) *device {
	t.Helper()
	c, err := Open(dir, Options{WaitTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := &device{t: t, c: c, dir: dir}
	t.Cleanup(d.close)
	return d
}

// start runs Sync in the background.
func (d *device) start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan error, 1)
	go func() {
		d.done <- d.c.Sync(ctx, func(x Delivery) {
			d.mu.Lock()
			d.got = append(d.got, x)
			d.mu.Unlock()
		})
	}()
}

// stop ends Sync.
func (d *device) stop() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
		d.cancel = nil
	}
}

func (d *device) close() {
	d.stop()
	if d.c != nil {
		d.c.Close()
		d.c = nil
	}
}

func (d *device) deliveries() []Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Delivery(nil), d.got...)
}

// waitFor waits until a delivery matches.
func (d *device) waitFor(what string, match func(Delivery) bool) Delivery {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, x := range d.deliveries() {
			if match(x) {
				return x
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("no delivery %s within 30s; got %d deliveries; skipped: %v; rooms: %s", what, len(d.deliveries()), d.c.Skipped(), d.c.debugRooms())
	return Delivery{}
}

func (d *device) waitText(text string) Delivery {
	d.t.Helper()
	return d.waitFor("with text "+text, func(x Delivery) bool { return x.Text() == text })
}

// waitJoined waits until the device holds the room's MLS group.
func (d *device) waitJoined(room string) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rs, _ := d.c.Rooms()
		for _, r := range rs {
			if string(r.Room) == room && r.Joined {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("not joined to %s within 30s; skipped: %v", room, d.c.Skipped())
}

// waitEpoch waits until the device's room is at epoch event id.
func (d *device) waitEpoch(room, epoch string) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rs, _ := d.c.Rooms()
		for _, r := range rs {
			if string(r.Room) == room && string(r.EpochID) == epoch {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("room %s did not reach epoch %s within 30s; skipped: %v", room, epoch, d.c.Skipped())
}

// debugRooms describes each room's epoch chain and retained epochs, for
// failure messages.
func (c *Client) debugRooms() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for id, r := range c.rooms {
		fmt.Fprintf(&b, "[%s epoch %s chain %v", id, r.epoch, r.chain)
		if r.g != nil {
			fmt.Fprintf(&b, " mls-epoch %d retained %d", r.g.Epoch(), len(r.g.RetainedEpochs()))
		}
		b.WriteString("] ")
	}
	return b.String()
}
