package sim

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/rhizome-chat/rhizome/consensus"
)

// kind is an event kind, mirroring package dag's.
type kind uint8

const (
	kindCommit kind = iota + 1
	kindSeal
	kindAck
	kindSuspect
	kindMessage
)

// event is the simulator's minimal stand-in for a dag.Event: an origin, a
// kind, an opaque payload (the consensus wire encoding for votes), an ID
// that hashes all of it, and an abstract signature.
//
// Package dag had not landed when the simulator was written, so each server
// keeps its event set in a map plus an arrival log (its "persisted" store).
type event struct {
	ID      consensus.EventID
	Kind    kind
	Origin  consensus.ServerID
	Parent  consensus.EventID // commit: the slot; message: its epoch commit
	Payload []byte            // vote: consensus encoding; commit/message: change or message ID
	Sig     [32]byte
}

func (e *event) digest() consensus.EventID {
	h := sha256.New()
	h.Write([]byte{byte(e.Kind)})
	h.Write(e.Origin[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(e.Parent)))
	h.Write(n[:])
	h.Write([]byte(e.Parent))
	h.Write(e.Payload)
	return consensus.EventID(h.Sum(nil))
}

// sign models an Ed25519 signature abstractly: a MAC under the origin's
// secret. The simulator's key table plays the role of public keys.
func sign(secret []byte, id consensus.EventID) [32]byte {
	h := sha256.New()
	h.Write(secret)
	h.Write([]byte(id))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func newEvent(k kind, origin consensus.ServerID, secret []byte, parent consensus.EventID, payload []byte) *event {
	e := &event{Kind: k, Origin: origin, Parent: parent, Payload: payload}
	e.ID = e.digest()
	e.Sig = sign(secret, e.ID)
	return e
}

// toInput decodes a vote's payload with the real consensus decoders.
func (e *event) toInput() (consensus.Event, error) {
	in := consensus.Event{ID: e.ID, From: e.Origin}
	switch e.Kind {
	case kindCommit:
		in.Commit = &consensus.Commit{Parent: e.Parent}
	case kindSeal:
		s, err := consensus.ParseSeal(e.Payload)
		if err != nil {
			return in, err
		}
		in.Seal = &s
	case kindAck:
		a, err := consensus.ParseAck(e.Payload)
		if err != nil {
			return in, err
		}
		in.Ack = &a
	case kindSuspect:
		s, err := consensus.ParseSuspect(e.Payload)
		if err != nil {
			return in, err
		}
		in.Suspect = &s
	}
	return in, nil
}
