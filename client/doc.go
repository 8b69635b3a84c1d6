// Package client is a Rhizome device: the Go client library that talks to
// its home node's HTTP API (docs/api.md) and keeps every secret on the
// device.
//
// A Client keeps its state in a badger store in its own directory (mode
// 0700): the server URL, user and device names, bearer token, the MLS
// signature key, the private keys of its KeyPackages (one-time ones are
// deleted from the KeyPackage store when a Welcome uses them), the stream
// cursor, the sent-message log, the delivered-message index (MIMI message
// IDs, for deduplication), and per room a replay log.
//
// # MLS state on disk
//
// Package mls has no serialized form of a group, so a room's MLS state is
// event-sourced: the replay log records every step (group creation with its
// random seed, the Welcome with the KeyPackage keys it used, each commit
// processed, each own commit with the seed and plan it was built from, each
// own message's ratchet step, proposals, branch moves). Open replays the log
// and rebuilds the exact group, including the own sending generation, so
// that no key and nonce is ever reused after a restart. In memory, each
// epoch is kept as an mls.Snapshot keyed by its commit event ID, so the
// client can move to another branch. The price: the log keeps the secrets
// needed to replay (seeds, the used KeyPackage keys) for the life of the
// room, so on-disk forward secrecy is that of the store. A group
// serialization in package mls would let the client checkpoint and drop
// them.
//
// # Following the order
//
// The client applies commits as they arrive on the stream when they build
// on its current epoch. When the node's ordering layer sends order lines
// (docs/api.md), it follows them instead: it moves back to the fork point
// on "undone" epochs (retaining their secrets until retain_until_ms for late
// messages), applies the "applied" commits, re-sends its own messages from
// undone epochs under the same MIMI message ID, and re-proposes its own
// undone commits on the new tip. Receivers deduplicate by message ID, so a
// re-sent message is delivered once.
//
// # Verifying commits
//
// The client does not trust its server: before it processes another
// member's commit it runs the checks every server runs (package room). The
// commit must authenticate in the current epoch (mls.Group.InspectCommit),
// its MLS sender must be the device the event names, and room policy must
// allow it: roomstate.AuthorizeCommit on the room state of the commit's
// parent epoch, with the group's members as roster (room.Roster) and the
// commit described by room.DescribeCommit. After processing, and before
// the group is adopted, the group the commit leaves must hold exactly the
// clients policy authorized (an UpdatePath or Update may not change a
// leaf's identity); if not, the parent epoch's group is restored. A
// refused commit is skipped
// with its reason in Skipped (an error wrapping ErrCommitRefused); it is
// not logged, so the room stays at its epoch, before and after a restart.
//
// # Messages
//
// Bodies are MIMI content (internal/mimicontent, draft-ietf-mimi-content-08):
// Send, Reply, React, Edit and Delete build them, with message IDs computed
// over the exact bytes from the sender's and room's URIs. A received
// message's senderUri must match its MLS-authenticated sender.
package client
