package p2p

// Test hooks: the framing functions, for tests that play a misbehaving
// peer with raw streams.
var (
	ReadFrame  = readFrame
	WriteFrame = writeFrame
)
