package client

import (
	"crypto/sha256"
	"encoding/binary"
)

// seededRand is a deterministic randomness source: SHA-256(seed || counter)
// blocks. The client draws a fresh 32-byte seed from its real randomness
// for each group creation and own commit, records the seed in the room's
// replay log, and gives mls a seededRand: replaying the log rebuilds the
// very same group state and commits after a restart, since package mls has
// no serialized form of a group (see docs in doc.go).
type seededRand struct {
	seed []byte
	ctr  uint64
	buf  []byte
}

func newSeededRand(seed []byte) *seededRand { return &seededRand{seed: seed} }

func (r *seededRand) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(r.buf) == 0 {
			h := sha256.New()
			h.Write([]byte("rhizome/client/seeded-rand\x00"))
			h.Write(r.seed)
			h.Write(binary.BigEndian.AppendUint64(nil, r.ctr))
			r.ctr++
			r.buf = h.Sum(nil)
		}
		k := copy(p, r.buf)
		p, r.buf = p[k:], r.buf[k:]
	}
	return n, nil
}
