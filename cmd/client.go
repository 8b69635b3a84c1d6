package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/rhizome-chat/rhizome/client"
)

// Client commands: a person at a terminal (or a script, with --json) using
// one device whose state lives in a directory (client).

// defaultClientDir is where the device state lives unless $RHIZOME_CLIENT_DIR
// or --dir says otherwise.
const defaultClientDir = "./rhizome-client"

// catchUpIdle is how long a command waits for a quiet stream before acting.
const catchUpIdle = 700 * time.Millisecond

// clientFlags are the flags every client command has. Flags may come
// before, between or after the positional arguments.
type clientFlags struct {
	fs   *flag.FlagSet
	dir  string
	json bool
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.dir, "dir", "", "device state directory (default $RHIZOME_CLIENT_DIR, else "+defaultClientDir+")")
	fs.BoolVar(&f.json, "json", false, "print JSON (one object per line) for scripts")
}

// positional parses flags interleaved with positional arguments and returns
// the positional ones.
func (f *clientFlags) positional(args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if strings.HasPrefix(args[0], "-") && args[0] != "-" {
			if err := f.fs.Parse(args); err != nil {
				return nil, err
			}
			args = f.fs.Args()
			continue
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, nil
}

func (f *clientFlags) resolveDir(env *Env) string {
	if f.dir != "" {
		return f.dir
	}
	if d := env.Getenv("RHIZOME_CLIENT_DIR"); d != "" {
		return d
	}
	return defaultClientDir
}

// open opens the device in its directory; unless registering, the
// directory must hold a registered device, and the client catches up with
// its stream first.
func (f *clientFlags) open(ctx context.Context, env *Env, registering bool) (*client.Client, error) {
	dir := f.resolveDir(env)
	if !registering {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("not registered: no device state in %s: run rhizome register --server URL --user NAME --device NAME first (or pass --dir / set RHIZOME_CLIENT_DIR)", dir)
		}
	}
	c, err := client.Open(dir, client.Options{})
	if err != nil {
		return nil, err
	}
	if registering {
		return c, nil
	}
	if _, err := c.Whoami(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w (directory %s)", err, dir)
	}
	if err := c.CatchUp(ctx, catchUpIdle); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (f *clientFlags) print(w io.Writer, v any, human func(io.Writer)) error {
	if f.json {
		return json.NewEncoder(w).Encode(v)
	}
	human(w)
	return nil
}

// clientCommand builds a client command with the shared flags.
// withClient opens the device's client (registering: the directory may not
// exist yet), runs do with it and closes it.
func (f *clientFlags) withClient(ctx context.Context, env *Env, registering bool, do func(c *client.Client) error) error {
	c, err := f.open(ctx, env, registering)
	if err != nil {
		return err
	}
	defer c.Close()
	return do(c)
}

func clientCommand(name, usage, short, long string, extra func(fs *flag.FlagSet), nargs [2]int,
	run func(ctx context.Context, env *Env, f *clientFlags, args []string) error) *Command {
	f := &clientFlags{}
	return &Command{
		Name: name, Usage: usage, Short: short, Long: long,
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			if extra != nil {
				extra(fs)
			}
		},
		Run: func(ctx context.Context, env *Env, args []string) error {
			pos, err := f.positional(args)
			if err != nil {
				return &UsageError{Cmd: "rhizome " + strings.Fields(usage)[0], Msg: err.Error()}
			}
			if len(pos) < nargs[0] || len(pos) > nargs[1] {
				return &UsageError{Cmd: "rhizome " + name, Msg: fmt.Sprintf("expected %s", usageArgs(usage))}
			}
			return withHint(run(ctx, env, f, pos))
		},
	}
}

var optionalArgs = regexp.MustCompile(`\[[^\]]*\]`)

func usageArgs(usage string) string {
	var out []string
	for _, w := range strings.Fields(optionalArgs.ReplaceAllString(usage, "")) {
		if w == strings.ToUpper(w) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return "no arguments"
	}
	return strings.Join(out, " ")
}

func clientCommands() []*Command {
	return []*Command{
		registerCommand(),
		roomCommand(),
		roomsCommand(),
		inviteCommand(),
		removeCommand(),
		sendCommand(),
		tailCommand(),
		membersCommand(),
		leaveCommand(),
		keyPackagesCommand(),
		allowCommand(),
	}
}

func registerCommand() *Command {
	var server, user, device, token string
	return clientCommand("register", "register --server URL --user NAME --device NAME [--token TOKEN] [--dir DIR] [--json]",
		"create your user and this device on a node",
		`Creates a user with this device as its first device on the node at
--server, makes the device's signing key and KeyPackages, and keeps them in
the device directory (mode 0700; keys never leave it). Every other client
command then uses that directory.

The directory is --dir, else $RHIZOME_CLIENT_DIR, else ./rhizome-client.
One directory holds one device; use another directory for a second user
or device.

A node that listens beyond loopback registers only with a single-use
token from its operator (rhizome admin token create, on the node's
machine); give it with --token, or set $RHIZOME_REGISTRATION_TOKEN.
User names are lowercase letters and digits, with '.', '_' or '-' only
between two of them (alice, bob.smith, team-7).

Examples:
  rhizome register --server http://127.0.0.1:8600 --user alice --device phone
  rhizome register --server http://127.0.0.1:8601 --user bob --device laptop --dir ./bob
  rhizome register --server https://chat.example.org --user carol --device phone --token rhzreg_...`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&server, "server", "", "API URL of your home node, e.g. http://127.0.0.1:8600")
			fs.StringVar(&user, "user", "", "user name: 1-64 of a-z 0-9, with . _ - only between them")
			fs.StringVar(&token, "token", "", "registration token from the node's operator (default $RHIZOME_REGISTRATION_TOKEN)")
			fs.StringVar(&device, "device", "", "name of this device, e.g. phone")
		}, [2]int{0, 0},
		func(ctx context.Context, env *Env, f *clientFlags, _ []string) error {
			if server == "" || user == "" || device == "" {
				return &UsageError{Cmd: "rhizome register", Msg: "--server, --user and --device are required"}
			}
			return f.withClient(ctx, env, true, func(c *client.Client) error {
				if token == "" {
					token = env.Getenv("RHIZOME_REGISTRATION_TOKEN")
				}
				d, err := c.RegisterWithToken(ctx, server, user, device, token)
				if err != nil {
					return err
				}
				dir := f.resolveDir(env)
				return f.print(env.Stdout, map[string]string{"server": d.Server, "user": d.User, "device": d.Device, "user_uri": d.UserURI, "device_uri": d.DeviceURI, "dir": dir},
					func(w io.Writer) {
						fmt.Fprintf(w, "Registered %s (device %s) on %s.\nDevice state: %s\nNext: rhizome room create NAME\n", d.UserURI, d.Device, d.Server, dir)
					})
			})
		})
}

func roomCommand() *Command {
	var preset string
	create := clientCommand("create", "room create [--preset PRESET] NAME",
		"create a room",
		`Creates a room on your node with you as its admin, and its end-to-end
encrypted MLS group on this device. Presets: private-group (default),
public-room, announcement-channel, direct-message. Prints the room ID that
the other commands take.

Examples:
  rhizome room create Club
  rhizome room create --preset public-room Lobby --json`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&preset, "preset", "private-group", "room preset")
		}, [2]int{1, 1},
		func(ctx context.Context, env *Env, f *clientFlags, args []string) error {
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				ri, err := c.CreateRoom(ctx, preset, args[0])
				if err != nil {
					return err
				}
				return f.print(env.Stdout, ri, func(w io.Writer) {
					fmt.Fprintf(w, "Created room %q: %s\nNext: rhizome invite %s USER\n", ri.Name, ri.Room, ri.Room)
				})
			})
		})
	return &Command{Name: "room", Usage: "room COMMAND", Short: "manage rooms (create)",
		Long: "Room commands. See also: rhizome rooms, rhizome members, rhizome invite.", Sub: []*Command{create}}
}

func roomsCommand() *Command {
	return clientCommand("rooms", "rooms [--json]", "list the rooms of this device",
		`Lists the rooms this device knows: ID, name, members, and whether the
device holds the room's MLS group (an invitation is processed by any client
command, e.g. rhizome rooms or rhizome tail).

Example:
  rhizome rooms`,
		nil, [2]int{0, 0},
		func(ctx context.Context, env *Env, f *clientFlags, _ []string) error {
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				rs, err := c.Rooms()
				if err != nil {
					return err
				}
				if rs == nil {
					rs = []client.RoomInfo{}
				}
				return f.print(env.Stdout, map[string]any{"rooms": rs}, func(w io.Writer) {
					if len(rs) == 0 {
						fmt.Fprintln(w, "No rooms yet: create one with rhizome room create NAME, or ask someone to invite you.")
						return
					}
					tw := newTable(w, "ROOM", "NAME", "MEMBERS", "EPOCH", "JOINED")
					for _, r := range rs {
						tw.row(string(r.Room), r.Name, fmt.Sprint(r.Members), fmt.Sprint(r.Epoch), yesNo(r.Joined))
					}
					tw.flush()
				})
			})
		})
}

func inviteCommand() *Command {
	var via string
	return clientCommand("invite", "invite [--via URL] ROOM USER",
		"add a user (all of their devices) to a room",
		`Adds USER to ROOM: claims a KeyPackage of each of the user's devices
from their home server (across the federation), and commits one MLS commit
adding all of them, with the participant change and the Welcome.

USER is a name on your own server (bob) or a user URI
(mimi://other.example/u/bob). For a user of a server the room does not
include yet, --via gives that server's API URL: a commit of its own puts
that server in the room first, so that it takes part in ordering the room
(this needs the right to change servers: admins).

Examples:
  rhizome invite '!QmRoom...' bob
  rhizome invite --via http://127.0.0.1:8601 '!QmRoom...' mimi://b.example/u/carol`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&via, "via", "", "API URL of the user's home server, if the room does not include it yet")
		}, [2]int{2, 2},
		func(ctx context.Context, env *Env, f *clientFlags, args []string) error {
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				commit, err := c.Invite(ctx, client.RoomID(args[0]), args[1], &client.InviteOptions{ServerURL: via})
				if err != nil {
					return err
				}
				return f.print(env.Stdout, map[string]string{"room": args[0], "user": args[1], "commit": string(commit)}, func(w io.Writer) {
					fmt.Fprintf(w, "Invited %s to %s (commit %s).\n", args[1], args[0], commit)
				})
			})
		})
}

func removeCommand() *Command {
	return clientCommand("remove", "remove ROOM USER", "remove a user (all of their devices) from a room",
		`Removes USER from ROOM in one commit: every device of the user leaves
the MLS group and the user leaves the participant list. Needs the right to
remove participants (admins, moderators).

Example:
  rhizome remove '!QmRoom...' bob`,
		nil, [2]int{2, 2},
		func(ctx context.Context, env *Env, f *clientFlags, args []string) error {
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				commit, err := c.Remove(ctx, client.RoomID(args[0]), args[1])
				if err != nil {
					return err
				}
				return f.print(env.Stdout, map[string]string{"room": args[0], "user": args[1], "commit": string(commit)}, func(w io.Writer) {
					fmt.Fprintf(w, "Removed %s from %s (commit %s).\n", args[1], args[0], commit)
				})
			})
		})
}

func leaveCommand() *Command {
	return clientCommand("leave", "leave ROOM", "leave a room",
		`Leaves ROOM: this device proposes its own removal (a remaining member's
client commits it) and your user leaves the participant list.

Example:
  rhizome leave '!QmRoom...'`,
		nil, [2]int{1, 1},
		func(ctx context.Context, env *Env, f *clientFlags, args []string) error {
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				if err := c.Leave(ctx, client.RoomID(args[0])); err != nil {
					return err
				}
				return f.print(env.Stdout, map[string]any{"room": args[0], "left": true}, func(w io.Writer) {
					fmt.Fprintf(w, "Left %s.\n", args[0])
				})
			})
		})
}

func membersCommand() *Command {
	return clientCommand("members", "members ROOM", "list a room's participants and their devices",
		`Lists the participants of ROOM with their roles, and the devices of each
in the room's MLS group as this device sees it.

Example:
  rhizome members '!QmRoom...' --json`,
		nil, [2]int{1, 1},
		func(ctx context.Context, env *Env, f *clientFlags, args []string) error {
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				ms, err := c.Members(client.RoomID(args[0]))
				if err != nil {
					return err
				}
				if ms == nil {
					ms = []client.Member{}
				}
				return f.print(env.Stdout, map[string]any{"room": args[0], "members": ms}, func(w io.Writer) {
					tw := newTable(w, "USER", "ROLE", "DEVICES")
					for _, m := range ms {
						tw.row(m.User, m.Role, strings.Join(m.Devices, " "))
					}
					tw.flush()
				})
			})
		})
}
