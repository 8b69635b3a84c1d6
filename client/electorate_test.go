package client

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Which servers vote on a room's order (docs/consensus.md, rule M1): the
// consensus membership changes only at commits that carry a servers
// change, so a server the client puts in a room must come in by commit.

// electorateWait bounds every wait of these tests.
const electorateWait = 30 * time.Second

// readmeRoom builds a room the way the README does: alice on A creates it
// with no other server, then invites bob@b.test and carol@c.test, naming
// each user's home server by its API URL (rhizome invite --via).
func readmeRoom(t *testing.T) (a, b, c *node.Node, alice, bob, carol *device, room string) {
	t.Helper()
	ctx := context.Background()
	a = startNode(t, t.TempDir(), "a.test")
	b = startNode(t, t.TempDir(), "b.test", a.PeerAddrs()[0])
	c = startNode(t, t.TempDir(), "c.test", a.PeerAddrs()[0], b.PeerAddrs()[0])
	alice = newDevice(t, a, "alice", "phone")
	bob = newDevice(t, b, "bob", "phone")
	carol = newDevice(t, c, "carol", "phone")
	for _, d := range []*device{alice, bob, carol} {
		d.start()
	}
	ri, err := alice.c.CreateRoom(ctx, "", "Club")
	if err != nil {
		t.Fatal(err)
	}
	room = string(ri.Room)
	for _, inv := range []struct {
		user string
		via  *node.Node
	}{{"mimi://b.test/u/bob", b}, {"mimi://c.test/u/carol", c}} {
		if _, err := alice.c.Invite(ctx, RoomID(room), inv.user, &InviteOptions{ServerURL: apiURL(inv.via)}); err != nil {
			t.Fatalf("invite %s: %v", inv.user, err)
		}
	}
	bob.waitJoined(room)
	carol.waitJoined(room)
	return a, b, c, alice, bob, carol, room
}

// votesCast is the node's rhizome_votes_cast_total (seals, acks and
// suspects it signed), read from its metrics endpoint.
func votesCast(t *testing.T, n *node.Node) int {
	t.Helper()
	resp, err := http.Get("http://" + n.OpsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rhizome_votes_cast_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += int(v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// stableVotes waits until the node's vote count has not moved for longer
// than a seal timeout (so a late ack or suspect is counted) and returns it.
func stableVotes(t *testing.T, n *node.Node) int {
	t.Helper()
	const quiet = 2 * time.Second
	deadline := time.Now().Add(electorateWait)
	last, since := votesCast(t, n), time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("votes of %s still moving after %v", n.ServerID(), electorateWait)
		}
		time.Sleep(100 * time.Millisecond)
		if v := votesCast(t, n); v != last {
			last, since = v, time.Now()
		}
	}
	return last
}

// waitCertified waits until the node of each device reports commit
// certified (it or a later commit is its last certified one).
func waitCertified(t *testing.T, room, commit string, ds ...*device) {
	t.Helper()
	deadline := time.Now().Add(electorateWait)
	for _, d := range ds {
		d.c.mu.Lock()
		a := d.c.api()
		d.c.mu.Unlock()
		for {
			var o clientapi.Order
			err := a.get(context.Background(), "/v1/rooms/"+url.PathEscape(room)+"/order", &o)
			if err == nil {
				at, ct := slices.Index(o.Canonical, commit), slices.Index(o.Canonical, o.Certified)
				if at >= 0 && ct >= at {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: commit %s not certified within %v: order %+v, err %v", d.dir, commit, electorateWait, o, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// roomServers lists the domains of the room's servers in the device's
// room state.
func roomServers(d *device, room string) []string {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	var out []string
	for _, s := range d.c.rooms[room].state.Servers() {
		out = append(out, s.Domain)
	}
	slices.Sort(out)
	return out
}

// serverChanges returns the servers changes stapled to a commit the
// device has seen.
func serverChanges(t *testing.T, d *device, room, commit string) []roomstate.ServersUpdate {
	t.Helper()
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	ce := d.c.rooms[room].commits[commit]
	if ce == nil {
		t.Fatalf("%s has not seen commit %s", d.dir, commit)
	}
	var out []roomstate.ServersUpdate
	for _, ch := range ce.Changes {
		if roomstate.ComponentID(ch.Component) != roomstate.ComponentServers {
			continue
		}
		up, err := roomstate.ParseServersUpdate(ch.Update)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, up)
	}
	return out
}

// TestElectorateReadmeRoom: in a room built as the README does, every
// server votes. The two servers alice adds come in by commits carrying the
// servers change; B votes; with the creating server A cut off, B and C
// (two of three) both vote to certify bob's key update and carry a
// message, and after the heal alice is on the same epoch.
func TestElectorateReadmeRoom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b, c, alice, bob, carol, room := readmeRoom(t)
	if got, want := roomServers(alice, room), []string{"a.test", "b.test", "c.test"}; !slices.Equal(got, want) {
		t.Fatalf("servers = %v, want %v", got, want)
	}
	alice.c.mu.Lock()
	byCommit := 0
	for _, ce := range alice.c.rooms[room].commits {
		for _, ch := range ce.Changes {
			if roomstate.ComponentID(ch.Component) == roomstate.ComponentServers {
				byCommit++
			}
		}
	}
	alice.c.mu.Unlock()
	if byCommit != 2 {
		t.Fatalf("%d commits carry a servers change, want 2 (one per added server)", byCommit)
	}

	u1, err := alice.c.Update(ctx, RoomID(room))
	if err != nil {
		t.Fatal(err)
	}
	waitCertified(t, room, string(u1), alice, bob, carol)
	// Certifying the slot after C's commit took both of A and B; C may
	// not have been needed for u1 (two of three suffice).
	if v := votesCast(t, b); v == 0 {
		t.Fatalf("B cast no votes (A %d, C %d)", votesCast(t, a), votesCast(t, c))
	}

	vb, vc := votesCast(t, b), votesCast(t, c)
	iso, err := a.Isolate()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	u2, err := bob.c.Update(ctx, RoomID(room))
	if err != nil {
		t.Fatalf("update with A cut off: %v", err)
	}
	carol.waitEpoch(room, string(u2))
	waitCertified(t, room, string(u2), bob, carol) // a quorum without A
	t.Logf("with A cut off, B and C certified %s in %v", u2, time.Since(start).Round(time.Millisecond))
	if nb, nc := votesCast(t, b), votesCast(t, c); nb == vb || nc == vc {
		t.Fatalf("with A cut off, B cast %d votes and C %d: both must vote", nb-vb, nc-vc)
	}
	if _, err := bob.c.Send(ctx, RoomID(room), "without A"); err != nil {
		t.Fatal(err)
	}
	carol.waitText("without A")

	if err := iso.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	alice.waitEpoch(room, string(u2))
	alice.waitText("without A")
	if ea, eb := authenticatorOK(alice.c, room), authenticatorOK(bob.c, room); ea == nil || !bytes.Equal(ea, eb) {
		t.Fatal("alice and bob differ on the epoch authenticator after the heal")
	}
}

// TestElectorateRemoveLastUser: removing carol, the only user of c.test,
// takes server C out of the room in the same commit, so C stops voting
// while A and B go on certifying.
func TestElectorateRemoveLastUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, b, c, alice, bob, _, room := readmeRoom(t)
	removal, err := alice.c.Remove(ctx, RoomID(room), "mimi://c.test/u/carol")
	if err != nil {
		t.Fatal(err)
	}
	ups := serverChanges(t, alice, room, string(removal))
	if len(ups) != 1 || len(ups[0].Added) != 0 || !slices.Equal(ups[0].Removed, []roomstate.ServerID{roomstate.ServerID(c.ServerID())}) {
		t.Fatalf("removal commit's servers changes = %+v, want C removed", ups)
	}
	bob.waitEpoch(room, string(removal))
	for _, d := range []*device{alice, bob} {
		if got, want := roomServers(d, room), []string{"a.test", "b.test"}; !slices.Equal(got, want) {
			t.Fatalf("%s: servers after the removal = %v, want %v", d.dir, got, want)
		}
	}
	waitCertified(t, room, string(removal), alice, bob)

	// The commits after the removal are voted on by A and B only.
	vc, vb := stableVotes(t, c), votesCast(t, b)
	for range 2 {
		u, err := bob.c.Update(ctx, RoomID(room))
		if err != nil {
			t.Fatal(err)
		}
		waitCertified(t, room, string(u), alice, bob)
	}
	time.Sleep(500 * time.Millisecond)
	if got := votesCast(t, b); got < vb+2 {
		t.Fatalf("B cast %d votes on two commits, want at least 2", got-vb)
	}
	if got := votesCast(t, c); got != vc {
		t.Fatalf("C cast %d votes after it left the room", got-vc)
	}
}
