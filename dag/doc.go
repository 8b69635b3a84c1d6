// Package dag defines a room's event: its canonical encoding, its ID (a
// sha2-256 multihash of the encoding without the signature), its validation,
// and the Store interface that keeps a room's Merkle DAG of events.
//
// Event decoding and validation are pure: this package imports no network,
// logger or clock, so every server and the simulator run the same rules. The
// durable store lives in dag/badgerstore; both it and the in-memory store pass
// the shared suite in dag/dagtest.
//
// # Imports
//
// May import: the standard library (not os, net, log/slog), internal/tlspl,
// github.com/multiformats/go-multihash. Must not import badger or libp2p, nor
// call time.Now. internal/deptest enforces this.
package dag
