// Package p2p is Rhizome's federation transport on libp2p: one host per
// server (TCP and QUIC, Noise, peer ID = server identity), one gossipsub topic
// per room for push, a versioned request/response sync protocol for pull that
// heals gaps and partitions, the KeyPackage directory protocol between home
// servers, discovery, rate limits and peer scoring. The wire protocols are
// specified in docs/protocol.md.
//
// # Push and pull
//
// [Mesh.Publish] stores an event and gossips it on its room's topic. The
// topic validator rejects, scoring the forwarder down, gossip from a peer
// that does not participate in the room and payloads that fail the
// stateless checks (size, canonical decoding, room, signature); it ignores
// events already stored, events whose origin is not a writer of the room
// and events over the per-origin and per-room rates. Delivered events go to
// the [dag.Store]; an event whose parents are missing is held pending by
// the store and triggers a pull of its ancestors from the peer that
// forwarded it.
//
// # Admission and confinement
//
// No event of a peer is stored or relayed unless it is the room's create
// event or its origin is a writer of the room ([RoomACL.Writer]) and a
// server of the room at the event's parents ([RoomACL.WritesAt]), on every
// path (admit.go); refusals are counted by reason ([Mesh.Rejections]).
// Gossip reaches a room's servers only: pubsub runs on a host that keeps
// it from peers sharing no joined room (pubsubhost.go), subscriptions are
// tracked only from a room's participants, flood publishing is off, and
// topic names hide the room ID ([TopicName]).
//
// Gossip is never the recovery path. The sync protocol ([SyncProtocol]) is:
// after every (re)connection, every HeadsInterval, and on joining a room, a
// server asks a participating peer for its heads, then walks back with
// get_missing (the limit doubling per round) until every path reaches known
// events, verifies each event as it arrives, and stores the batch parents
// first. Partitions therefore heal by themselves once the links return.
//
// # What the node provides
//
// p2p does not interpret room state. The node answers three questions
// through interfaces: which servers participate in a room and whose events
// may be stored in it ([RoomACL], used for access control, admission and to
// keep a room's gossip among its servers), which
// KeyPackages to hand out ([KeyPackageSource]), and which servers may
// connect at all ([PeerPolicy]). [MemACL] and [MemKeyPackages] are in-memory
// implementations for tests and the simulator.
//
// # Files
//
//   - identity.go, host.go, gater.go, limits.go: the host, its identity, the
//     connection gater and the resource manager limits.
//   - frame.go, wire_sync.go, wire_keypackage.go: framing and the TLS-PL
//     messages of the two request/response protocols.
//   - mesh.go: the [Mesh], its configuration, rooms and connection events.
//   - gossip.go: gossipsub, the topic validator and gossip delivery.
//   - pubsubhost.go: the host pubsub runs on, the subscription filter and
//     the reconnection of peers that come to share a room.
//   - acl.go, admit.go, eventrate.go: the room ACL, the admission of
//     peers' events into a room with its rejection counts, and the gossip
//     event rates.
//   - sync_server.go, sync_client.go, puller.go: the sync protocol's two
//     sides and the scheduling of pulls.
//   - directory.go, keypackages.go: the KeyPackage directory.
//   - discovery.go, mdns.go: keeping wanted peers connected, with backoff;
//     LAN discovery.
//   - score.go, ratelimit.go: offenses and penalties, gossipsub score
//     parameters, keyed rate limits and concurrency slots.
//   - p2ptest: the in-process test kit (mocknet, synctest-friendly).
//
// # Imports
//
// May import: go-libp2p, go-libp2p-pubsub, dag, internal/tlspl and the
// standard library. It does not decide room membership itself; it asks the
// node through interfaces.
package p2p
