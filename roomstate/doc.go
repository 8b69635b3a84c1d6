// Package roomstate is the event-sourced state of a room after the IETF MIMI
// drafts (draft-ietf-mimi-protocol, draft-ietf-mimi-room-policy): the
// participant list with roles, the role and capability policy, room metadata,
// the join rule, the participating servers and the ordered hub candidates.
//
// Apply is a pure, deterministic reducer: the same changes in the same order
// give the same state on every server and client. The state is bound into MLS
// through the app_data_dictionary GroupContext extension, so that members who
// disagree about it derive different keys.
//
// # Imports
//
// May import: the standard library (not os, net, log/slog), internal/tlspl,
// package mls. Must not import badger, libp2p or call time.Now.
// internal/deptest enforces this.
package roomstate
