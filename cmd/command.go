package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/rhizome-chat/rhizome/node"
)

// Command is one node of the command tree: either a group of subcommands or
// a runnable command with its own flags.
type Command struct {
	// Name is the word that selects the command, e.g. "mls-vectors".
	Name string
	// Usage is the synopsis after "rhizome", e.g. "mls-vectors [--kind KIND] FILE...".
	Usage string
	// Short is a one-line summary shown in the parent's help.
	Short string
	// Long is the full help text: what it does, with examples.
	Long string
	// Flags declares the command's flags on fs; may be nil.
	Flags func(fs *flag.FlagSet)
	// Run executes the command with its positional arguments. It returns a
	// *UsageError for bad invocations, any other error for failures.
	Run func(ctx context.Context, env *Env, args []string) error
	// Sub holds subcommands; a command with Sub and no Run is a group.
	Sub []*Command
}

// Env is what a command may touch: its streams, environment and logger. Tests
// build one with buffers instead of the process's files.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads an environment variable.
	Getenv func(string) string
	// Log is the logger configured by the global --log-level flag.
	Log *slog.Logger
	// LogLevel is the level name the user asked for ("info" by default).
	LogLevel string
}

// UsageError reports a wrong invocation; the command's help tells the fix.
type UsageError struct {
	Cmd string // full command path, e.g. "rhizome mls-vectors"
	Msg string
}

func (e *UsageError) Error() string { return e.Cmd + ": " + e.Msg }

// ExitError ends a command with a specific exit status after it printed its
// own report (for example 1 when any vector failed).
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Root returns the whole command tree.
func Root() *Command {
	return &Command{
		Name:  "rhizome",
		Usage: "[--log-level LEVEL] COMMAND [ARGS...]",
		Short: "decentralized end-to-end encrypted group messaging",
		Long: `Rhizome runs a federated messaging node. Every room is a Merkle DAG of
signed events replicated among the servers of its members; MLS (RFC 9420)
keeps messages end-to-end encrypted, and a deterministic ordering layer
keeps rooms usable across network partitions and heals them afterwards.

Run "rhizome help COMMAND" or "rhizome COMMAND --help" for details.`,
		Sub: append([]*Command{
			versionCommand(),
			nodeCommand(),
			configCommand(),
			mlsVectorsCommand(),
			simCommand(),
			demoCommand(),
			adminCommand(),
		}, clientCommands()...),
	}
}

// Main runs the command line args (without the program name) and returns
// the process exit status: 0 success, 1 failure, 2 usage error.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	root := Root()
	fs := flag.NewFlagSet("rhizome", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, root, "rhizome", fs)
			return 0
		}
		fmt.Fprintf(stderr, "rhizome: %v\n\n", err)
		printHelp(stderr, root, "rhizome", fs)
		return 2
	}
	lg, err := node.NewLogger(stderr, *level, "text")
	if err != nil {
		fmt.Fprintf(stderr, "rhizome: --log-level: %v\n", err)
		return 2
	}
	env.Log, env.LogLevel = lg, *level
	rest := fs.Args()
	if len(rest) == 0 {
		printHelp(env.Stderr, root, "rhizome", fs)
		return 2
	}
	return dispatch(ctx, env, root, "rhizome", rest)
}

func dispatch(ctx context.Context, env *Env, c *Command, path string, args []string) int {
	if len(c.Sub) > 0 && (c.Run == nil || len(args) > 0 && !strings.HasPrefix(args[0], "-")) {
		if len(args) == 0 {
			printHelp(env.Stderr, c, path, nil)
			return 2
		}
		name := args[0]
		if name == "help" {
			return helpCommand(env, c, path, args[1:])
		}
		if name == "--help" || name == "-h" {
			printHelp(env.Stdout, c, path, nil)
			return 0
		}
		sub := find(c, name)
		if sub == nil {
			fmt.Fprintf(env.Stderr, "%s: unknown command %q%s\nRun \"%s --help\" for the list of commands.\n", path, name, suggest(c, name), path)
			return 2
		}
		return dispatch(ctx, env, sub, path+" "+sub.Name, args[1:])
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.Flags != nil {
		c.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(env.Stdout, c, path, fs)
			return 0
		}
		fmt.Fprintf(env.Stderr, "%s: %v\n\n", path, err)
		printHelp(env.Stderr, c, path, fs)
		return 2
	}
	err := c.Run(ctx, env, fs.Args())
	var ue *UsageError
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "%v\nUsage: rhizome %s\nRun \"%s --help\" for details.\n", err, c.Usage, path)
		return 2
	case errors.As(err, &ee):
		return ee.Code
	default:
		fmt.Fprintf(env.Stderr, "%s: %v\n", path, err)
		return 1
	}
}

func helpCommand(env *Env, c *Command, path string, args []string) int {
	for _, name := range args {
		sub := find(c, name)
		if sub == nil {
			fmt.Fprintf(env.Stderr, "%s help: unknown command %q%s\n", path, name, suggest(c, name))
			return 2
		}
		c, path = sub, path+" "+sub.Name
	}
	var fs *flag.FlagSet
	if c.Flags != nil {
		fs = flag.NewFlagSet(path, flag.ContinueOnError)
		c.Flags(fs)
	}
	printHelp(env.Stdout, c, path, fs)
	return 0
}

func find(c *Command, name string) *Command {
	for _, s := range c.Sub {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// suggest proposes a close command name for a typo.
func suggest(c *Command, name string) string {
	for _, s := range c.Sub {
		if strings.HasPrefix(s.Name, name) || strings.HasPrefix(name, s.Name) || editDistance(s.Name, name) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", s.Name)
		}
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func printHelp(w io.Writer, c *Command, path string, fs *flag.FlagSet) {
	usage := "rhizome " + c.Usage
	if c.Usage == "" || c.Name == "rhizome" && path != "rhizome" {
		usage = path + " COMMAND"
	}
	fmt.Fprintf(w, "Usage: %s\n\n", usage)
	if c.Long != "" {
		fmt.Fprintf(w, "%s\n\n", c.Long)
	} else if c.Short != "" {
		fmt.Fprintf(w, "%s\n\n", c.Short)
	}
	if len(c.Sub) > 0 {
		fmt.Fprintln(w, "Commands:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		subs := append([]*Command(nil), c.Sub...)
		sort.SliceStable(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
		for _, s := range subs {
			fmt.Fprintf(tw, "  %s\t%s\n", s.Name, s.Short)
			for _, ss := range s.Sub {
				fmt.Fprintf(tw, "    %s %s\t%s\n", s.Name, ss.Name, ss.Short)
			}
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if fs != nil {
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "Flags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
}
