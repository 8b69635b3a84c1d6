package cmd

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rhizome-chat/rhizome/client"
	"github.com/rhizome-chat/rhizome/internal/mimicontent"
)

func sendCommand() *Command {
	var replyTo, reactTo, edit, del string
	return clientCommand("send", "send [--reply-to ID | --react-to ID | --edit ID | --delete ID] ROOM [TEXT]",
		"send a message (or a reply, reaction, edit, delete)",
		`Sends TEXT to ROOM, end-to-end encrypted in the room's current epoch, as
a MIMI content message (markdown). Prints the message ID, which replies,
reactions, edits and deletes refer to (rhizome tail shows the IDs too).

Examples:
  rhizome send '!QmRoom...' 'hello everyone'
  rhizome send --reply-to 01ab... '!QmRoom...' 'agreed'
  rhizome send --react-to 01ab... '!QmRoom...' '👍'
  rhizome send --edit 01cd... '!QmRoom...' 'hello, everyone'
  rhizome send --delete 01cd... '!QmRoom...'`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&replyTo, "reply-to", "", "message ID to reply to")
			fs.StringVar(&reactTo, "react-to", "", "message ID to react to (TEXT is the reaction)")
			fs.StringVar(&edit, "edit", "", "ID of your message to replace with TEXT")
			fs.StringVar(&del, "delete", "", "ID of your message to delete (no TEXT)")
		}, [2]int{1, 2},
		func(ctx context.Context, env *Env, f *clientFlags, args []string) error {
			n := 0
			for _, s := range []string{replyTo, reactTo, edit, del} {
				if s != "" {
					n++
				}
			}
			if n > 1 {
				return &UsageError{Cmd: "rhizome send", Msg: "give at most one of --reply-to, --react-to, --edit, --delete"}
			}
			if (del == "") != (len(args) == 2) {
				if del != "" {
					return &UsageError{Cmd: "rhizome send", Msg: "--delete takes no TEXT"}
				}
				return &UsageError{Cmd: "rhizome send", Msg: "expected ROOM TEXT"}
			}
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				room := args[0]
				var s client.Sent
				var err error
				switch {
				case replyTo != "":
					s, err = c.Reply(ctx, client.RoomID(room), client.MessageID(replyTo), args[1])
				case reactTo != "":
					s, err = c.React(ctx, client.RoomID(room), client.MessageID(reactTo), args[1])
				case edit != "":
					s, err = c.Edit(ctx, client.RoomID(room), client.MessageID(edit), args[1])
				case del != "":
					s, err = c.Delete(ctx, client.RoomID(room), client.MessageID(del))
				default:
					s, err = c.Send(ctx, client.RoomID(room), args[1])
				}
				if err != nil {
					return err
				}
				return f.print(env.Stdout, s, func(w io.Writer) {
					fmt.Fprintf(w, "Sent %s to %s.\n", s.ID, s.Room)
				})
			})
		})
}

// tailLine is the JSON form of one delivered message.
type tailLine struct {
	Room      string `json:"room"`
	ID        string `json:"id"`
	Sender    string `json:"sender"`
	Device    string `json:"device"`
	Epoch     string `json:"epoch"`
	Event     string `json:"event"`
	TS        int64  `json:"ts"`
	Kind      string `json:"kind"`
	Text      string `json:"text"`
	InReplyTo string `json:"in_reply_to,omitempty"`
	Replaces  string `json:"replaces,omitempty"`
}

func toTailLine(d client.Delivery) tailLine {
	tl := tailLine{Room: string(d.Room), ID: string(d.ID), Sender: d.Sender, Device: d.Device, Epoch: string(d.Epoch), Event: string(d.Event), TS: d.TS, Text: d.Text()}
	if c, err := d.Content(); err == nil {
		tl.Kind = c.Kind().String()
		if c.InReplyTo != nil {
			tl.InReplyTo = idHex(*c.InReplyTo)
		}
		if c.Replaces != nil {
			tl.Replaces = idHex(*c.Replaces)
		}
	}
	return tl
}

func idHex(id mimicontent.MessageID) string { return hex.EncodeToString(id[:]) }

func tailCommand() *Command {
	var count int
	return clientCommand("tail", "tail [--count N] [ROOM]",
		"print messages as they arrive (Ctrl-C stops)",
		`Receives and decrypts messages live and prints each once: messages of
ROOM, or of every room without ROOM. It also processes invitations and
membership changes, so run it (or any client command) to join a room you
were invited to. Ctrl-C stops; --count N stops after N messages.

Readable lines look like:
  [15:04:05] mimi://a.example/u/alice: hello        (id 01ab...)
  [15:04:09] mimi://b.example/u/bob ↪ 01ab...: hi   (a reply)

Examples:
  rhizome tail '!QmRoom...'
  rhizome tail --json --count 1 '!QmRoom...'   # wait for the next message`,
		func(fs *flag.FlagSet) {
			fs.IntVar(&count, "count", 0, "stop after this many messages (0: run until Ctrl-C)")
		}, [2]int{0, 1},
		func(ctx context.Context, env *Env, f *clientFlags, args []string) error {
			if count < 0 {
				return &UsageError{Cmd: "rhizome tail", Msg: "--count must be 0 or more"}
			}
			return f.withClient(ctx, env, false, func(c *client.Client) error {
				room := ""
				if len(args) == 1 {
					room = args[0]
					if !strings.HasPrefix(room, "!") {
						room = "!" + room
					}
					if _, err := c.Members(client.RoomID(room)); err != nil {
						return err
					}
				}
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				seen := 0
				var werr error
				err := c.Sync(ctx, func(d client.Delivery) {
					if room != "" && string(d.Room) != room || werr != nil || count > 0 && seen >= count {
						return
					}
					werr = f.print(env.Stdout, toTailLine(d), func(w io.Writer) { printDelivery(w, d, room == "") })
					seen++
					if count > 0 && seen >= count {
						cancel()
					}
				})
				if werr != nil {
					return werr
				}
				if ctx.Err() != nil {
					return nil // Ctrl-C or --count reached
				}
				return err
			})
		})
}

func printDelivery(w io.Writer, d client.Delivery, showRoom bool) {
	tl := toTailLine(d)
	ts := time.UnixMilli(d.TS).Format("15:04:05")
	who := d.Sender
	if showRoom {
		who = string(d.Room) + " " + who
	}
	short := func(id string) string {
		if len(id) > 10 {
			return id[:10] + "…"
		}
		return id
	}
	switch tl.Kind {
	case "reply":
		fmt.Fprintf(w, "[%s] %s ↪ %s: %s   (id %s)\n", ts, who, short(tl.InReplyTo), tl.Text, tl.ID)
	case "reaction":
		fmt.Fprintf(w, "[%s] %s reacted %s to %s   (id %s)\n", ts, who, tl.Text, short(tl.InReplyTo), tl.ID)
	case "edit":
		fmt.Fprintf(w, "[%s] %s edited %s: %s   (id %s)\n", ts, who, short(tl.Replaces), tl.Text, tl.ID)
	case "delete":
		fmt.Fprintf(w, "[%s] %s deleted %s   (id %s)\n", ts, who, short(tl.Replaces), tl.ID)
	default:
		fmt.Fprintf(w, "[%s] %s: %s   (id %s)\n", ts, who, tl.Text, tl.ID)
	}
}

// table prints aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }
func (t *table) flush()             { t.tw.Flush() }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
