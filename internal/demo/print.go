package demo

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rhizome-chat/rhizome/client"
)

// report gathers the run's outcome from the devices and checks it.
func (r *runner) report() Report {
	rep := Report{Seed: r.opts.Seed, Room: r.room, Messages: r.sent, ConvergeAfterHealMS: -1}
	if r.converged >= 0 {
		rep.ConvergeAfterHealMS = r.converged.Milliseconds()
	}
	for _, name := range []string{alpha, beta, gamma} {
		s := r.servers[name]
		if s == nil {
			continue
		}
		sr := ServerReport{Name: s.domain(), ServerID: s.id.String(), API: s.cfg.API.Listen, Role: "majority"}
		if name == minorityServer && !r.opts.NoPartition {
			sr.Role = "minority (cut off, then healed)"
		}
		if name == restartServer && r.opts.Restart {
			sr.Role += ", restarted"
		}
		rep.Servers = append(rep.Servers, sr)
	}
	userOf := map[string]string{}
	var obs []observation
	for _, d := range r.devices {
		o := observation{device: d.label(), server: d.srv.domain(), deliveries: d.deliveries()}
		if d.c != nil {
			if who, err := d.c.Whoami(); err == nil {
				userOf[d.label()] = who.UserURI
			}
			o.resent = d.c.Stats().Resent
			if info, ok := d.roomInfo(r.room); ok {
				o.epoch, o.epochID = info.Epoch, string(info.EpochID)
			}
			if ea, err := d.c.EpochAuthenticator(client.RoomID(r.room)); err == nil {
				o.auth = hex.EncodeToString(ea)
			} else {
				r.failures = append(r.failures, fmt.Sprintf("%s: epoch_authenticator: %v", d.label(), err))
			}
		}
		if slices.Contains(r.members, d.label()) {
			obs = append(obs, o)
		}
	}
	var fails []string
	rep.Devices, rep.Totals, fails = evaluate(r.sent, obs, userOf)
	rep.Failures = append(append(rep.Failures, r.failures...), fails...)
	if len(rep.Devices) > 0 {
		rep.FinalEpoch, rep.FinalEpochID = rep.Devices[0].Epoch, rep.Devices[0].EpochID
		if rep.FinalEpochID != r.tip && r.tip != "" {
			rep.Failures = append(rep.Failures, fmt.Sprintf("devices end in epoch %s, the last commit was %s", short(rep.FinalEpochID), short(r.tip)))
		}
	}
	members, mfails := r.checkMembers()
	rep.Members = members
	rep.Failures = append(rep.Failures, mfails...)
	rep.Passed = len(rep.Failures) == 0 && r.room != ""
	return rep
}

// checkMembers checks that every member device sees the same participants
// with the devices the demo added (the membership change took effect
// everywhere) and returns them as "user (n devices)".
func (r *runner) checkMembers() ([]string, []string) {
	if r.room == "" {
		return nil, nil
	}
	want := map[string]int{}
	for _, label := range r.members {
		want[r.device(label).user]++
	}
	var fails []string
	var first []string
	for _, d := range r.joined() {
		if d.c == nil {
			continue
		}
		ms, err := d.c.Members(client.RoomID(r.room))
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s: members: %v", d.label(), err))
			continue
		}
		got := map[string]int{}
		var desc []string
		for _, m := range ms {
			name := m.User[strings.LastIndex(m.User, "/")+1:]
			got[name] = len(m.Devices)
			desc = append(desc, fmt.Sprintf("%s (%d device%s)", name, len(m.Devices), plural(len(m.Devices))))
		}
		sort.Strings(desc)
		if first == nil {
			first = desc
		}
		for _, u := range slices.Sorted(maps.Keys(want)) {
			if got[u] != want[u] {
				fails = append(fails, fmt.Sprintf("%s sees %s with %d devices in the room, want %d", d.label(), u, got[u], want[u]))
			}
		}
		for _, u := range slices.Sorted(maps.Keys(got)) {
			if _, ok := want[u]; !ok {
				fails = append(fails, fmt.Sprintf("%s sees %s in the room, who was never added", d.label(), u))
			}
		}
	}
	return first, fails
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// column is the short heading of a device column: the user, with the
// device's initial for users with two devices.
func (r *runner) column(label string) string {
	d := r.device(label)
	if len(r.userDevices(d.user)) > 1 {
		return d.user + "/" + d.name[:1]
	}
	return d.user
}

// printTranscripts prints the converged transcripts: one row per message
// in send order, one column per device.
func (r *runner) printTranscripts(rep Report) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	w := r.out
	fmt.Fprintf(w, "\nConverged transcripts of room %s, in send order\n", rep.Room)
	fmt.Fprintf(w, "(✓ delivered, exactly once; · sent in an epoch the device was not a member of; LOST: a failure)\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	head := []string{"#", "from", "phase", "text"}
	for _, d := range rep.Devices {
		head = append(head, r.column(d.Device))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	held := map[string]map[string]int{}
	for _, d := range rep.Devices {
		held[d.Device] = map[string]int{}
		for _, l := range d.Transcript {
			held[d.Device][l.ID]++
		}
	}
	for _, m := range rep.Messages {
		row := []string{fmt.Sprint(m.Seq), m.From, m.Phase, m.Text}
		for _, d := range rep.Devices {
			mark := "·"
			switch {
			case held[d.Device][m.ID] > 0:
				mark = "✓"
			case slices.Contains(m.Entitled, d.Device):
				mark = "LOST"
			}
			row = append(row, mark)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, g := range sameTranscripts(rep.Devices) {
		var d DeviceReport
		for _, x := range rep.Devices {
			if x.Device == g[0] {
				d = x
			}
		}
		fmt.Fprintf(w, "identical ordered message-ID lists (%d messages, sha256 %s…): %s\n", len(d.MessageIDs), d.TranscriptDigest[:16], joinDevices(g))
	}
}

// printSummary prints the per-device table and the verdict.
func (r *runner) printSummary(rep Report) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	w := r.out
	fmt.Fprintf(w, "\nSummary\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device\tserver\tsent\tdelivered\tre-sent\tlost\tduplicates\tepoch\tepoch_authenticator\t")
	for _, d := range rep.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d\t%d\t%d\t%d\t%d\t%s\t\n", d.Device, d.Server, d.Sent, d.Delivered, d.Expected, d.Resent, d.Lost, d.Duplicates, d.Epoch, short(d.EpochAuthenticator))
	}
	t := rep.Totals
	fmt.Fprintf(tw, "total\t\t%d\t%d/%d\t%d\t%d\t%d\t\t\t\n", t.Sent, t.Delivered, t.Expected, t.Resent, t.Lost, t.Duplicates)
	tw.Flush()
	fmt.Fprintln(w)
	if rep.ConvergeAfterHealMS >= 0 {
		fmt.Fprintf(w, "time to converge after heal: %v\n", (time.Duration(rep.ConvergeAfterHealMS) * time.Millisecond).Round(10*time.Millisecond))
	}
	fmt.Fprintf(w, "final epoch: %d (commit %s), the same on every device\n", rep.FinalEpoch, rep.FinalEpochID)
	if len(rep.Devices) > 0 {
		fmt.Fprintf(w, "epoch_authenticator: %s\n", rep.Devices[0].EpochAuthenticator)
	}
	fmt.Fprintf(w, "members: %s\n", strings.Join(rep.Members, ", "))
	fmt.Fprintf(w, "run time: %v\n\n", (time.Duration(rep.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
	if rep.Passed {
		fmt.Fprintf(w, "PASS: %d messages sent, every device holds every message meant for it exactly once, 0 lost, and all %d devices agree on the epoch and its epoch_authenticator.\n", t.Sent, len(rep.Devices))
		return
	}
	fmt.Fprintf(w, "FAIL: %d problems:\n", len(rep.Failures))
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}
