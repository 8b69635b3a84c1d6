package sim

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/consensus"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "replay only this seed (every scenario unless -scenario is set)")
	seedsFlag = flag.Int("seeds", 0, "long run: this many seeds per scenario (starting at 1) instead of the fixed set")
	scenFlag  = flag.String("scenario", "", "run only the scenario file with this name")
)

// fixedSeeds run on every `go test`; two fresh seeds are added and printed.
var fixedSeeds = []uint64{1, 2, 3, 4, 5, 6}

func seeds(t *testing.T) []uint64 {
	switch {
	case *seedFlag != 0:
		return []uint64{*seedFlag}
	case *seedsFlag > 0:
		out := make([]uint64, *seedsFlag)
		for i := range out {
			out[i] = uint64(i + 1)
		}
		return out
	}
	out := slices.Clone(fixedSeeds)
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s := binary.LittleEndian.Uint64(b[8*i:]) | 1<<40
		t.Logf("fresh seed %d (replay with -seed=%d)", s, s)
		out = append(out, s)
	}
	return out
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
		if *scenFlag == "" || *scenFlag == sc.Name {
			out = append(out, sc)
		}
	}
	return out
}

// round is one anti-entropy period plus the worst one-way latency: within
// a round every live server pulls once from some peer.
func round(sc Scenario) uint64 { return sc.SyncEvery + sc.LatencyMax }

// Bounds asserted by the property tests, in rounds (see docs/consensus.md).
const (
	convergeRounds = 20 // property 3: conflicting chains after the last heal
	certifyRounds  = 10 // property 4: extra rounds after the timeouts
)

func certifyBound(sc Scenario) uint64 {
	p := sc.Params
	return 2*p.SealTimeout + p.TentativeTimeout + certifyRounds*round(sc)
}

// alwaysConnected names scenarios where every server is reachable and up the
// whole time, so property 4 applies to every change from its proposal on.
var alwaysConnected = map[string]bool{"steady": true, "forged": true}

// TestScenarios runs every scenario file over the seed set and checks the
// invariants and properties 2 to 5 of docs/consensus.md.
func TestScenarios(t *testing.T) {
	scs := loadScenarios(t)
	ss := seeds(t)
	type agg struct {
		runs, forks, reorgs, maxDepth, beyond, resent, extra, msgs, changes, lost int
		terms                                                                     uint64
		maxConverge, maxCertify                                                   uint64
	}
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			var a agg
			for _, seed := range ss {
				r := Run(sc, seed)
				checkReport(t, sc, r)
				a.runs++
				a.forks += r.Forks
				a.reorgs += r.Reorgs
				a.maxDepth = max(a.maxDepth, r.MaxReorgDepth)
				a.beyond += r.BeyondHorizon
				a.msgs += r.MessagesSent
				a.lost += r.MessagesLost
				a.changes += r.Changes
				a.terms = max(a.terms, r.FinalTerm)
				a.resent += r.MessagesResent
				a.extra += r.ExtraCommits
				a.maxConverge = max(a.maxConverge, r.ConvergeTicks)
				a.maxCertify = max(a.maxCertify, r.MaxCertifyAfterHeal)
			}
			t.Logf("%s: %d seeds, forks %d, reorgs %d, max reorg depth %d (beyond horizon %d), max converge %d ticks, max certify-after-heal %d ticks, changes %d (+%d extra commits), messages %d (re-sent %d, lost %d), max final term %d",
				sc.Name, a.runs, a.forks, a.reorgs, a.maxDepth, a.beyond, a.maxConverge, a.maxCertify, a.changes, a.extra, a.msgs, a.resent, a.lost, a.terms)
		})
	}
}

func checkReport(t *testing.T, sc Scenario, r Report) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		j, _ := json.Marshal(r)
		t.Errorf("scenario %s seed %d: "+format+"\nreplay: go test ./internal/sim -run 'TestScenarios/%s$' -seed=%d\nreport: %s",
			append(append([]any{sc.Name, r.Seed}, args...), sc.Name, r.Seed, j)...)
	}
	if len(r.Violations) > 0 {
		fail("invariants broken: %s", strings.Join(r.Violations, "; "))
	}
	if r.MessagesLost != 0 {
		fail("%d messages lost", r.MessagesLost)
	}
	if sc.NoBounds {
		return
	}
	if b := convergeRounds * round(sc); r.ConvergeTicks > b && !strings.Contains(sc.Name, "equivocat") {
		fail("property 3: converged %d ticks after heal, bound %d", r.ConvergeTicks, b)
	}
	if b := certifyBound(sc); r.MaxCertifyAfterHeal > b {
		fail("property 4: a change was certified %d ticks after the later of its proposal and the heal, bound %d", r.MaxCertifyAfterHeal, b)
	}
	if alwaysConnected[sc.Name] {
		if r.MaxCertifyTicks > certifyBound(sc) {
			fail("property 4: a change took %d ticks to certify, bound %d", r.MaxCertifyTicks, certifyBound(sc))
		}
		if r.Reorgs != 0 {
			fail("%d reorgs in a connected room", r.Reorgs)
		}
	}
	if sc.Name == "forged" {
		if r.ForgedInjected == 0 || r.ForgedRejected+r.VotesRejected != r.ForgedInjected {
			fail("forged votes: injected %d, rejected %d by signature and %d by consensus", r.ForgedInjected, r.ForgedRejected, r.VotesRejected)
		}
	}
	if sc.Name == "deep-reorg" && (r.BeyondHorizon == 0 || r.MaxReorgDepth <= sc.Params.Horizon) {
		fail("scenario lost its point: max reorg depth %d, %d beyond-horizon reorgs (horizon %d)", r.MaxReorgDepth, r.BeyondHorizon, sc.Params.Horizon)
	}
	if r.EquivocatingSeals > 0 && r.EquivocationsDetected == 0 {
		fail("property 5: %d equivocating seals, none detected", r.EquivocatingSeals)
	}
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
// the union of all events of partitioned runs, permuted and duplicated at
// random 1,000 times, always yields the same canonical order.
func TestForkChoiceOrderIndependence(t *testing.T) {
	for _, name := range []string{"three-way", "hub-minority", "equivocating-hub"} {
		var sc Scenario
		for _, s := range loadScenarios(t) {
			if s.Name == name {
				sc = s
			}
		}
		if sc.Name == "" {
			continue
		}
		w := run(sc, 7)
		events := w.union()
		want, _ := consensus.ForkChoice([]byte(roomID), w.root, w.membership, events)
		if len(want.Chain) == 0 {
			t.Fatalf("%s: empty chain", name)
		}
		rng := rand.New(rand.NewPCG(7, 7))
		for i := range 1000 {
			perm := slices.Clone(events)
			for range rng.IntN(len(events)/4 + 1) {
				perm = append(perm, events[rng.IntN(len(events))])
			}
			rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
			got, _ := consensus.ForkChoice([]byte(roomID), w.root, w.membership, perm)
			if !slices.Equal(got.Chain, want.Chain) || got.Certified != want.Certified || got.Term != want.Term {
				t.Fatalf("%s: permutation %d changed the order: %d commits (%d certified, term %d) vs %d (%d, %d)",
					name, i, len(got.Chain), got.Certified, got.Term, len(want.Chain), want.Certified, want.Term)
			}
		}
		t.Logf("%s: %d events, chain of %d, 1000 permutations agree", name, len(events), len(want.Chain))
	}
}
