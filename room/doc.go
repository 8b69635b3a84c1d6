// Package room is the per-room engine: the pure core that decides which of
// a room's stored events are accepted, what the room state is on each
// branch, and which ordering votes this server casts. It plays the role
// that RawNode plays in etcd raft: the host (the node, or the simulator)
// feeds it stored events in arrival order and clock ticks, and reads back
// a [Ready] that says everything it must do, in order:
//
//  1. append the accepted events and the order records to the delivery
//     feed (Ready.Entries, in that order);
//  2. sign, persist (one batch) and publish the votes (Ready.Votes), then
//     step them back in as stored events, like any other;
//  3. count the rejections (Ready.Rejected, with typed reasons);
//  4. then call [Engine.Advance].
//
// The engine owns acceptance of every event kind: the create event's
// initial state, room-state changes, commits (against the state of their
// parent's epoch with the state events they adopt), proposals and
// messages (against the state of their epoch), and the ordering votes
// (through the consensus machine, whose actions it turns into Ready). Room state per branch is a pure function
// of the commits on the branch and the state events each adopts (those
// among its DAG parents no earlier commit of the branch adopted): a
// standalone state event takes effect only with the commit that adopts it,
// so no verdict depends on arrival order (see [Engine.StateAt]).
//
// Rule R (causal.go): what an event names (a commit's parent, a message's
// or proposal's epoch, a commit's proposals by reference) must be among
// its DAG parents, so every server judges it after what it names and
// reaches the same verdict; hosts build their events with [Engine.Refs],
// and check before storing that an event's origin is a server at its
// parents with [Named] and [Engine.ServersAt].
//
// The engine imports no network, disk, logger or clock: time comes in
// through [Engine.Tick], so the node and the simulator run exactly the
// same rules and a simulated run replays from its seed.
package room
