package badgerstore

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
)

// Key layout (docs/events.md, "Badger key layout"). Every key starts with a
// one-byte table tag; IDs are the 34-byte multihash, rooms the 34-byte ID of
// the create event, integers 8-byte big-endian so that byte order is numeric
// order.
//
//	'e' id                 -> meta: room(34) depth(8) seq(8), then the event encoding (as received)
//	'l' room seq           -> id                  arrival log
//	't' room depth id      -> ()                  topological index
//	'c' parent child       -> ()                  child edges
//	'x' room id            -> ()                  tips (forward extremities), one key each
//	'v'                    -> layout version (1 byte, layoutVersion)
//	'p' id                 -> event encoding      pending event
//	'q' room id            -> arrival(8)          pending events by room, with their arrival (Unix ns)
//	'a' arrival(8) id      -> ()                  pending events by arrival, for ExpirePending
//	'w' parent             -> child ids (34 each) pending children waiting for parent, ascending
//	'P' room               -> ()                  a purge of the room in progress (purge.go)
const (
	tagEvent       = 'e'
	tagLog         = 'l'
	tagTopo        = 't'
	tagChild       = 'c'
	tagTip         = 'x'
	tagVersion     = 'v'
	tagTipList     = 'y' // layout 2: 'y' room -> tip ids, one list per room
	tagPending     = 'p'
	tagPendingRoom = 'q'
	tagArrival     = 'a'
	tagWait        = 'w'
	tagPurge       = 'P'
	metaLen        = dag.IDLen + 8 + 8
	uint64Len      = 8
)

// key concatenates a tag and parts into a fresh key.
func key(tag byte, parts ...[]byte) []byte {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, tag)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// arena hands out consecutive, non-overlapping pieces of one allocation, so
// that the keys and values of one insert cost one allocation. A piece's
// capacity ends where it ends, so appending to it never overwrites the next.
type arena struct{ buf []byte }

func newArena(size int) *arena { return &arena{buf: make([]byte, 0, size)} }

// next returns an empty slice at the arena's end, to append one piece to.
func (a *arena) next() []byte { return a.buf[len(a.buf):len(a.buf)] }

// bytes appends parts to piece (which must come from next and may already
// hold a prefix) and returns the finished piece. The piece started with the
// arena's free capacity, so append moved it elsewhere exactly when it
// outgrew that; only a piece still in the arena advances it.
func (a *arena) bytes(piece []byte, parts ...[]byte) []byte {
	for _, p := range parts {
		piece = append(piece, p...)
	}
	if n := len(a.buf) + len(piece); n <= cap(a.buf) {
		a.buf = a.buf[:n]
	}
	return piece[:len(piece):len(piece)]
}

// key returns a key of tag and parts cut from the arena.
func (a *arena) key(tag byte, parts ...[]byte) []byte {
	return a.bytes(append(a.next(), tag), parts...)
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// arrival encodes a pending event's arrival: Unix nanoseconds with the sign
// bit flipped, so that byte order is time order.
func arrival(at time.Time) []byte { return u64(uint64(at.UnixNano()) ^ 1<<63) }

// encodeMeta appends m to b.
func encodeMeta(b []byte, m dag.Meta) []byte {
	b = append(b, m.Room[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Depth)
	return binary.BigEndian.AppendUint64(b, m.Seq)
}

// decodeMeta reads the metadata at the start of an 'e' value.
func decodeMeta(b []byte) (dag.Meta, error) {
	var m dag.Meta
	if len(b) < metaLen {
		return m, fmt.Errorf("badgerstore: meta of %d bytes: %w", len(b), errCorrupt)
	}
	copy(m.Room[:], b[:dag.IDLen])
	m.Depth = binary.BigEndian.Uint64(b[dag.IDLen:])
	m.Seq = binary.BigEndian.Uint64(b[dag.IDLen+8:])
	return m, nil
}

// idAt reads the EventID at offset off of a key.
func idAt(k []byte, off int) (dag.EventID, error) {
	var id dag.EventID
	if len(k) < off+dag.IDLen {
		return id, fmt.Errorf("badgerstore: key %x too short: %w", k, errCorrupt)
	}
	copy(id[:], k[off:off+dag.IDLen])
	return id, nil
}

func encodeIDs(ids []dag.EventID) []byte {
	b := make([]byte, 0, len(ids)*dag.IDLen)
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

func decodeIDs(b []byte) ([]dag.EventID, error) {
	if len(b)%dag.IDLen != 0 {
		return nil, fmt.Errorf("badgerstore: ID list of %d bytes: %w", len(b), errCorrupt)
	}
	ids := make([]dag.EventID, len(b)/dag.IDLen)
	for i := range ids {
		copy(ids[i][:], b[i*dag.IDLen:])
	}
	return ids, nil
}
