package cmd

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/rhizome-chat/rhizome/internal/sim"
)

func simCommand() *Command {
	var seed uint64
	var seeds, jobs int
	var format, report string
	return &Command{
		Name:  "sim",
		Usage: "sim [--seed N] [--seeds K] [--format text|json|csv] [--report runs,summary] [--jobs J] [SCENARIO_FILE...]",
		Short: "simulate rooms across partitions and report how they heal",
		Long: `Runs the real ordering layer (hub election, sealing, certification, fork
choice) on many simulated servers and clients in one process, over a seeded
network with latency, loss, duplication, partitions, flapping links,
crashes, withheld branches, an equivocating hub and forged votes, and
checks the safety invariants and the scenario's expectations. The same
scenario and seed always give the same result, so any failure replays
exactly with --seed N --seeds 1.

Without a file it runs the built-in default scenario. Scenario files are
line-based ('#' starts a comment; hK is the server of rank K in the initial
hub order):

  name two-sides
  servers 5
  clients 5
  commit-every 100
  at 200 partition h0 h1 | h2 h3 h4
  at 2500 heal
  expect reorgs >= 1            # must hold in every run
  expect-some forks >= 1        # must hold in at least one run

internal/sim/testdata/*.txt holds the scenarios CI runs (500+ seeds each);
docs/consensus.md lists every keyword.

Each run reports (times in ticks): time to convergence after a heal (the
slowest heal of the run), forks, reorgs and the deepest one, the slowest
certification while the client's server was in a connected majority,
changes and extra commits, application messages sent, re-sent after their
epoch lost, and lost (must be 0). The summary gives, per scenario,
p50/p99/max over the seeds of convergence, certification, forks, reorg
depth and re-sent messages, and the totals. --report picks runs, summary
or both (the default).

Output: text prints the per-run table and the summary table; json prints
one report object per run, then one {"summary": {...}} object per
scenario; csv prints the per-run table, a blank line, then the summary
table.

Examples:
  rhizome sim
  rhizome sim --seeds 100 internal/sim/testdata/three-way.txt
  rhizome sim --seeds 500 --report summary internal/sim/testdata/*.txt
  rhizome sim --format csv --seeds 500 internal/sim/testdata/*.txt > runs.csv
  rhizome sim --seed 1234 internal/sim/testdata/hub-minority.txt   # replay one seed

The exit status is 1 if any run broke an invariant, lost a message or
failed an expectation; the failing scenario and seed are printed with the
command that replays it.`,
		Flags: func(fs *flag.FlagSet) {
			fs.Uint64Var(&seed, "seed", 1, "first seed")
			fs.IntVar(&seeds, "seeds", 1, "number of seeds to run per scenario (seed, seed+1, ...)")
			fs.StringVar(&format, "format", "text", "output: text (tables), json (one object per line) or csv")
			fs.StringVar(&report, "report", "runs,summary", "what to print: runs, summary, or both (comma-separated)")
			fs.IntVar(&jobs, "jobs", runtime.GOMAXPROCS(0), "runs to simulate in parallel")
		},
		Run: func(ctx context.Context, env *Env, args []string) error {
			usage := func(msg string) error { return &UsageError{Cmd: "rhizome sim", Msg: msg} }
			if seeds < 1 {
				return usage("--seeds must be at least 1")
			}
			if jobs < 1 {
				return usage("--jobs must be at least 1")
			}
			if format != "text" && format != "json" && format != "csv" {
				return usage(fmt.Sprintf("--format %q: use text, json or csv", format))
			}
			show := map[string]bool{}
			for _, part := range strings.Split(report, ",") {
				if part != "runs" && part != "summary" {
					return usage(fmt.Sprintf("--report %q: use runs, summary or runs,summary", report))
				}
				show[part] = true
			}
			scenarios, files, err := loadScenarios(args)
			if err != nil {
				return err
			}
			reports, err := runAll(ctx, env.Stderr, scenarios, seed, seeds, jobs, format != "text")
			if err != nil {
				return err
			}
			summaries := sim.Summarize(reports)
			if err := writeSim(env.Stdout, format, show, reports, summaries); err != nil {
				return err
			}
			failed := false
			for i, r := range reports {
				if r.Failed() {
					failed = true
					fmt.Fprintf(env.Stderr, "FAIL %s seed %d: %d violations, %d messages lost, %d branches held past deadline %v\n  replay: rhizome sim --seed %d %s\n",
						r.Scenario, r.Seed, len(r.Violations), r.MessagesLost, r.HeldPastDeadline, r.Violations, r.Seed, files[i/seeds])
				}
			}
			for i, sc := range scenarios {
				for _, msg := range sim.CheckSome(sc, reports[i*seeds:(i+1)*seeds]) {
					failed = true
					fmt.Fprintf(env.Stderr, "FAIL %s (the scenario lost its point)\n", msg)
				}
			}
			if failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

// runAll simulates every scenario over seeds first..first+n-1 on jobs
// workers and returns the reports in scenario, then seed, order. It stops
// handing out runs when ctx is cancelled (Ctrl-C) and returns its error.
func runAll(ctx context.Context, progress io.Writer, scenarios []sim.Scenario, first uint64, n, jobs int, showProgress bool) ([]sim.Report, error) {
	total := len(scenarios) * n
	reports := make([]sim.Report, total)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range min(jobs, total) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				reports[i] = sim.Run(scenarios[i/n], first+uint64(i%n))
				mu.Lock()
				done++
				if showProgress && total > 1 {
					fmt.Fprintf(progress, "\r%d/%d runs", done, total)
				}
				mu.Unlock()
			}
		}()
	}
	var err error
	for i := range total {
		if ctx.Err() == nil {
			select {
			case next <- i:
				continue
			case <-ctx.Done():
			}
		}
		err = fmt.Errorf("rhizome sim: interrupted after %d of %d runs: %w", i, total, ctx.Err())
		break
	}
	close(next)
	wg.Wait()
	if showProgress && total > 1 {
		fmt.Fprintln(progress)
	}
	return reports, err
}

// loadScenarios parses the scenario files and returns them with the path
// each came from (for replay commands).
func loadScenarios(paths []string) ([]sim.Scenario, []string, error) {
	if len(paths) == 0 {
		return []sim.Scenario{sim.DefaultScenario()}, []string{"(default scenario: no file)"}, nil
	}
	var out []sim.Scenario
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		sc, err := sim.ParseScenario(string(data))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		if sc.Name == "" {
			sc.Name = filepath.Base(p)
		}
		out = append(out, sc)
	}
	return out, paths, nil
}

var simColumns = []string{
	"scenario", "seed", "converged", "heals", "converge_ticks", "forks", "reorgs", "max_reorg_depth",
	"beyond_horizon", "max_certify_connected", "changes", "changes_certified", "extra_commits",
	"messages_sent", "messages_resent", "messages_lost", "packets_sent", "held_past_deadline", "violations",
}

func simRow(r sim.Report) []string {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := strconv.Itoa
	return []string{
		r.Scenario, u(r.Seed), strconv.FormatBool(r.Converged), i(r.Heals), u(r.ConvergeTicks), i(r.Forks), i(r.Reorgs),
		i(r.MaxReorgDepth), i(r.BeyondHorizon), u(r.MaxCertifyConnected), i(r.Changes), i(r.ChangesCertified),
		i(r.ExtraCommits), i(r.MessagesSent), i(r.MessagesResent), i(r.MessagesLost), i(r.PacketsSent),
		i(r.HeldPastDeadline), i(len(r.Violations)),
	}
}

var summaryColumns = []string{
	"scenario", "runs", "failed", "heals",
	"converge_p50", "converge_p99", "converge_max",
	"certify_connected_p50", "certify_connected_p99", "certify_connected_max",
	"forks_p50", "forks_p99", "forks_max", "forks_total", "reorgs_total",
	"reorg_depth_p50", "reorg_depth_p99", "reorg_depth_max", "beyond_horizon_total",
	"resent_p50", "resent_p99", "resent_max", "resent_total", "messages_sent_total", "messages_lost_total",
	"changes_total", "extra_commits_total", "max_final_term",
}

func summaryRow(s sim.Summary) []string {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := strconv.Itoa
	d := func(x sim.Dist) []string { return []string{u(x.P50), u(x.P99), u(x.Max)} }
	row := []string{s.Scenario, i(s.Runs), i(s.Failed), i(s.Heals)}
	row = append(row, d(s.ConvergeTicks)...)
	row = append(row, d(s.CertifyConnected)...)
	row = append(row, d(s.Forks)...)
	row = append(row, i(s.ForksTotal), i(s.ReorgsTotal))
	row = append(row, d(s.MaxReorgDepth)...)
	row = append(row, i(s.BeyondHorizon))
	row = append(row, d(s.MessagesResent)...)
	return append(row, i(s.MessagesResentTotal), i(s.MessagesSentTotal), i(s.MessagesLost),
		i(s.ChangesTotal), i(s.ExtraCommitsTotal), u(s.MaxFinalTerm))
}

func writeSim(w io.Writer, format string, show map[string]bool, reports []sim.Report, summaries []sim.Summary) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		if show["runs"] {
			for _, r := range reports {
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
		}
		if show["summary"] {
			for _, s := range summaries {
				if err := enc.Encode(struct {
					Summary sim.Summary `json:"summary"`
				}{s}); err != nil {
					return err
				}
			}
		}
		return nil
	case "csv":
		c := csv.NewWriter(w)
		if show["runs"] {
			c.Write(simColumns)
			for _, r := range reports {
				c.Write(simRow(r))
			}
		}
		if show["summary"] {
			if show["runs"] {
				c.Write(nil)
			}
			c.Write(summaryColumns)
			for _, s := range summaries {
				c.Write(summaryRow(s))
			}
		}
		c.Flush()
		return c.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	if show["runs"] {
		fmt.Fprintln(tw, "scenario\tseed\tconverged\theals\tconverge\tforks\treorgs\tmax depth\tcertify (majority)\tchanges certified\textra commits\tmsgs sent\tre-sent\tlost\tviolations\t")
		for _, r := range reports {
			fmt.Fprintf(tw, "%s\t%d\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%d\t%d\t%d\t\n", r.Scenario, r.Seed, r.Converged,
				r.Heals, r.ConvergeTicks, r.Forks, r.Reorgs, r.MaxReorgDepth, r.MaxCertifyConnected, r.ChangesCertified, r.Changes,
				r.ExtraCommits, r.MessagesSent, r.MessagesResent, r.MessagesLost, len(r.Violations))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if show["summary"] {
		if show["runs"] {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "Summary per scenario (ticks; p50/p99/max over runs):")
		fmt.Fprintln(tw, "scenario\truns\tfailed\tconverge after heal\tcertify (majority)\tforks\treorgs\tmax reorg depth\tre-sent\tlost\t")
		d := func(x sim.Dist) string { return fmt.Sprintf("%d/%d/%d", x.P50, x.P99, x.Max) }
		for _, s := range summaries {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s (%d)\t%d\t%s\t%s (%d)\t%d\t\n", s.Scenario, s.Runs, s.Failed,
				d(s.ConvergeTicks), d(s.CertifyConnected), d(s.Forks), s.ForksTotal, s.ReorgsTotal, d(s.MaxReorgDepth),
				d(s.MessagesResent), s.MessagesResentTotal, s.MessagesLost)
		}
		return tw.Flush()
	}
	return nil
}
