package cmd

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/rhizome-chat/rhizome/client"
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

func allowCommand() *Command {
	var remove, list bool
	return clientCommand("allow", "allow [--remove] [--list] [USER]",
		"let a user invite you with fresh KeyPackages",
		`Allows USER (a name on your server, or a user URI such as
mimi://b.example/u/carol) to claim your devices' one-time KeyPackages.

Your server hands a one-time KeyPackage only to users who share a room
with you or whom you allowed; everyone else who invites you gets your
last-resort KeyPackage, which works but gives the first epoch of the new
room less forward secrecy (RFC 9420, section 16.8), and nobody can drain
your one-time KeyPackages. Allow the people you expect invitations from.

Examples:
  rhizome allow --dir bob alice
  rhizome allow --dir bob mimi://b.example/u/carol
  rhizome allow --dir bob --remove carol
  rhizome allow --dir bob --list`,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&remove, "remove", false, "withdraw the consent instead")
			fs.BoolVar(&list, "list", false, "list the users you allowed")
		}, [2]int{0, 1},
		func(ctx context.Context, env *Env, f *clientFlags, args []string) error {
			if list == (len(args) == 1) {
				return &UsageError{Cmd: "rhizome allow", Msg: "give a USER, or --list"}
			}
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				var allowed []string
				var err error
				switch {
				case list:
					allowed, err = c.Allowed(ctx)
				case remove:
					allowed, err = c.Disallow(ctx, args[0])
				default:
					allowed, err = c.Allow(ctx, args[0])
				}
				if err != nil {
					return err
				}
				return f.print(env.Stdout, map[string]any{"allowed": allowed}, func(w io.Writer) {
					if len(allowed) == 0 {
						fmt.Fprintln(w, "You have allowed nobody; users who share a room with you need no consent.")
						return
					}
					fmt.Fprintln(w, "Allowed to claim your one-time KeyPackages:")
					for _, u := range allowed {
						fmt.Fprintln(w, "  "+u)
					}
				})
			})
		})
}
