package cmd

import (
	"context"
	"flag"

	"github.com/rhizome-chat/rhizome/node"
)

func nodeCommand() *Command {
	var configPath, dataDir string
	return &Command{
		Name:  "node",
		Usage: "node [--config FILE] [--data-dir DIR]",
		Short: "run a Rhizome server",
		Long: `Runs a Rhizome server until interrupted (Ctrl-C or SIGTERM), then shuts
down gracefully, stopping components in reverse start order.

Without --config it uses the embedded default: loopback addresses only and
data under ./rhizome-data, which is what you want to try Rhizome on one
machine. To run a node for others, write a config file and edit it:

  rhizome config default > rhizome.hujson
  rhizome node --config rhizome.hujson

The server's identity key is created on first start in DATA_DIR/identity.pem
(mode 0600); back it up: it is the server's identity in the federation.
Operations endpoints (on metrics.listen, default 127.0.0.1:8601):
/healthz, /readyz and /metrics (Prometheus).`,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&configPath, "config", "", "configuration `FILE` (HuJSON); default: the embedded loopback configuration")
			fs.StringVar(&dataDir, "data-dir", "", "data `DIR` overriding the configuration's data_dir")
		},
		Run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) > 0 {
				return &UsageError{Cmd: "rhizome node", Msg: "takes no positional arguments (did you mean --config FILE?)"}
			}
			cfg := node.DefaultConfig()
			if configPath != "" {
				var err error
				if cfg, err = node.LoadConfig(configPath); err != nil {
					return err
				}
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			level := cfg.Log.Level
			if env.LogLevel != "" && env.LogLevel != "info" {
				level = env.LogLevel // an explicit --log-level wins over the file
			}
			log, err := node.NewLogger(env.Stderr, level, cfg.Log.Format)
			if err != nil {
				return err
			}
			n, err := node.New(cfg, log)
			if err != nil {
				return err
			}
			return n.Run(ctx)
		},
	}
}
