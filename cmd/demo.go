package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/rhizome-chat/rhizome/internal/demo"
	"github.com/rhizome-chat/rhizome/node"
)

func demoCommand() *Command {
	var dir string
	var keep, asJSON, verbose bool
	var seed uint64
	return &Command{
		Name:  "demo",
		Usage: "demo [--dir DIR] [--keep] [--seed N] [--json] [-v]",
		Short: "run three servers and five devices through a partition and show that nothing is lost",
		Long: `Shows in one command what Rhizome does. In this process it starts three
real servers on loopback (alpha, beta, gamma: badger storage on disk, libp2p
over TCP, the client API over HTTP) and five devices with their own keys and
state: alice (alpha), bob with a phone and a laptop (beta), carol (gamma)
and dave (alpha). Then:

  1. alice creates an end-to-end encrypted room on all three servers and
     invites bob (both devices in one MLS commit) and carol; everyone talks.
  2. gamma is cut off from the federation. Both sides keep talking: carol
     alone on gamma, the others on alpha and beta, where alice also adds
     dave (a commit the majority side can certify).
  3. The partition heals. The demo waits until every device holds every
     message it is entitled to and the same epoch, and measures how long
     that took; then everyone talks once more.

It prints progress while it runs, then the converged transcripts (one row
per message, one column per device) and a summary table per device:
messages sent, delivered, re-sent, lost, duplicates, epoch and
epoch_authenticator. Devices hold a message when they were members of the
epoch it was sent in: dave sees what was sent after he joined.

The exit status is 0 only if every check passed: nothing lost, every
message exactly once on every device entitled to it, the same ordered list
of message IDs, the same epoch_authenticator everywhere, and dave in the
room on every device.

Examples:
  rhizome demo
  rhizome demo --seed 7 --json > report.json
  rhizome demo --dir /tmp/rhizome-demo --keep -v`,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dir, "dir", "", "`DIR` for the servers' and devices' data (must be new or empty; kept); default: a new temporary folder, removed at the end")
			fs.BoolVar(&keep, "keep", false, "keep the temporary data folder (to look at the badger stores afterwards)")
			fs.Uint64Var(&seed, "seed", 1, "seed for the message texts and the order in which devices speak (keys always come from crypto/rand)")
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout (progress goes to stderr)")
			fs.BoolVar(&verbose, "v", false, "show the servers' logs on stderr")
		},
		Run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) > 0 {
				return &UsageError{Cmd: "rhizome demo", Msg: "takes no arguments"}
			}
			out := env.Stdout
			if asJSON {
				out = env.Stderr
			}
			removeAtEnd := false
			if dir == "" {
				d, err := os.MkdirTemp("", "rhizome-demo-")
				if err != nil {
					return fmt.Errorf("create a temporary folder: %w", err)
				}
				dir, removeAtEnd = d, !keep
			} else if err := checkEmptyDir(dir); err != nil {
				return &UsageError{Cmd: "rhizome demo", Msg: err.Error()}
			}
			log := slog.New(slog.DiscardHandler)
			if verbose {
				level := env.LogLevel
				if level == "" {
					level = "info"
				}
				l, err := node.NewLogger(env.Stderr, level, "text")
				if err != nil {
					return err
				}
				log = l
			}
			fmt.Fprintf(out, "Rhizome demo: data in %s\n", dir)
			rep, err := demo.Run(ctx, demo.Options{Dir: dir, Out: out, Seed: seed, Log: log})
			if removeAtEnd {
				if rerr := os.RemoveAll(dir); rerr != nil {
					fmt.Fprintf(env.Stderr, "rhizome demo: remove %s: %v\n", dir, rerr)
				}
			} else {
				fmt.Fprintf(out, "data kept in %s\n", dir)
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(rep); jerr != nil {
					return jerr
				}
			}
			switch {
			case err == nil:
				return nil
			case errors.Is(err, demo.ErrChecksFailed):
				return &ExitError{Code: 1} // the summary lists the failures
			case ctx.Err() != nil:
				return fmt.Errorf("interrupted: %w", ctx.Err())
			default:
				return err
			}
		},
	}
}

// checkEmptyDir accepts a folder that does not exist yet or is empty.
func checkEmptyDir(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--dir %s: %v", dir, err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err == nil {
		return fmt.Errorf("--dir %s is not empty: give a new or empty folder (the demo registers new users and must not reuse old state)", dir)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("--dir %s: %v", dir, err)
	}
	return nil
}
