package cmd

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rhizome-chat/rhizome/mls/conformance"
)

func mlsVectorsCommand() *Command {
	var kind string
	var verbose bool
	return &Command{
		Name:  "mls-vectors",
		Usage: "mls-vectors [--kind KIND] [-v] FILE...",
		Short: "check this build's MLS against official RFC 9420 test-vector files",
		Long: `Runs MLS working group test-vector files (the JSON formats of
mlswg/mls-implementations, test-vectors.md) against Rhizome's MLS
implementation and prints, for each file:

  NAME: P passed, F failed, S skipped (reason)

and last a total line "P passed, F failed". The exit status is 1 if any
case failed. The format is inferred from the file name (secret-tree.json,
passive-client-random.json, ...); name it with --kind when the file is
called something else, e.g.:

  rhizome mls-vectors --kind passive-client my-commits.json

Kinds: crypto-basics, tree-math, key-schedule, psk_secret, secret-tree,
message-protection, transcript-hashes, messages, deserialization, welcome,
tree-validation, tree-operations, treekem, passive-client.
The official files ship in mls/testdata/mlswg/.`,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&kind, "kind", "", "vector format of every FILE (default: inferred from each file name)")
			fs.BoolVar(&verbose, "v", false, "print each failed case")
		},
		Run: func(_ context.Context, env *Env, args []string) error {
			if len(args) == 0 {
				return &UsageError{Cmd: "rhizome mls-vectors", Msg: "needs at least one FILE"}
			}
			var forced conformance.Kind
			if kind != "" {
				k, err := conformance.ParseKind(kind)
				if err != nil {
					return &UsageError{Cmd: "rhizome mls-vectors", Msg: err.Error()}
				}
				forced = k
			}
			var passed, failed int
			broken := false
			for _, path := range args {
				name := filepath.Base(path)
				k := forced
				if k == "" {
					var err error
					if k, err = conformance.KindFromFileName(path); err != nil {
						fmt.Fprintf(env.Stdout, "%s: error: %v\n", name, err)
						broken = true
						continue
					}
				}
				data, err := os.ReadFile(path)
				if err != nil {
					fmt.Fprintf(env.Stdout, "%s: error: %v\n", name, err)
					broken = true
					continue
				}
				res, err := conformance.Run(k, data)
				if err != nil {
					fmt.Fprintf(env.Stdout, "%s: error: %v\n", name, err)
					broken = true
					continue
				}
				line := fmt.Sprintf("%s: %d passed, %d failed, %d skipped", name, res.Passed, res.Failed, res.Skipped)
				if res.Skipped > 0 {
					line += " (" + res.SkipSummary() + ")"
				}
				fmt.Fprintln(env.Stdout, line)
				if verbose {
					for _, f := range res.Failures {
						fmt.Fprintf(env.Stdout, "  FAIL %s\n", f)
					}
				}
				passed += res.Passed
				failed += res.Failed
			}
			fmt.Fprintf(env.Stdout, "%d passed, %d failed\n", passed, failed)
			if failed > 0 || broken {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}
