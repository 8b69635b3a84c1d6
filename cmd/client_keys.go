package cmd

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/rhizome-chat/rhizome/node/client"
)

func keyPackagesCommand() *Command {
	count := client.DefaultKeyPackages
	return clientCommand("keypackages", "keypackages [--count N]",
		"upload fresh KeyPackages so that others can invite this device",
		`Makes N fresh one-time KeyPackages and a new last-resort one, keeps their
private keys in the device directory and uploads them to your node.

Each invitation that reaches this device with consent (a room you share
with the inviter, or a user you allowed) consumes one one-time KeyPackage;
without one, inviters get the last-resort KeyPackage, which gives the
first epoch less forward secrecy. Run this after being invited a few times,
or when the node reports few KeyPackages left. The node keeps at most 200
one-time KeyPackages per device.

Example:
  rhizome keypackages --dir alice --count 50`,
		func(fs *flag.FlagSet) {
			fs.IntVar(&count, "count", count, "how many one-time KeyPackages to make and upload (0 to 200)")
		}, [2]int{0, 0},
		func(ctx context.Context, env *Env, f *clientFlags, _ []string) error {
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				held, err := c.UploadKeyPackages(ctx, count)
				if err != nil {
					return err
				}
				return f.print(env.Stdout, map[string]any{"uploaded": count, "held": held}, func(w io.Writer) {
					fmt.Fprintf(w, "Uploaded %d KeyPackages; the node now holds %d one-time KeyPackages for this device.\n", count, held)
				})
			})
		})
}
