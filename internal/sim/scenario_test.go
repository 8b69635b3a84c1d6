package sim

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseScenario(t *testing.T) {
	hub := HubOrder(5)
	sc, err := ParseScenario(`
# comment
name demo
servers 5
latency 2 9
loss 7
seal-timeout 99
at 10 partition h0 1 | h2
at 20 flap 0 h1 5 100
at 30 withhold 3 50
at 40 heal   # trailing comment
at 50 crash h4
`)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "demo" || sc.LatencyMin != 2 || sc.LatencyMax != 9 || sc.LossPermille != 7 || sc.Params.SealTimeout != 99 {
		t.Errorf("settings not applied: %+v", sc)
	}
	want := []Step{
		{At: 10, Op: OpPartition, Groups: [][]int{{hub[0], 1}, {hub[2]}}},
		{At: 20, Op: OpFlap, Server: 0, Peer: hub[1], Period: 5, Until: 100},
		{At: 30, Op: OpWithhold, Server: 3, Until: 50},
		{At: 40, Op: OpHeal},
		{At: 50, Op: OpCrash, Server: hub[4]},
	}
	if !reflect.DeepEqual(sc.Steps, want) {
		t.Errorf("steps = %+v\nwant %+v", sc.Steps, want)
	}
	bad := []struct{ name, text string }{
		{"no name", "servers 3"},
		{"unknown directive", "name x\nfrobnicate 3"},
		{"server out of range", "name x\nservers 3\nat 5 crash 3"},
		{"hub rank out of range", "name x\nservers 3\nat 5 crash h3"},
		{"unknown op", "name x\nat 5 explode 1"},
		{"flap arity", "name x\nat 5 flap 1 2"},
		{"crash arity", "name x\nat 5 crash 1 2"},
		{"latency order", "name x\nlatency 5 2"},
		{"bad number", "name x\nticks many"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseScenario(tc.text); !errors.Is(err, ErrScenario) {
				t.Errorf("err = %v, want ErrScenario", err)
			}
		})
	}
}

// TestReportJSON checks that a report marshals with the documented keys.
func TestReportJSON(t *testing.T) {
	sc := DefaultScenario()
	sc.Name, sc.Ticks, sc.Settle = "tiny", 300, 1000
	r := Run(sc, 3)
	if len(r.Violations) > 0 {
		t.Fatalf("violations: %v", r.Violations)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"converge_ticks", "forks", "max_reorg_depth", "messages_resent", "extra_commits", "messages_lost"} {
		if !strings.Contains(string(b), `"`+key+`"`) {
			t.Errorf("report JSON lacks %q: %s", key, b)
		}
	}
	if r.Changes == 0 || r.ChangesCertified != r.Changes || r.MessagesSent == 0 {
		t.Errorf("tiny run did no work: %+v", r)
	}
}
