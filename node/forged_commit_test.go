package node_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// TestForgedCommitsRejected reproduces the wedge of issue 14: a member
// server submits commits whose MLS bytes are replayed from an earlier
// commit, or are another member's commit relabelled as its user's. Its
// own API refuses them; forced onto the other servers over gossip (the
// member server signs, stores and publishes them itself), they are refused
// there too: no server seals or acks them, no device's stream shows them,
// and the room keeps working (an honest commit is certified everywhere).
// The same holds for a commit against room policy.
func TestForgedCommitsRejected(t *testing.T) {
	cl := newOrderCluster(t)
	streams := []*nodetest.Stream{cl.users[0].OpenStream("?since=0"), cl.users[2].OpenStream("?since=0")}
	setup, err := cl.nodes[0].Store().Get(nodetest.EventID(t, cl.create))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := roomevent.DecodeCommit(setup.Content)
	if err != nil {
		t.Fatal(err)
	}
	bob := cl.users[1]
	bobSender := roomevent.Sender{User: bob.UserURI, Client: bob.DeviceURI}
	enc := base64.StdEncoding.EncodeToString

	// Alice's real commit on the tip, relabelled as bob's.
	ag := cl.group(t, 0, cl.create)
	apc, err := ag.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	aliceMLS, _ := apc.Message.Marshal()
	// Bob's real commit (a path update) that removes alice from the
	// participant list but leaves her device in the group: against policy
	// (a removed user keeps no clients).
	bg := cl.group(t, 1, cl.create)
	bpc, err := bg.Commit(rand.Reader, &mls.CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	policyMLS, _ := bpc.Message.Marshal()
	st, _ := cl.nodes[1].Rooms().State(cl.roomID)
	comp, update, err := roomstate.EncodeOp(st, &roomstate.ParticipantUpdate{Removed: []roomstate.URI{roomstate.URI(cl.users[0].UserURI)}})
	if err != nil {
		t.Fatal(err)
	}
	removeAlice := []roomevent.Change{{Component: uint16(comp), Update: update}}

	forged := []struct {
		name    string
		mls     []byte
		changes []roomevent.Change
		reason  string
	}{
		{"replayed setup commit", sc.Commit, nil, "mls-replay"},
		{"alice's commit relabelled as bob's", aliceMLS, nil, "mls-sender-mismatch"},
		{"bob removes alice but not her device", policyMLS, removeAlice, "policy"},
	}
	key1, _, err := node.LoadOrCreateIdentity(cl.dirs[1])
	if err != nil {
		t.Fatal(err)
	}
	bad := map[dag.EventID]string{}
	for _, f := range forged {
		// 1. At the member server's own API.
		changes := []nodetest.JSON{}
		for _, c := range f.changes {
			changes = append(changes, nodetest.JSON{"component": c.Component, "update": enc(c.Update)})
		}
		status, body := bob.Post("/v1/rooms/"+cl.room+"/commits", nodetest.JSON{"parent": cl.create, "commit": enc(f.mls), "changes": changes})
		if status != 403 || body["error"] != "rejected" {
			t.Fatalf("%s at bob's server: %d %v", f.name, status, body)
		}
		// 2. Forced over gossip by that server.
		content, err := (&roomevent.Commit{Sender: bobSender, Parent: nodetest.EventID(t, cl.create), Commit: f.mls, Changes: f.changes}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// Its parents name the commit's parent, as rule R requires, so
		// the verdict is the observer's and policy's.
		tips, err := dag.MergeParents(cl.nodes[1].Store(), cl.roomID, nodetest.EventID(t, cl.create))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dag.NewSigned(key1, cl.roomID, dag.KindCommit, tips, time.Now().UnixMilli(), content)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.nodes[1].Store().Put(ev); err != nil {
			t.Fatal(err)
		}
		if err := cl.nodes[1].Mesh().Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		bad[ev.ID()] = f.name
		for _, i := range []int{0, 2} {
			nodetest.Eventually(t, 15*time.Second, f.name+" refused on node "+fmt.Sprint(i), func() string {
				if v := metricValue(t, cl.nodes[i], "rhizome_events_rejected_total", "reason", f.reason); v < 1 {
					return fmt.Sprintf("no %s rejection yet", f.reason)
				}
				return ""
			})
		}
	}

	// The room keeps working: an honest commit on the tip is certified.
	status, body := cl.commit(t, 0, cl.create, "mimi://a.test/u/honest")
	if status != 201 {
		t.Fatalf("honest commit: %d %v", status, body)
	}
	honest := nodetest.Str(body["event"])
	if got := cl.waitSameOrder(t, 15*time.Second, 1, 0, 1, 2); got.Tip != honest {
		t.Fatalf("chain %+v, want tip %s", got, honest)
	}
	// No device saw a forged commit: the streams reach the honest one.
	for i, s := range streams {
		s.WaitFor(t, 10*time.Second, func(e clientapi.StreamLine) bool {
			if id, err := dag.ParseEventID(e.Event); err == nil && bad[id] != "" {
				t.Fatalf("stream %d delivered the forged commit (%s)", i, bad[id])
			}
			return e.Event == honest
		})
	}
	// No server sealed or acked a forged commit.
	for i, n := range cl.nodes {
		var after uint64
		for {
			entries, err := n.Store().Log(cl.roomID, after, 256)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) == 0 {
				break
			}
			for _, e := range entries {
				after = e.Seq
				ev, err := n.Store().Get(e.ID)
				if err != nil {
					t.Fatal(err)
				}
				var target consensus.EventID
				switch ev.Kind {
				case dag.KindSeal:
					s, err := consensus.ParseSeal(ev.Content)
					if err == nil {
						target = s.Commit
					}
				case dag.KindAck:
					a, err := consensus.ParseAck(ev.Content)
					if err == nil {
						target = a.Commit
					}
				default:
					continue
				}
				for id, name := range bad {
					if string(target) == string(cid(id)) {
						t.Fatalf("node %d holds a %v for the forged commit (%s) from %v", i, ev.Kind, name, ev.Origin)
					}
				}
			}
		}
	}
	// The members list never showed alice's second device's effects, and
	// the room state lists the honest add only.
	if m := cl.members(t, 0); len(m) != 4 {
		t.Fatalf("members after the honest commit: %v", m)
	}
}
