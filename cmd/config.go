package cmd

import (
	"context"
	"fmt"

	"github.com/rhizome-chat/rhizome/node"
)

func configCommand() *Command {
	return &Command{
		Name:  "config",
		Short: "write or check a node configuration file",
		Long: `A node reads one configuration file: HuJSON (JSON that allows comments and
trailing commas) with a required "version" field. Unknown keys are errors
that name the key and its line, so a typo never goes unnoticed.`,
		Sub: []*Command{
			{
				Name:  "default",
				Usage: "config default",
				Short: "print the default configuration (loopback, data in ./rhizome-data)",
				Long: `Prints the configuration a node uses when started without --config.
Save it and edit it to run a node for others:

  rhizome config default > rhizome.hujson
  rhizome config check rhizome.hujson`,
				Run: func(_ context.Context, env *Env, args []string) error {
					if len(args) > 0 {
						return &UsageError{Cmd: "rhizome config default", Msg: "takes no arguments"}
					}
					_, err := env.Stdout.Write(node.MarshalConfig(node.DefaultConfig()))
					return err
				},
			},
			{
				Name:  "check",
				Usage: "config check FILE",
				Short: "validate a configuration file and print it with defaults filled in",
				Long: `Parses FILE strictly and validates every value. On success prints the
effective configuration (defaults filled in); on failure names the file,
line and key at fault and exits with status 1.`,
				Run: func(_ context.Context, env *Env, args []string) error {
					if len(args) != 1 {
						return &UsageError{Cmd: "rhizome config check", Msg: "needs exactly one FILE"}
					}
					cfg, err := node.LoadConfig(args[0])
					if err != nil {
						return err
					}
					fmt.Fprintf(env.Stderr, "%s: ok\n", args[0])
					_, err = env.Stdout.Write(node.MarshalConfig(cfg))
					return err
				},
			},
		},
	}
}
