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
// # API
//
//   - [NewRoom] builds the first state from a [Preset] (direct message,
//     private group, public room, announcement channel).
//   - [Apply] applies one [Change] (an [Actor] and an [Op], the content of
//     one AppDataUpdate) and returns a new [State] or a [*RejectError] with
//     a [Reason]. The input is never modified.
//   - [AuthorizeCommit], [AuthorizeProposal] and [AuthorizeMessage] check MLS
//     operations, described as [Commit] and [Proposal] summaries, against
//     the state and the group's members; [CheckRoster] checks a member list.
//   - [State.Components] and [FromComponents] convert a state to and from
//     app_data_dictionary entries (canonical: equal states, equal bytes);
//     [EncodeOp], [DecodeOp] and [ApplyUpdate] do the same for the update
//     field of AppDataUpdate proposals.
//
// See docs/roomstate.md for the model, the preset capability tables, the
// encodings and a worked example.
//
// # Files
//
// state.go, role.go, capability.go, uri.go: the model. change.go, apply.go:
// changes and the reducer. validate.go: cross-component invariants.
// commit.go: MLS authorization. preset.go: presets.
// codec.go, delta.go, dictionary.go: wire encodings. errors.go: rejections.
//
// # Imports
//
// May import: the standard library (not os, net, log/slog), internal/tlspl,
// package mls. Must not import badger, libp2p or call time.Now.
// internal/deptest enforces this.
package roomstate
