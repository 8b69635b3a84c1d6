// Package mls implements the Messaging Layer Security protocol (RFC 9420) and
// the parts of draft-ietf-mls-extensions that MIMI needs (app_data_dictionary,
// AppDataUpdate, SelfRemove).
//
// It is a pure library: no goroutines, network, disk, logging, wall clock or
// global randomness. Callers inject randomness as an io.Reader and time as a
// value. Names follow the RFC (KeyPackage, LeafNode, GroupContext, ...), and
// comments cite RFC sections where a rule is subtle.
//
// Wire structs are encoded with the TLS presentation language through
// internal/tlspl; decoders are strict (no trailing bytes, minimal varints)
// and keep the bytes they were given for hashing.
//
// # Imports
//
// May import: the standard library's crypto, encoding and container packages,
// github.com/cloudflare/circl, golang.org/x/crypto and internal/tlspl. Must
// not import: os, net, log, log/slog, crypto/rand, math/rand, badger, libp2p,
// or call time.Now. internal/deptest enforces this.
package mls
