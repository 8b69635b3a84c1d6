package demo

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// runDemo runs the scenario with the output captured (logged on failure)
// and a bound of 90 s.
func runDemo(t *testing.T, opts Options) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	opts.Dir, opts.Out = t.TempDir(), &out
	if opts.WaitTimeout == 0 {
		opts.WaitTimeout = 30 * time.Second
	}
	rep, err := Run(ctx, opts)
	if err != nil || t.Failed() {
		t.Logf("demo output:\n%s", out.String())
		t.Fatalf("demo: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	})
	return rep
}

func deviceReport(t *testing.T, rep Report, label string) DeviceReport {
	t.Helper()
	for _, d := range rep.Devices {
		if d.Device == label {
			return d
		}
	}
	t.Fatalf("no device %s in the report", label)
	return DeviceReport{}
}

// checkConverged asserts the properties every run must have, with counts
// that follow from the scenario (not from the code that evaluates it):
// fullMembers devices (alice, bob's two, carol) hold all total messages,
// dave holds the daveSees messages sent after he joined, everything
// exactly once, nothing lost, and one epoch and epoch_authenticator.
func checkConverged(t *testing.T, rep Report, total, daveSees int) {
	t.Helper()
	if !rep.Passed || len(rep.Failures) > 0 {
		t.Fatalf("report not passed: %v", rep.Failures)
	}
	if len(rep.Messages) != total {
		t.Fatalf("%d messages sent, the scenario sends %d", len(rep.Messages), total)
	}
	if rep.Totals.Lost != 0 || rep.Totals.Duplicates != 0 || rep.Totals.Unexpected != 0 {
		t.Fatalf("totals %+v: want 0 lost, 0 duplicates, 0 unexpected", rep.Totals)
	}
	if len(rep.Devices) != 5 {
		t.Fatalf("%d devices in the report, want 5", len(rep.Devices))
	}
	full := deviceReport(t, rep, "alice/phone")
	if len(full.MessageIDs) != total {
		t.Fatalf("alice holds %d messages, want %d", len(full.MessageIDs), total)
	}
	var sent []string
	for _, m := range rep.Messages {
		sent = append(sent, m.ID)
	}
	if !slices.Equal(full.MessageIDs, sent) {
		t.Fatalf("alice's ordered message IDs differ from the IDs sent")
	}
	for _, label := range []string{"bob/phone", "bob/laptop", "carol/phone"} {
		d := deviceReport(t, rep, label)
		if !slices.Equal(d.MessageIDs, full.MessageIDs) {
			t.Errorf("%s holds %d message IDs, not the same list as alice's %d", label, len(d.MessageIDs), len(full.MessageIDs))
		}
	}
	dave := deviceReport(t, rep, "dave/phone")
	if len(dave.MessageIDs) != daveSees {
		t.Errorf("dave holds %d messages, want the %d sent after he joined", len(dave.MessageIDs), daveSees)
	}
	if !isSubsequence(dave.MessageIDs, full.MessageIDs) {
		t.Errorf("dave's messages are not among alice's, in order")
	}
	for _, d := range rep.Devices {
		seen := map[string]bool{}
		for _, id := range d.MessageIDs {
			if seen[id] {
				t.Errorf("%s holds message %s twice", d.Device, id)
			}
			seen[id] = true
		}
		if d.Lost != 0 || d.Duplicates != 0 || d.Delivered != d.Expected || d.Delivered != len(d.Transcript) {
			t.Errorf("%s: %+v", d.Device, d)
		}
		if d.EpochAuthenticator == "" || d.EpochAuthenticator != full.EpochAuthenticator || d.EpochID != rep.FinalEpochID || d.Epoch != rep.FinalEpoch {
			t.Errorf("%s ends in epoch %d %s (authenticator %s); alice in %d %s (%s)", d.Device, d.Epoch, d.EpochID, d.EpochAuthenticator, full.Epoch, full.EpochID, full.EpochAuthenticator)
		}
		for _, l := range d.Transcript {
			m := rep.Messages[l.Seq-1]
			if l.ID != m.ID || l.Text != m.Text || !strings.HasSuffix(l.Sender, "/u/"+strings.Split(m.From, "/")[0]) {
				t.Errorf("%s: transcript line %+v does not match message sent %+v", d.Device, l, m)
			}
		}
	}
	// The membership change took effect everywhere: dave is a participant
	// with his device, and bob with both of his.
	for _, want := range []string{"alice (1 device)", "bob (2 devices)", "carol (1 device)", "dave (1 device)"} {
		if !slices.Contains(rep.Members, want) {
			t.Errorf("members %v lack %q", rep.Members, want)
		}
	}
	// The epochs: create, +bob, +carol, +dave.
	if rep.FinalEpoch != 3 {
		t.Errorf("final epoch %d, want 3 (three commits: bob, carol, dave)", rep.FinalEpoch)
	}
}

func isSubsequence(sub, of []string) bool {
	i := 0
	for _, x := range of {
		if i < len(sub) && sub[i] == x {
			i++
		}
	}
	return i == len(sub)
}

// TestDemoEndToEnd runs the whole demo: three servers, five devices, a
// partition with traffic on both sides and dave added on the majority
// side, the heal, and the convergence checks.
func TestDemoEndToEnd(t *testing.T) {
	rep := runDemo(t, Options{Seed: 1})
	// 4 devices in the first round; in the partition carol 1, the majority
	// 3, carol 1, (dave added) the majority 4, carol 1; 5 in the last round.
	checkConverged(t, rep, 4+10+5, 4+5)
	if rep.ConvergeAfterHealMS < 0 {
		t.Fatal("no convergence time after the heal")
	}
	// Carol's partition messages reached the majority after the heal, and
	// the majority's (dave's included) reached carol.
	crossed := map[string]int{}
	for _, m := range rep.Messages {
		if m.Phase == "partition" {
			crossed[m.From]++
		}
	}
	if crossed["carol/phone"] != 3 || crossed["dave/phone"] != 1 {
		t.Fatalf("partition messages by sender = %v", crossed)
	}
	var minority int
	for _, s := range rep.Servers {
		if strings.HasPrefix(s.Role, "minority") {
			minority++
		}
	}
	if minority != 1 {
		t.Fatalf("servers %+v: want one minority server", rep.Servers)
	}
}

// TestRestartMidConversation has bob send a message and stops server beta
// (bob's two devices) right after, lets alice and carol talk, starts beta
// again on the same data folder, has bob answer and alice add dave: every
// property holds afterwards (nothing acknowledged lost, every message
// exactly once, one epoch_authenticator), and beta kept its identity. The
// partition is TestDemoEndToEnd's; Options.Restart without NoPartition
// runs both.
func TestRestartMidConversation(t *testing.T) {
	rep := runDemo(t, Options{Seed: 2, Restart: true, NoPartition: true})
	// First round 4; bob just before the stop 1; while beta is down alice
	// and carol 2; after the restart bob's devices 2; (dave added) last
	// round 5.
	checkConverged(t, rep, 4+1+2+2+5, 5)
	var down, after int
	for _, m := range rep.Messages {
		if m.Phase == "restart" {
			if strings.HasPrefix(m.From, "bob/") {
				after++
			} else {
				down++
			}
		}
	}
	if down != 2 || after != 3 {
		t.Fatalf("restart phase: %d messages while beta was down, %d from bob around it; want 2 and 3", down, after)
	}
	for _, s := range rep.Servers {
		if s.Name == "beta.test" && (!strings.Contains(s.Role, "restarted") || len(s.ServerID) != 64) {
			t.Fatalf("beta's report %+v", s)
		}
	}
}
