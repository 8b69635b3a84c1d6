package demo

import (
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/client"
	"github.com/rhizome-chat/rhizome/internal/mimicontent"
)

// delivery builds a delivery of a text message as a device would report it.
func delivery(t *testing.T, id, user, text string) client.Delivery {
	t.Helper()
	c := mimicontent.NewText(user, "mimi://a.test/r/x", text, [16]byte{})
	raw, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return client.Delivery{ID: client.MessageID(id), Sender: user, Raw: raw}
}

// TestEvaluate checks that the evaluation finds each kind of failure the
// demo must report, and passes a clean run.
func TestEvaluate(t *testing.T) {
	const alice, bob = "mimi://a.test/u/alice", "mimi://b.test/u/bob"
	sent := []MessageReport{
		{Seq: 1, ID: "01", From: "alice/phone", Text: "one", Entitled: []string{"alice/phone", "bob/phone"}},
		{Seq: 2, ID: "02", From: "bob/phone", Text: "two", Entitled: []string{"alice/phone", "bob/phone"}},
		{Seq: 3, ID: "03", From: "bob/phone", Text: "three", Entitled: []string{"bob/phone"}},
	}
	userOf := map[string]string{"alice/phone": alice, "bob/phone": bob}
	good := func(t *testing.T) []observation {
		return []observation{
			{device: "alice/phone", deliveries: []client.Delivery{delivery(t, "02", bob, "two"), delivery(t, "01", alice, "one")}, epochID: "E", epoch: 1, auth: "aa"},
			{device: "bob/phone", deliveries: []client.Delivery{delivery(t, "01", alice, "one"), delivery(t, "02", bob, "two"), delivery(t, "03", bob, "three")}, epochID: "E", epoch: 1, auth: "aa"},
		}
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, obs []observation)
		want   string // substring of a failure; "" for none
		check  func(t *testing.T, reps []DeviceReport, tot Counts)
	}{
		{name: "clean", mutate: func(*testing.T, []observation) {}, check: func(t *testing.T, reps []DeviceReport, tot Counts) {
			if tot != (Counts{Sent: 3, Expected: 5, Delivered: 5}) {
				t.Errorf("totals %+v", tot)
			}
			if reps[0].TranscriptDigest == reps[1].TranscriptDigest || reps[0].Transcript[0].Seq != 1 {
				t.Errorf("reports %+v", reps)
			}
			if got := reps[0].ArrivalOrder; len(got) != 2 || got[0] != 2 || got[1] != 1 {
				t.Errorf("alice's arrival order %v, want [2 1]", got)
			}
		}},
		{name: "lost", mutate: func(t *testing.T, obs []observation) { obs[0].deliveries = obs[0].deliveries[:1] }, want: "alice/phone: lost message #1"},
		{name: "duplicate", mutate: func(t *testing.T, obs []observation) {
			obs[1].deliveries = append(obs[1].deliveries, delivery(t, "02", bob, "two"))
		}, want: "bob/phone: message 02 delivered more than once"},
		{name: "not entitled", mutate: func(t *testing.T, obs []observation) {
			obs[0].deliveries = append(obs[0].deliveries, delivery(t, "03", bob, "three"))
		}, want: "not entitled"},
		{name: "never sent", mutate: func(t *testing.T, obs []observation) {
			obs[0].deliveries = append(obs[0].deliveries, delivery(t, "99", bob, "forged"))
		}, want: "not entitled"},
		{name: "wrong text", mutate: func(t *testing.T, obs []observation) { obs[0].deliveries[0] = delivery(t, "02", bob, "2") }, want: `reads "2", sent as "two"`},
		{name: "wrong sender", mutate: func(t *testing.T, obs []observation) { obs[0].deliveries[0] = delivery(t, "02", alice, "two") }, want: "from mimi://a.test/u/alice, sent by mimi://b.test/u/bob"},
		{name: "other epoch", mutate: func(t *testing.T, obs []observation) { obs[1].epochID, obs[1].epoch = "F", 2 }, want: "ends in epoch 2"},
		{name: "other authenticator", mutate: func(t *testing.T, obs []observation) { obs[1].auth = "bb" }, want: "disagree on the epoch_authenticator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := good(t)
			tt.mutate(t, obs)
			reps, tot, fails := evaluate(sent, obs, userOf)
			if tt.want == "" && len(fails) > 0 {
				t.Fatalf("failures %v, want none", fails)
			}
			if tt.want != "" && !strings.Contains(strings.Join(fails, "\n"), tt.want) {
				t.Fatalf("failures %v, want one with %q", fails, tt.want)
			}
			if tt.check != nil {
				tt.check(t, reps, tot)
			}
		})
	}
}
