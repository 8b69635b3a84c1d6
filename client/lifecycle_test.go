package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// count returns how often each message ID was delivered to d.
func count(d *device) map[string]int {
	m := map[string]int{}
	for _, x := range d.deliveries() {
		m[string(x.ID)]++
	}
	return m
}

// TestRestartResendAndDedup restarts a device from its directory (its MLS
// group is rebuilt from the replay log and its sending ratchet continues
// where it was: the receiver refuses a reused key generation), resumes the
// stream from the stored cursor, and checks deduplication twice: stream
// lines fed again, and a message re-sent in a later epoch under the same
// MIMI message ID, which a device that joined in between still decrypts.
func TestRestartResendAndDedup(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, room := threeOnOneNode(t, "", "Restart")
	if _, err := alice.c.Invite(ctx, RoomID(room), "bob", nil); err != nil {
		t.Fatal(err)
	}
	bob.waitJoined(room)
	before, err := bob.c.Send(ctx, RoomID(room), "before restart")
	if err != nil {
		t.Fatal(err)
	}
	alice.waitText("before restart")
	bob.waitText("before restart") // own messages are delivered to the sender too

	// Bob's device goes away; alice talks meanwhile.
	bobDir := bob.dir
	bob.close()
	missed, err := alice.c.Send(ctx, RoomID(room), "while you were away")
	if err != nil {
		t.Fatal(err)
	}
	// The store is private to the device.
	if fi, err := os.Stat(bobDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("client dir mode = %v, %v", fi.Mode(), err)
	}
	err = filepath.WalkDir(bobDir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		if fi, err := de.Info(); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bob2 := openDevice(t, bobDir)
	if who, err := bob2.c.Whoami(); err != nil || who.UserURI != "mimi://a.test/u/bob" {
		t.Fatalf("whoami after restart = %+v, %v", who, err)
	}
	bob2.start()
	if got := bob2.waitText("while you were away"); got.ID != missed.ID {
		t.Fatalf("missed message = %+v", got)
	}
	// Bob's ratchet continues: alice decrypts a message sent after restart
	// (a reused generation would be refused as a replay).
	after, err := bob2.c.Send(ctx, RoomID(room), "after restart")
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.waitText("after restart"); got.ID != after.ID || got.Epoch != before.Epoch {
		t.Fatalf("after restart = %+v (epoch %s)", got, before.Epoch)
	}
	// The resumed stream did not repeat what bob's first session saw.
	for _, x := range bob2.deliveries() {
		if x.ID == before.ID {
			t.Fatalf("message from before the restart delivered again")
		}
	}
	bob2.stop()

	// Feed bob's whole stream again under new cursors: nothing new.
	delivered := bob2.c.Stats().Delivered
	var lines []*clientapi.StreamLine
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_ = bob2.c.readStream(sctx, bob2.c.api(), "?since=0", func(l *clientapi.StreamLine) error {
		if l.Type == clientapi.LineEvent && l.Kind == "message" {
			lines = append(lines, l)
		}
		return nil
	})
	cancel()
	if len(lines) < 3 {
		t.Fatalf("only %d message lines on the stream", len(lines))
	}
	bob2.c.mu.Lock()
	orig := bob2.c.cursor
	bob2.c.mu.Unlock()
	for _, l := range lines {
		bob2.c.mu.Lock()
		l.Cursor = bob2.c.cursor + 1
		bob2.c.mu.Unlock()
		if err := bob2.c.processLine(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if got := bob2.c.Stats().Delivered; got != delivered {
		t.Fatalf("replayed lines delivered %d new messages", got-delivered)
	}
	// Put the cursor back where the real feed is.
	bob2.c.mu.Lock()
	bob2.c.cursor = orig
	b := newBatch()
	b.setCursor(orig)
	err = bob2.c.st.commit(b)
	bob2.c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	bob2.start()

	// Alice sends m1, a commit moves the room on (carol joins), and alice
	// re-sends m1 in the new epoch: bob gets it once, carol (who cannot read
	// the old epoch) gets it from the re-send.
	m1, err := alice.c.Send(ctx, RoomID(room), "m1")
	if err != nil {
		t.Fatal(err)
	}
	bob2.waitText("m1")
	if _, err := alice.c.Invite(ctx, RoomID(room), "carol", nil); err != nil {
		t.Fatal(err)
	}
	carol.waitJoined(room)
	if err := alice.c.resend(ctx, room, string(m1.ID)); err != nil {
		t.Fatal(err)
	}
	got := carol.waitText("m1")
	if got.ID != m1.ID || got.Epoch == m1.Epoch {
		t.Fatalf("re-sent m1 = %+v, first sent in %s", got, m1.Epoch)
	}
	if _, err := alice.c.Send(ctx, RoomID(room), "marker"); err != nil {
		t.Fatal(err)
	}
	bob2.waitText("marker")
	if n := count(bob2)[string(m1.ID)]; n != 1 {
		t.Fatalf("bob got m1 %d times", n)
	}
	if alice.c.Stats().Resent != 1 {
		t.Fatalf("alice stats = %+v", alice.c.Stats())
	}
}

// TestRemoveAndLeave removes a user (all of their devices and the
// participant entry in one commit), then lets a member leave (a SelfRemove
// proposal the remaining member commits).
func TestRemoveAndLeave(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, room := threeOnOneNode(t, "private-group", "Members")
	for _, u := range []string{"bob", "carol"} {
		if _, err := alice.c.Invite(ctx, RoomID(room), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	bob.waitJoined(room)
	carol.waitJoined(room)
	removal, err := alice.c.Remove(ctx, RoomID(room), "bob")
	if err != nil {
		t.Fatal(err)
	}
	carol.waitEpoch(room, string(removal))
	ms, _ := carol.c.Members(RoomID(room))
	if len(ms) != 2 || ms[0].User == "mimi://a.test/u/bob" || ms[1].User == "mimi://a.test/u/bob" {
		t.Fatalf("members after removal = %+v", ms)
	}
	if _, err := alice.c.Send(ctx, RoomID(room), "bob is gone"); err != nil {
		t.Fatal(err)
	}
	carol.waitText("bob is gone")
	if !equalBytes(authenticator(t, alice.c, room), authenticator(t, carol.c, room)) {
		t.Fatal("alice and carol disagree on the epoch")
	}
	// Bob can no longer post to the room.
	if _, err := bob.c.Send(ctx, RoomID(room), "still here?"); err == nil {
		t.Fatal("removed user could send")
	}
	for _, x := range bob.deliveries() {
		if x.Text() == "bob is gone" {
			t.Fatal("removed user decrypted a later message")
		}
	}

	// Carol leaves; alice's client commits her SelfRemove.
	if err := carol.c.Leave(ctx, RoomID(room)); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.c.Send(ctx, RoomID(room), "x"); !errors.Is(err, ErrLeft) {
		t.Fatalf("send after leave: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms, _ := alice.c.Members(RoomID(room))
		if len(ms) == 1 && len(ms[0].Devices) == 1 {
			alice.c.mu.Lock()
			n := len(alice.c.rooms[room].g.Members())
			alice.c.mu.Unlock()
			if n == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol still in the group: %+v; skipped %v", ms, alice.c.Skipped())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// TestBadInput checks that misuse gives typed errors that say the fix.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, t.TempDir(), "a.test")

	fresh := openDevice(t, t.TempDir())
	if _, err := fresh.c.Send(ctx, "!QmX", "hi"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("send before register: %v", err)
	}
	if _, err := fresh.c.Register(ctx, "not a url", "x", "y"); !errors.Is(err, ErrBadInput) {
		t.Fatalf("bad server URL: %v", err)
	}
	if _, err := fresh.c.Register(ctx, "http://127.0.0.1:1", "x", "y"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("unreachable server: %v", err)
	}
	if _, err := fresh.c.Register(ctx, apiURL(a), "Bad Name!", "y"); !errors.Is(err, ErrServer) {
		t.Fatalf("bad user name: %v", err)
	}
	alice := newDevice(t, a, "alice", "phone")
	if _, err := alice.c.Register(ctx, apiURL(a), "alice", "phone"); !errors.Is(err, ErrAlreadyRegistered) {
		t.Fatalf("second register: %v", err)
	}
	other := openDevice(t, t.TempDir())
	if _, err := other.c.Register(ctx, apiURL(a), "alice", "tablet"); !errors.Is(err, ErrServer) {
		t.Fatalf("taken user name: %v", err)
	}
	alice.start()
	ri, err := alice.c.CreateRoom(ctx, "", "Errors")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.CreateRoom(ctx, "no-such-preset", "x"); !errors.Is(err, ErrBadInput) {
		t.Fatalf("bad preset: %v", err)
	}
	cases := []struct {
		name string
		run  func() error
		want error
	}{
		{"bad room id", func() error { _, err := alice.c.Send(ctx, "nonsense", "x"); return err }, ErrBadInput},
		{"unknown room", func() error {
			_, err := alice.c.Send(ctx, "!QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "x")
			return err
		}, ErrUnknownRoom},
		{"empty message", func() error { _, err := alice.c.Send(ctx, ri.Room, "  "); return err }, ErrBadInput},
		{"reply to unknown", func() error {
			_, err := alice.c.Reply(ctx, ri.Room, MessageID("01"+repeat("ab", 31)), "x")
			return err
		}, ErrUnknownMessage},
		{"react to malformed id", func() error { _, err := alice.c.React(ctx, ri.Room, "zz", "x"); return err }, ErrBadInput},
		{"edit unknown", func() error { _, err := alice.c.Edit(ctx, ri.Room, MessageID("01"+repeat("ab", 31)), "x"); return err }, ErrBadInput},
		{"invite unknown user", func() error { _, err := alice.c.Invite(ctx, ri.Room, "nobody", nil); return err }, ErrUnknownUser},
		{"invite remote without server", func() error {
			_, err := alice.c.Invite(ctx, ri.Room, "mimi://far.test/u/x", nil)
			return err
		}, ErrBadInput},
		{"invite self", func() error { _, err := alice.c.Invite(ctx, ri.Room, "alice", nil); return err }, ErrBadInput},
		{"remove non-member", func() error { _, err := alice.c.Remove(ctx, ri.Room, "bob"); return err }, ErrBadInput},
		{"bad user uri", func() error { _, err := alice.c.Invite(ctx, ri.Room, "mimi://x", nil); return err }, ErrBadInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	// A second client cannot open a directory in use.
	if _, err := Open(alice.dir, Options{}); !errors.Is(err, ErrStore) {
		t.Fatalf("second open: %v", err)
	}
	_ = filepath.Join
	_ = strconv.Itoa
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// TestLeaveLastUserTakesServerOut: alice, the only user of a.test (and the
// room's creator), leaves after making carol an admin. bob, a plain member
// without canChangeServers, holds the lowest leaf left and commits her
// departure: one commit removes her device (her SelfRemove, by reference)
// and takes server A out of the room (a vacated server, which any
// participant may remove), so A stops voting while B and C go on
// certifying.
func TestLeaveLastUserTakesServerOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, b, _, alice, bob, carol, room := readmeRoom(t)
	carolURI := roomstate.URI("mimi://c.test/u/carol")
	if err := alice.c.postState(ctx, room, &roomstate.ParticipantUpdate{RoleChanges: []roomstate.UserRole{{User: carolURI, Role: roomstate.RoleAdmin}}}); err != nil {
		t.Fatal(err)
	}
	// The state event takes effect with the next commit, which adopts it.
	if _, err := alice.c.Update(ctx, RoomID(room)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "bob sees carol as admin", func() bool {
		bob.c.mu.Lock()
		defer bob.c.mu.Unlock()
		return bob.c.rooms[room].state.RoleOf(carolURI) == roomstate.RoleAdmin
	})
	bob.c.mu.Lock()
	before := len(bob.c.rooms[room].chain)
	bob.c.mu.Unlock()

	if err := alice.c.Leave(ctx, RoomID(room)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "alice's device out of bob's group and A out of the servers", func() bool {
		bob.c.mu.Lock()
		n := len(bob.c.rooms[room].g.Members())
		bob.c.mu.Unlock()
		return n == 2 && slices.Equal(roomServers(bob, room), []string{"b.test", "c.test"})
	})
	bob.c.mu.Lock()
	r := bob.c.rooms[room]
	after := slices.Clone(r.chain[before:])
	var actor string
	if len(after) == 1 && r.commits[after[0]] != nil {
		actor = r.commits[after[0]].Actor.Client
	}
	bob.c.mu.Unlock()
	if len(after) != 1 || actor != bob.c.id.DeviceURI {
		t.Fatalf("commits since the leave: %v by %q, want one, bob's; skipped %v", after, actor, bob.c.Skipped())
	}
	leave := after[0]
	ups := serverChanges(t, bob, room, leave)
	if len(ups) != 1 || len(ups[0].Added) != 0 || !slices.Equal(ups[0].Removed, []roomstate.ServerID{roomstate.ServerID(a.ServerID())}) {
		t.Fatalf("the leave commit's servers changes = %+v, want A removed", ups)
	}
	carol.waitEpoch(room, leave)
	if got := roomServers(carol, room); !slices.Equal(got, []string{"b.test", "c.test"}) {
		t.Fatalf("carol: servers after the leave = %v", got)
	}
	waitCertified(t, room, leave, bob, carol)

	// The commits after the leave are voted on by B and C only.
	va, vb := stableVotes(t, a), votesCast(t, b)
	for range 2 {
		u, err := carol.c.Update(ctx, RoomID(room))
		if err != nil {
			t.Fatal(err)
		}
		waitCertified(t, room, string(u), bob, carol)
	}
	time.Sleep(500 * time.Millisecond)
	if got := votesCast(t, b); got < vb+2 {
		t.Fatalf("B cast %d votes on two commits, want at least 2", got-vb)
	}
	if got := votesCast(t, a); got != va {
		t.Fatalf("A cast %d votes after it left the room", got-va)
	}
}

// waitUntil polls cond until it holds, failing the test after 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
