package cmd

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/rhizome-chat/rhizome/clientapi"
)

// adminRoomsCommand is rhizome admin rooms: list, leave and purge the rooms
// the node replicates.
func adminRoomsCommand() *Command {
	list := adminSubcommand("list", "admin rooms list [--json]",
		"list the rooms this node replicates",
		`Lists every room the node replicates: its ID and name, how the node joined
it (created: a local user made it; invite: an invite notice from the server
in VIA; api: a user's join through VIA), since when, its local participants
(users of this node), all participants, servers and stored events.

A room marked AWAITING has no local participant yet: it was joined by
invite or API join, and is left and purged when rooms.grace_ms (default 10
minutes) passes without one. Rooms recorded before the node kept how it
joined show "-".

Examples:
  rhizome admin rooms list
  rhizome admin rooms list --json | jq -r 'select(.local_participants == []) | .room'`,
		nil, [2]int{0, 0},
		func(ctx context.Context, env *Env, f *adminFlags, a *adminAPI, _ []string) error {
			var out clientapi.AdminRooms
			if err := a.call(ctx, "GET", "/v1/admin/rooms", nil, &out); err != nil {
				return err
			}
			if f.json {
				for _, r := range out.Rooms {
					if err := f.print(env.Stdout, r, nil); err != nil {
						return err
					}
				}
				return nil
			}
			return f.print(env.Stdout, out, func(w io.Writer) { printAdminRooms(w, out.Rooms) })
		})
	leave := adminSubcommand("leave", "admin rooms leave ROOM",
		"stop replicating a room and forget it (its events stay on disk)",
		`Leaves a room: the node unsubscribes from its gossip, forgets its state,
record and delivery-feed entries, and stops serving it. Its events stay in
the events store, so a later join does not download them again; rhizome
admin rooms purge deletes them too. Local users lose the room on this node.
ROOM is a room ID as rhizome admin rooms list shows it (the '!' may be left
out).

Example:
  rhizome admin rooms leave '!QmRoom...'`,
		nil, [2]int{1, 1},
		func(ctx context.Context, env *Env, f *adminFlags, a *adminAPI, args []string) error {
			room := roomArg(args[0])
			var out clientapi.RoomLeft
			if err := a.call(ctx, "POST", "/v1/admin/rooms/"+url.PathEscape(room)+"/leave", nil, &out); err != nil {
				return err
			}
			return f.print(env.Stdout, out, func(w io.Writer) {
				fmt.Fprintf(w, "Left room %s; its events stay on disk (purge deletes them).\n", room)
			})
		})
	purge := adminSubcommand("purge", "admin rooms purge ROOM",
		"leave a room and delete all its events",
		`Purges a room: leaves it as rhizome admin rooms leave does, then deletes
every event of it from the events store. It works for a room already left
too. This cannot be undone; other servers of the room keep their copies.

Example:
  rhizome admin rooms purge '!QmRoom...'`,
		nil, [2]int{1, 1},
		func(ctx context.Context, env *Env, f *adminFlags, a *adminAPI, args []string) error {
			room := roomArg(args[0])
			var out clientapi.RoomPurged
			if err := a.call(ctx, "POST", "/v1/admin/rooms/"+url.PathEscape(room)+"/purge", nil, &out); err != nil {
				return err
			}
			return f.print(env.Stdout, out, func(w io.Writer) { fmt.Fprintf(w, "Purged room %s: left, and its events deleted.\n", room) })
		})
	return &Command{
		Name: "rooms", Usage: "admin rooms COMMAND", Short: "list, leave and purge the rooms this node replicates",
		Long: `The rooms a node replicates: the ones its users created, and the ones it
joined because another server invited it or a user joined through one.

Examples:
  rhizome admin rooms list
  rhizome admin rooms leave '!QmRoom...'
  rhizome admin rooms purge '!QmRoom...'`,
		Sub: []*Command{list, leave, purge},
	}
}

// roomArg adds the '!' a room ID may be given without.
func roomArg(s string) string {
	if !strings.HasPrefix(s, "!") {
		return "!" + s
	}
	return s
}

func printAdminRooms(w io.Writer, rooms []clientapi.AdminRoom) {
	if len(rooms) == 0 {
		fmt.Fprintln(w, "No rooms.")
		return
	}
	tw := newTable(w, "ROOM", "NAME", "HOW", "VIA", "SINCE", "LOCAL", "PARTICIPANTS", "SERVERS", "EVENTS")
	for _, r := range rooms {
		how := r.How
		if how == "" {
			how = "-"
		}
		if r.Awaiting {
			how += " (AWAITING)"
		}
		via := "-"
		if len(r.Via) > 0 {
			via = shortHex(r.Via[0])
		}
		local := "-"
		if len(r.LocalParticipants) > 0 {
			local = strings.Join(r.LocalParticipants, ",")
		}
		tw.row(r.Room, r.Name, how, via, r.Since, local, fmt.Sprint(r.Participants), fmt.Sprint(len(r.Servers)), fmt.Sprint(r.Events))
	}
	tw.flush()
}

// shortHex shortens a server ID for a table.
func shortHex(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}
