package cmd

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version; builds from a checkout say "dev".
var Version = "0.1.0-dev"

func versionCommand() *Command {
	return &Command{
		Name:  "version",
		Usage: "version",
		Short: "print the version of this build",
		Long: `Prints the Rhizome version, the Go toolchain it was built with, and the
source revision when the build recorded one.`,
		Run: func(_ context.Context, env *Env, args []string) error {
			if len(args) > 0 {
				return &UsageError{Cmd: "rhizome version", Msg: "takes no arguments"}
			}
			fmt.Fprintf(env.Stdout, "rhizome %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
						fmt.Fprintf(env.Stdout, "%s=%s\n", s.Key, s.Value)
					}
				}
			}
			return nil
		},
	}
}
