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

// TestSummarize checks the aggregate against hand-computed figures:
// nearest-rank percentiles over 100 runs with converge times 1..100.
func TestSummarize(t *testing.T) {
	var rs []Report
	for i := range 100 {
		rs = append(rs, Report{Scenario: "a", ConvergeTicks: uint64(100 - i), Forks: i % 2, MessagesResent: 3, MaxReorgDepth: i / 10})
	}
	rs = append(rs, Report{Scenario: "b", ConvergeTicks: 7, MessagesLost: 2}, Report{Scenario: "b", ConvergeTicks: 9, Violations: []string{"x"}})
	got := Summarize(rs)
	if len(got) != 2 || got[0].Scenario != "a" || got[1].Scenario != "b" {
		t.Fatalf("scenarios: %+v", got)
	}
	a, b := got[0], got[1]
	if a.Runs != 100 || a.ConvergeTicks != (Dist{P50: 50, P99: 99, Max: 100}) {
		t.Errorf("a: runs %d, converge %+v; want 100, {50 99 100}", a.Runs, a.ConvergeTicks)
	}
	if a.ForksTotal != 50 || a.Forks != (Dist{P50: 0, P99: 1, Max: 1}) || a.MaxReorgDepth != (Dist{P50: 4, P99: 9, Max: 9}) {
		t.Errorf("a: forks %d %+v, depth %+v", a.ForksTotal, a.Forks, a.MaxReorgDepth)
	}
	if a.MessagesResentTotal != 300 || a.MessagesResent.P99 != 3 || a.Failed != 0 {
		t.Errorf("a: resent %d %+v, failed %d", a.MessagesResentTotal, a.MessagesResent, a.Failed)
	}
	if b.Runs != 2 || b.Failed != 2 || b.MessagesLost != 2 || b.ConvergeTicks != (Dist{P50: 7, P99: 9, Max: 9}) {
		t.Errorf("b: %+v", b)
	}
}

// TestExpectations checks the expect and expect-some directives.
func TestExpectations(t *testing.T) {
	sc, err := ParseScenario("name x\nexpect reorgs >= 2\nexpect-some forks == 1\nexpect converged == 1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Expectation{{Key: "reorgs", Op: ">=", Value: 2}, {Key: "forks", Op: "==", Value: 1, Some: true}, {Key: "converged", Op: "==", Value: 1}}
	if !reflect.DeepEqual(sc.Expect, want) {
		t.Fatalf("parsed %+v, want %+v", sc.Expect, want)
	}
	if ok, v := sc.Expect[0].Holds(Report{Reorgs: 1}); ok || v != 1 {
		t.Errorf("reorgs >= 2 held for 1")
	}
	if ok, _ := sc.Expect[2].Holds(Report{Converged: true}); !ok {
		t.Errorf("converged == 1 failed for a converged run")
	}
	if msgs := CheckSome(sc, []Report{{Forks: 0}, {Forks: 2}}); len(msgs) != 1 {
		t.Errorf("expect-some forks == 1 over forks 0 and 2: %v", msgs)
	}
	if msgs := CheckSome(sc, []Report{{Forks: 0}, {Forks: 1}}); len(msgs) != 0 {
		t.Errorf("expect-some forks == 1 over forks 0 and 1: %v", msgs)
	}
	for _, bad := range []string{"expect nosuch >= 1", "expect reorgs ~ 1", "expect reorgs >= x", "expect reorgs >="} {
		if _, err := ParseScenario("name x\n" + bad); !errors.Is(err, ErrScenario) {
			t.Errorf("%q: err = %v, want ErrScenario", bad, err)
		}
	}
}
