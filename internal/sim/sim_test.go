package sim

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/consensus"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "replay only this seed (every scenario unless -scenario is set)")
	seedsFlag = flag.Int("seeds", fixedSeeds, "fixed seeds per scenario: 1..N (plus two fresh seeds unless -seed is set)")
	scenFlag  = flag.String("scenario", "", "run only the scenario file with this name")
)

// fixedSeeds is how many fixed seeds (1..fixedSeeds) every scenario runs on
// each `go test`; two fresh seeds derived from the clock are added and
// printed. The bar is at least 500 per scenario.
const fixedSeeds = 500

// freshSeeds returns two new seeds for this test run, derived from the
// clock (the test, not the simulator, reads it).
var freshSeeds = func() [2]uint64 {
	n := uint64(time.Now().UnixNano())
	var out [2]uint64
	for i := range out {
		n = n*6364136223846793005 + 1442695040888963407
		out[i] = n>>20 | 1<<40
	}
	return out
}()

func seeds() []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	out := make([]uint64, 0, *seedsFlag+2)
	for i := range *seedsFlag {
		out = append(out, uint64(i+1))
	}
	return append(out, freshSeeds[0], freshSeeds[1])
}

func loadScenarios(t *testing.T) []Scenario {
	t.Helper()
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files in testdata (err %v)", err)
	}
	var out []Scenario
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ParseScenario(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".txt"); sc.Name != want {
			t.Fatalf("%s: scenario name %q, want the file name %q (replay commands use it)", f, sc.Name, want)
		}
		if *scenFlag == "" || *scenFlag == sc.Name {
			out = append(out, sc)
		}
	}
	return out
}

// round is one anti-entropy period plus the worst one-way latency: within
// a round every live server pulls once from some peer.
func round(sc Scenario) uint64 { return sc.SyncEvery + sc.LatencyMax }

// Bounds asserted by the property checks (docs/consensus.md, G4 and G5).
const (
	// convergeRounds bounds property 3 (and 5): after a fault ends, honest
	// servers' chains stop conflicting within this many rounds.
	convergeRounds = 20
	// certifyRounds is the slack of property 4's bound, in rounds.
	certifyRounds = 10
)

// certifyBound is property 4's bound in ticks: with a connected majority a
// change is certified within (f+1) seal timeouts, where f = n - quorum is
// the most hub candidates that can be outside the majority (each costs one
// term change), plus one tentative timeout (a change stuck on a tentative
// branch is re-proposed once the branch is undone) and certifyRounds
// rounds of message delay.
func certifyBound(sc Scenario) uint64 {
	p := sc.Params
	f := uint64(sc.Servers - (sc.Servers/2 + 1))
	return (f+1)*p.SealTimeout + p.TentativeTimeout + certifyRounds*round(sc)
}

// alwaysConnected names scenarios where every server is reachable and up the
// whole time, so property 4 applies to every change from its proposal on.
var alwaysConnected = map[string]bool{"steady": true, "forged": true}

// runTokens bounds the runs in progress to one per core across the
// parallel scenario subtests: the last scenarios still running share every
// core instead of finishing one seed at a time.
var runTokens = make(chan struct{}, runtime.GOMAXPROCS(0))

// TestScenarios runs every scenario file (internal/sim/testdata/*.txt) over
// seeds 1..500 plus two fresh seeds, scenarios in parallel and each
// scenario's seeds on every free core. Each run checks the invariants
// inside the simulator (property 2: no certified commit undone, one
// certificate per slot, every certificate canonical at the end;
// agreement; every change certified; no message lost; each server's chain
// equal to ForkChoice over the events it accepted) and, in checkReport,
// the bounds of properties 3, 4 and 5 and the scenario's expectations. A
// failing seed prints the commands that replay it.
func TestScenarios(t *testing.T) {
	scs := loadScenarios(t)
	ss := seeds()
	if *seedFlag == 0 {
		t.Logf("fresh seeds this run: %d %d (replay: go test ./internal/sim -run 'TestScenarios/NAME$' -seed=N)", freshSeeds[0], freshSeeds[1])
	}
	// Runs make short-lived garbage: a larger GC target saves a third of the
	// CPU. Cleanup, not defer: the parallel subtests run after this
	// function returns.
	old := debug.SetGCPercent(400)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			reports := make([]Report, len(ss))
			done := make([]bool, len(ss))
			var next, failures atomic.Int64
			var wg sync.WaitGroup
			for range cap(runTokens) {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= len(ss) || failures.Load() >= 5 {
							return
						}
						runTokens <- struct{}{}
						r := Run(sc, ss[i])
						<-runTokens
						reports[i], done[i] = r, true
						if !checkReport(t, sc, r) {
							failures.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if n := failures.Load(); n >= 5 {
				t.Fatalf("stopping %s after %d failing seeds", sc.Name, n)
			}
			ran := reports[:0]
			for i, r := range reports {
				if done[i] {
					ran = append(ran, r)
				}
			}
			if *seedFlag == 0 {
				for _, msg := range CheckSome(sc, ran) {
					t.Errorf("%s (the scenario lost its point)", msg)
				}
			}
			t.Log(summarize(sc, ran))
		})
	}
}

// summarize renders one line of aggregate figures for a scenario.
func summarize(sc Scenario, rs []Report) string {
	var forks, reorgs, depth, resent, lost, changes, extra int
	var conv, cert, term uint64
	for _, r := range rs {
		forks += r.Forks
		reorgs += r.Reorgs
		depth = max(depth, r.MaxReorgDepth)
		resent += r.MessagesResent
		lost += r.MessagesLost
		changes += r.Changes
		extra += r.ExtraCommits
		conv = max(conv, r.ConvergeTicks)
		cert = max(cert, r.MaxCertifyConnected)
		term = max(term, r.FinalTerm)
	}
	return fmt.Sprintf("%s: %d runs; max converge-after-heal %d ticks (bound %d); max certify-with-majority %d ticks (bound %d); forks %d, reorgs %d, max reorg depth %d; changes %d (+%d extra commits); messages re-sent %d, lost %d; max final term %d",
		sc.Name, len(rs), conv, convergeRounds*round(sc), cert, certifyBound(sc), forks, reorgs, depth, changes, extra, resent, lost, term)
}

// checkReport checks one run's report and reports whether it passed.
func checkReport(t *testing.T, sc Scenario, r Report) bool {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Helper()
		ok = false
		j, _ := json.Marshal(r)
		t.Errorf("scenario %s seed %d: %s\nreplay: go test ./internal/sim -run 'TestScenarios/%s$' -seed=%d -v\n    or: go run ./cmd/rhizome sim --seed %d internal/sim/testdata/%s.txt\nreport: %s",
			sc.Name, r.Seed, fmt.Sprintf(format, args...), sc.Name, r.Seed, r.Seed, sc.Name, j)
	}
	if len(r.Violations) > 0 {
		fail("invariants broken (property 2 and agreement checks): %s", strings.Join(r.Violations, "; "))
	}
	if r.MessagesLost != 0 {
		fail("%d messages lost", r.MessagesLost)
	}
	if r.EquivocatingSeals > 0 && r.EquivocationsDetected == 0 {
		fail("property 5: %d equivocating seals, none detected", r.EquivocatingSeals)
	}
	if sc.Name == "forged" && r.ForgedRejected+r.VotesRejected != r.ForgedInjected {
		fail("forged votes: injected %d, rejected %d by signature and %d by consensus", r.ForgedInjected, r.ForgedRejected, r.VotesRejected)
	}
	if sc.NoBounds {
		return ok
	}
	if b := convergeRounds * round(sc); r.ConvergeTicks > b {
		fail("property 3/5: chains conflicted %d ticks after a fault ended, bound %d (%d rounds)", r.ConvergeTicks, b, convergeRounds)
	}
	if b := certifyBound(sc); r.MaxCertifyConnected > b {
		fail("property 4: a change waited %d ticks with a connected majority, bound %d", r.MaxCertifyConnected, b)
	}
	if b := certifyBound(sc); r.MaxCertifyAfterHeal > b {
		fail("property 4: a change was certified %d ticks after the later of its proposal and the heal, bound %d", r.MaxCertifyAfterHeal, b)
	}
	if alwaysConnected[sc.Name] && r.MaxCertifyTicks > certifyBound(sc) {
		fail("property 4: a change took %d ticks to certify, bound %d", r.MaxCertifyTicks, certifyBound(sc))
	}
	return ok
}

// TestDeterministic checks that a seed fully determines a run.
func TestDeterministic(t *testing.T) {
	for _, sc := range loadScenarios(t) {
		if !strings.Contains("three-way equivocating-hub flapping", sc.Name) {
			continue
		}
		a, b := Run(sc, 42), Run(sc, 42)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two runs with seed 42 differ:\n%+v\n%+v", sc.Name, a, b)
		}
	}
}

// TestForkChoiceOrderIndependence is property 1 on realistic event sets:
// the union of all events of a partitioned, a three-way split and an
// equivocating-hub run, permuted and duplicated at random 1,000 times
// each, always yields the same canonical order, certified prefix, term and
// evidence. The first permutations are also stepped one event at a time
// into a fresh Machine, whose chain must be the same.
func TestForkChoiceOrderIndependence(t *testing.T) {
	scs := map[string]Scenario{}
	for _, s := range loadScenarios(t) {
		scs[s.Name] = s
	}
	for _, name := range []string{"three-way", "hub-minority", "equivocating-hub"} {
		sc, ok := scs[name]
		if !ok {
			t.Fatalf("scenario %s missing", name)
		}
		w := run(sc, 7)
		events := w.union()
		in := w.order
		want, errs := consensus.ForkChoice(in.room, in.root, in.membership, events)
		if len(errs) > 0 || want.Certified < 5 || w.rep.Forks == 0 {
			t.Fatalf("%s: weak event set: %d certified, %d forks, errors %v", name, want.Certified, w.rep.Forks, errs)
		}
		if name == "equivocating-hub" && len(want.Evidence) == 0 {
			t.Fatalf("%s: no evidence in the union", name)
		}
		rng := rand.New(rand.NewPCG(7, 7))
		for i := range 1000 {
			perm := slices.Clone(events)
			for range rng.IntN(len(events)/4 + 1) {
				perm = append(perm, events[rng.IntN(len(events))])
			}
			rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
			got, _ := consensus.ForkChoice(in.room, in.root, in.membership, perm)
			if !slices.Equal(got.Chain, want.Chain) || got.Certified != want.Certified || got.Term != want.Term || !reflect.DeepEqual(got.Evidence, want.Evidence) {
				t.Fatalf("%s: permutation %d changed the order: %d commits (%d certified, term %d, %d evidence) vs %d (%d, %d, %d)",
					name, i, len(got.Chain), got.Certified, got.Term, len(got.Evidence), len(want.Chain), want.Certified, want.Term, len(want.Evidence))
			}
			if i < 3 {
				m, err := consensus.New(consensus.Config{Room: in.room, Root: in.root, Self: consensus.ServerID{1},
					Membership: in.membership, Params: sc.Params})
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range perm {
					if _, err := m.Step(ev); err != nil {
						t.Fatalf("%s: step: %v", name, err)
					}
				}
				if !slices.Equal(m.Canonical(), want.Chain) || m.CertifiedLen() != want.Certified {
					t.Fatalf("%s: a machine stepped through permutation %d has another chain", name, i)
				}
			}
		}
		t.Logf("%s: %d events, chain of %d (%d certified), %d evidence, 1000 permutations agree", name, len(events), len(want.Chain), want.Certified, len(want.Evidence))
	}
}
