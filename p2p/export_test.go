package p2p

import "crypto/ed25519"

// Test hooks: the framing functions, for tests that play a misbehaving
// peer with raw streams.
var (
	ReadFrame  = readFrame
	WriteFrame = writeFrame
)

// ed25519Key derives a deterministic test key from a seed.
func ed25519Key(seed []byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seed) }
