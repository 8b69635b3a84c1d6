// Package consensus orders a room's MLS commits: hub election, sealing,
// certification by a majority of the room's servers, and fork choice.
//
// It is a pure state machine in the style of etcd's raft: the caller feeds it
// inputs (events, votes, ticks) with Step and Tick and performs the actions it
// returns (seal, ack, suspect, reorg), persisting before sending. It never
// reads a clock, draws randomness or starts a goroutine, and fork choice is a
// pure function of the set of events, never of their arrival order.
//
// # Imports
//
// May import: the standard library (not os, net, log/slog), dag, roomstate.
// Must not import badger, libp2p or call time.Now. internal/deptest enforces
// this.
package consensus
