package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
)

// kind is a simulated event's kind; its values are package dag's.
type kind = dag.Kind

const (
	kindCommit  = dag.KindCommit
	kindSeal    = dag.KindSeal
	kindAck     = dag.KindAck
	kindSuspect = dag.KindSuspect
	kindMessage = dag.KindMessage
)

// event is a real signed dag.Event plus the fields the simulator reads
// from its content, decoded once. The content is
//
//	uvarint(len(parent)) || parent || payload
//
// where parent is the commit's slot or the message's epoch commit (empty
// for votes) and payload is the consensus wire encoding of a vote, or the
// change or message ID (with its attempt) of a commit or message.
type event struct {
	ev      *dag.Event
	ID      consensus.EventID
	Kind    kind
	Origin  consensus.ServerID
	Parent  consensus.EventID
	Payload []byte
}

// simLimits bounds each simulated store's pending events. Partitions and
// lost packets leave many events waiting for parents until the next sync,
// so the bounds are far above dag.DefaultLimits: the simulator must not
// drop honest events the scenarios count on.
var simLimits = dag.Limits{PendingPerRoom: 1 << 20, PendingPerOrigin: 1 << 20}

// serverKey derives server i's Ed25519 key deterministically from i (i = -1
// is the outsider that forges votes); the seed of the run does not change
// the keys, so hub order is a function of the server count alone.
func serverKey(i int) (consensus.ServerID, ed25519.PrivateKey) {
	seed := sha256.Sum256(fmt.Appendf(nil, "sim-secret/%d", i))
	priv := ed25519.NewKeyFromSeed(seed[:])
	var id consensus.ServerID
	copy(id[:], priv.Public().(ed25519.PublicKey))
	return id, priv
}

func toDagID(id consensus.EventID) dag.EventID {
	var d dag.EventID
	copy(d[:], id)
	return d
}

func fromDagID(id dag.EventID) consensus.EventID { return consensus.EventID(id[:]) }

// newEvent signs a real event of kind k in the world's room, with prev the
// origin's current tips (at most dag.MaxParents) and the tick as timestamp.
func (w *world) newEvent(k kind, origin *server, key ed25519.PrivateKey, parent consensus.EventID, payload []byte) *event {
	var prev []dag.EventID
	if origin != nil {
		tips, err := origin.store.Tips(w.room)
		if err != nil {
			panic(fmt.Sprintf("sim: tips: %v", err)) // MemStore fails only when closed
		}
		prev = tips[:min(len(tips), dag.MaxParents)]
	} else {
		prev = []dag.EventID{toDagID(w.root)}
	}
	content := binary.AppendUvarint(nil, uint64(len(parent)))
	content = append(append(content, parent...), payload...)
	ev, err := dag.NewSigned(key, w.room, k, prev, int64(w.now), content)
	if err != nil {
		panic(fmt.Sprintf("sim: sign event: %v", err)) // programmer error: the sim builds the event
	}
	return w.wrap(ev)
}

// wrap returns the decoded view of a stored event, cached by ID (events are
// immutable, so every server shares one view).
func (w *world) wrap(ev *dag.Event) *event {
	id := ev.ID()
	if e, ok := w.decoded[id]; ok {
		return e
	}
	e := &event{ev: ev, ID: fromDagID(id), Kind: ev.Kind, Origin: consensus.ServerID(ev.Origin)}
	n, k := binary.Uvarint(ev.Content)
	if k > 0 && uint64(len(ev.Content)-k) >= n {
		e.Parent = consensus.EventID(ev.Content[k : k+int(n)])
		e.Payload = ev.Content[k+int(n):]
	}
	w.decoded[id] = e
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
