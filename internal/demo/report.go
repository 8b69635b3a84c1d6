package demo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/rhizome-chat/rhizome/client"
)

// Report is what a demo run found: per device what it sent and received,
// the totals, the time the federation needed to converge after the heal,
// and every failed check. Passed is true only when Failures is empty.
type Report struct {
	Seed    uint64         `json:"seed"`
	Room    string         `json:"room"`
	Servers []ServerReport `json:"servers"`
	Devices []DeviceReport `json:"devices"`
	// Messages lists every message the demo sent, in send order.
	Messages []MessageReport `json:"messages"`
	Totals   Counts          `json:"totals"`
	// ConvergeAfterHealMS is the time from the heal until every device
	// held every message it is entitled to and the same epoch; -1 if the
	// run had no partition or did not converge.
	ConvergeAfterHealMS int64 `json:"converge_after_heal_ms"`
	// FinalEpoch and FinalEpochID are the epoch every device ended in
	// (number and commit event ID).
	FinalEpoch   uint64 `json:"final_epoch"`
	FinalEpochID string `json:"final_epoch_id"`
	// Members are the room's participants at the end, as devices see them.
	Members    []string `json:"members"`
	DurationMS int64    `json:"duration_ms"`
	Failures   []string `json:"failures"`
	Passed     bool     `json:"passed"`
}

// ServerReport describes one server of the demo.
type ServerReport struct {
	Name     string `json:"name"`
	ServerID string `json:"server_id"`
	API      string `json:"api"`
	Role     string `json:"role"` // e.g. "majority", "minority (cut off)"
}

// DeviceReport is one device's outcome.
type DeviceReport struct {
	Device string `json:"device"` // user/device, e.g. "bob/laptop"
	Server string `json:"server"`
	Counts
	// Epoch, EpochID and EpochAuthenticator describe the device's final
	// epoch; every device must agree on them.
	Epoch              uint64 `json:"epoch"`
	EpochID            string `json:"epoch_id"`
	EpochAuthenticator string `json:"epoch_authenticator,omitempty"`
	// MessageIDs are the MIMI message IDs the device holds, in send order;
	// TranscriptDigest is SHA-256 over them (equal lists, equal digests).
	MessageIDs       []string `json:"message_ids"`
	TranscriptDigest string   `json:"transcript_digest"`
	// Transcript is the device's converged transcript, in send order.
	Transcript []Line `json:"transcript"`
	// ArrivalOrder is the same messages by sequence number in the order
	// they reached the device (it differs between devices: partitions).
	ArrivalOrder []int `json:"arrival_order"`
}

// Line is one message of a transcript.
type Line struct {
	Seq    int    `json:"seq"`
	ID     string `json:"id"`
	Sender string `json:"sender"` // user URI, MLS-authenticated
	Device string `json:"device"`
	Text   string `json:"text"`
}

// MessageReport is one message the demo sent.
type MessageReport struct {
	Seq      int      `json:"seq"`
	ID       string   `json:"id"`
	From     string   `json:"from"` // user/device
	Text     string   `json:"text"`
	Epoch    string   `json:"epoch"` // commit event ID it was first encrypted in
	Phase    string   `json:"phase"`
	Entitled []string `json:"entitled"` // devices that must receive it
}

// Counts are a device's delivery figures (DeviceReport) or their sums over
// all devices (Report.Totals).
type Counts struct {
	// Sent counts the messages this device sent; Expected those it is
	// entitled to receive (every message sent in an epoch it was a member
	// of, its own included); Delivered the distinct expected ones it got.
	Sent      int `json:"sent"`
	Expected  int `json:"expected"`
	Delivered int `json:"delivered"`
	// Resent counts own messages re-sent after a branch move.
	Resent int `json:"resent"`
	// Lost = Expected - Delivered; must be 0.
	Lost int `json:"lost"`
	// Duplicates counts deliveries of a message ID already delivered;
	// Unexpected counts deliveries of messages the device is not entitled
	// to or the demo never sent. Both must be 0.
	Duplicates int `json:"duplicates"`
	Unexpected int `json:"unexpected"`
}

// add adds d to c.
func (c *Counts) add(d Counts) {
	c.Sent += d.Sent
	c.Expected += d.Expected
	c.Delivered += d.Delivered
	c.Resent += d.Resent
	c.Lost += d.Lost
	c.Duplicates += d.Duplicates
	c.Unexpected += d.Unexpected
}

// observation is what the demo read from one device at the end.
type observation struct {
	device     string // user/device
	server     string
	deliveries []client.Delivery
	resent     int
	epoch      uint64
	epochID    string
	auth       string
}

// evaluate checks every device against the messages sent: each entitled
// message delivered exactly once with the text and sender it was sent
// with, nothing else delivered, and the same final epoch everywhere. It
// fills the device reports, the totals and the failures.
func evaluate(sent []MessageReport, obs []observation, userOf map[string]string) ([]DeviceReport, Counts, []string) {
	bySeq := map[string]*MessageReport{}
	for i := range sent {
		bySeq[sent[i].ID] = &sent[i]
	}
	var reps []DeviceReport
	var tot Counts
	var fails []string
	for _, o := range obs {
		rep := DeviceReport{Device: o.device, Server: o.server, Counts: Counts{Resent: o.resent}, Epoch: o.epoch, EpochID: o.epochID, EpochAuthenticator: o.auth}
		expected := map[string]bool{}
		for _, m := range sent {
			if m.From == o.device {
				rep.Sent++
			}
			if slices.Contains(m.Entitled, o.device) {
				expected[m.ID] = true
			}
		}
		rep.Expected = len(expected)
		seen := map[string]bool{}
		var lines []Line
		for _, d := range o.deliveries {
			if seen[string(d.ID)] {
				rep.Duplicates++
				fails = append(fails, fmt.Sprintf("%s: message %s delivered more than once", o.device, short(string(d.ID))))
				continue
			}
			seen[string(d.ID)] = true
			m := bySeq[string(d.ID)]
			if m == nil || !expected[string(d.ID)] {
				rep.Unexpected++
				fails = append(fails, fmt.Sprintf("%s: received message %s (%q) it is not entitled to", o.device, short(string(d.ID)), d.Text()))
				continue
			}
			rep.Delivered++
			rep.ArrivalOrder = append(rep.ArrivalOrder, m.Seq)
			if got := d.Text(); got != m.Text {
				fails = append(fails, fmt.Sprintf("%s: message #%d reads %q, sent as %q", o.device, m.Seq, got, m.Text))
			}
			if want := userOf[m.From]; d.Sender != want {
				fails = append(fails, fmt.Sprintf("%s: message #%d from %s, sent by %s", o.device, m.Seq, d.Sender, want))
			}
			lines = append(lines, Line{Seq: m.Seq, ID: string(d.ID), Sender: d.Sender, Device: d.Device, Text: d.Text()})
		}
		for _, m := range sent {
			if expected[m.ID] && !seen[m.ID] {
				rep.Lost++
				fails = append(fails, fmt.Sprintf("%s: lost message #%d from %s (%q)", o.device, m.Seq, m.From, m.Text))
			}
		}
		slices.SortFunc(lines, func(a, b Line) int { return a.Seq - b.Seq })
		rep.Transcript = lines
		h := sha256.New()
		for _, l := range lines {
			rep.MessageIDs = append(rep.MessageIDs, l.ID)
			h.Write([]byte(l.ID))
			h.Write([]byte{'\n'})
		}
		rep.TranscriptDigest = hex.EncodeToString(h.Sum(nil))
		tot.add(rep.Counts)
		reps = append(reps, rep)
	}
	for _, r := range reps[min(1, len(reps)):] {
		if r.EpochID != reps[0].EpochID || r.Epoch != reps[0].Epoch {
			fails = append(fails, fmt.Sprintf("%s ends in epoch %d (%s), %s in epoch %d (%s)", r.Device, r.Epoch, short(r.EpochID), reps[0].Device, reps[0].Epoch, short(reps[0].EpochID)))
		}
		if r.EpochAuthenticator != reps[0].EpochAuthenticator {
			fails = append(fails, fmt.Sprintf("%s and %s disagree on the epoch_authenticator (%s vs %s)", r.Device, reps[0].Device, short(r.EpochAuthenticator), short(reps[0].EpochAuthenticator)))
		}
	}
	return reps, tot, fails
}

// short abbreviates a long ID for messages.
func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	if id == "" {
		return "(none)"
	}
	return id
}

// sameTranscripts groups devices by transcript digest, for the summary.
func sameTranscripts(reps []DeviceReport) [][]string {
	var order []string
	groups := map[string][]string{}
	for _, r := range reps {
		if _, ok := groups[r.TranscriptDigest]; !ok {
			order = append(order, r.TranscriptDigest)
		}
		groups[r.TranscriptDigest] = append(groups[r.TranscriptDigest], r.Device)
	}
	out := make([][]string, len(order))
	for i, d := range order {
		out[i] = groups[d]
	}
	return out
}

func joinDevices(ds []string) string { return strings.Join(ds, ", ") }
