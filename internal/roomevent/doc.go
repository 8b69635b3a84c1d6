// Package roomevent defines the content encodings of the room event kinds
// that a dag.Event carries: create, state, commit, proposal and message. The
// dag package treats content as opaque bytes; roomevent gives them structure.
// The ordering votes (seal, ack, suspect) are encoded by package consensus.
//
// Every encoding is strict TLS presentation language (internal/tlspl):
// minimal varint lengths, no trailing bytes, bounded sizes. Every decoder
// returns a [*DecodeError] (which matches [ErrMalformed]) for bad input and
// has a fuzz target.
//
// The wire structs are documented on each type and in docs/api.md
// ("Event contents").
//
// May import: the standard library, internal/tlspl, dag (for IDs). Pure: no
// network, disk, clock or randomness.
package roomevent
