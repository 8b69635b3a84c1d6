// Package consensus orders a room's MLS commits: hub election, sealing,
// certification by a majority of the room's servers, and fork choice.
//
// It is a pure state machine in the style of etcd's raft: the caller feeds it
// inputs (commit and vote events, ticks) with [Machine.Step] and
// [Machine.Tick] and performs the actions it returns ([SendSeal],
// [SendAck], [SendSuspect], [OrderChanged], [Certified], [RetainBranch],
// [ReleaseBranch]), persisting each vote before sending it. It never reads a
// clock, draws randomness or starts a goroutine, and fork choice
// ([ForkChoice]) is a pure function of the set of events, never of their
// arrival order.
//
// The package defines the content of the ordering events ([Seal], [Ack],
// [Suspect]) and their strict TLS-PL encodings; package dag carries them as
// opaque content of kinds seal, ack and suspect. It uses its own [EventID]
// and [ServerID] types so that it depends on neither dag nor roomstate: the
// node converts, and passes room membership in as a [Membership] value.
//
// The rules (numbered H, S, A, C, E, T, F, M, R), their guarantees and the
// parameters are in docs/consensus.md.
//
// # Imports
//
// May import: the standard library (not os, net, log/slog, time, math/rand,
// crypto/rand) and internal/tlspl. Must not import badger or libp2p or call
// time.Now. internal/deptest enforces this.
package consensus
