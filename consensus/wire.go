package consensus

import (
	"fmt"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
	"golang.org/x/crypto/cryptobyte"
)

// Wire limits. They bound what a peer can make a server allocate.
const (
	// MaxIDLen is the longest event ID accepted (a sha2-256 multihash is 34).
	MaxIDLen = 64
	// MaxListLen bounds a seal's justification and a suspect's reports.
	MaxListLen = 1024
)

// Seal is the content of a `seal` event: its origin server orders Commit as
// the commit for the slot Slot (the commit Commit builds on) in Term.
//
//	struct {
//	    opaque slot<V>;
//	    opaque commit<V>;
//	    uint64 term;
//	    bool   tentative;
//	    uint32 rank;
//	    opaque justification<V>;   /* EventID suspects<V>, strictly ascending */
//	} Seal;
type Seal struct {
	Slot   EventID
	Commit EventID
	Term   uint64
	// Tentative marks a seal made without a certified parent or by a server
	// other than the term's hub; it can never gather a certificate.
	Tentative bool
	// Rank is the sealer's distance from the term's hub in candidate order
	// (0 for the hub). It is checked against the membership, never trusted.
	Rank uint32
	// Justification lists the suspect(Term-1) events that started Term
	// (empty in term 0), strictly ascending. Verifiers recompute from them
	// the commit the Paxos rule forces for this slot.
	Justification []EventID
}

// Ack is the content of an `ack` event: its origin votes for Commit in slot
// Slot and term Term.
//
//	struct { opaque slot<V>; opaque commit<V>; uint64 term; } Ack;
type Ack struct {
	Slot   EventID
	Commit EventID
	Term   uint64
}

// AckReport is one line of a suspect vote: the voter's highest-term ack for
// an open slot.
//
//	struct { opaque slot<V>; opaque commit<V>; uint64 term; } AckReport;
type AckReport = Ack

// Suspect is the content of a `suspect` event: its origin votes to end Term
// and promises to ack nothing more in Term or earlier.
//
//	struct {
//	    uint64 term;
//	    AckReport reports<V>;   /* strictly ascending by slot */
//	} Suspect;
type Suspect struct {
	Term    uint64
	Reports []AckReport
}

func addID(b *cryptobyte.Builder, id EventID) {
	if len(id) == 0 || len(id) > MaxIDLen {
		b.SetError(fmt.Errorf("%w: event ID of %d bytes", ErrMalformed, len(id)))
		return
	}
	tlspl.AddOpaque(b, []byte(id))
}

func readID(s *cryptobyte.String, id *EventID) bool {
	var v cryptobyte.String
	if !tlspl.ReadVector(s, &v) || len(v) == 0 || len(v) > MaxIDLen {
		return false
	}
	*id = EventID(v)
	return true
}

func (a *Ack) marshal(b *cryptobyte.Builder) {
	addID(b, a.Slot)
	addID(b, a.Commit)
	b.AddUint64(a.Term)
}

func (a *Ack) unmarshal(s *cryptobyte.String) bool {
	return readID(s, &a.Slot) && readID(s, &a.Commit) && s.ReadUint64(&a.Term)
}

// Marshal returns the TLS-PL encoding of the ack.
func (a *Ack) Marshal() ([]byte, error) { return tlspl.Marshal(a.marshal) }

// ParseAck decodes an ack strictly (no trailing bytes, minimal lengths).
func ParseAck(raw []byte) (Ack, error) {
	var a Ack
	if err := tlspl.Unmarshal(raw, "consensus.Ack", a.unmarshal); err != nil {
		return Ack{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return a, nil
}

func (s *Seal) marshal(b *cryptobyte.Builder) {
	addID(b, s.Slot)
	addID(b, s.Commit)
	b.AddUint64(s.Term)
	tlspl.AddBool(b, s.Tentative)
	b.AddUint32(s.Rank)
	if len(s.Justification) > MaxListLen {
		b.SetError(fmt.Errorf("%w: %d justifying suspects", ErrMalformed, len(s.Justification)))
		return
	}
	for i := 1; i < len(s.Justification); i++ {
		if s.Justification[i-1] >= s.Justification[i] {
			b.SetError(fmt.Errorf("%w: justification not strictly ascending", ErrMalformed))
			return
		}
	}
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for _, id := range s.Justification {
			addID(b, id)
		}
	})
}

func (s *Seal) unmarshal(in *cryptobyte.String) bool {
	if !readID(in, &s.Slot) || !readID(in, &s.Commit) || !in.ReadUint64(&s.Term) ||
		!tlspl.ReadBool(in, &s.Tentative) || !in.ReadUint32(&s.Rank) {
		return false
	}
	s.Justification = nil
	return tlspl.ReadList(in, func(v *cryptobyte.String) bool {
		var id EventID
		if !readID(v, &id) || len(s.Justification) >= MaxListLen {
			return false
		}
		if n := len(s.Justification); n > 0 && s.Justification[n-1] >= id {
			return false
		}
		s.Justification = append(s.Justification, id)
		return true
	})
}

// Marshal returns the TLS-PL encoding of the seal. It fails if the
// justification is not strictly ascending or an ID is empty or too long.
func (s *Seal) Marshal() ([]byte, error) { return tlspl.Marshal(s.marshal) }

// ParseSeal decodes a seal strictly.
func ParseSeal(raw []byte) (Seal, error) {
	var s Seal
	if err := tlspl.Unmarshal(raw, "consensus.Seal", s.unmarshal); err != nil {
		return Seal{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return s, nil
}

func (s *Suspect) marshal(b *cryptobyte.Builder) {
	b.AddUint64(s.Term)
	if len(s.Reports) > MaxListLen {
		b.SetError(fmt.Errorf("%w: %d ack reports", ErrMalformed, len(s.Reports)))
		return
	}
	for i := 1; i < len(s.Reports); i++ {
		if s.Reports[i-1].Slot >= s.Reports[i].Slot {
			b.SetError(fmt.Errorf("%w: reports not strictly ascending by slot", ErrMalformed))
			return
		}
	}
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range s.Reports {
			s.Reports[i].marshal(b)
		}
	})
}

func (s *Suspect) unmarshal(in *cryptobyte.String) bool {
	if !in.ReadUint64(&s.Term) {
		return false
	}
	s.Reports = nil
	return tlspl.ReadList(in, func(v *cryptobyte.String) bool {
		var r AckReport
		if !r.unmarshal(v) || len(s.Reports) >= MaxListLen {
			return false
		}
		if n := len(s.Reports); n > 0 && s.Reports[n-1].Slot >= r.Slot {
			return false
		}
		s.Reports = append(s.Reports, r)
		return true
	})
}

// Marshal returns the TLS-PL encoding of the suspect vote. It fails if the
// reports are not strictly ascending by slot.
func (s *Suspect) Marshal() ([]byte, error) { return tlspl.Marshal(s.marshal) }

// ParseSuspect decodes a suspect vote strictly.
func ParseSuspect(raw []byte) (Suspect, error) {
	var s Suspect
	if err := tlspl.Unmarshal(raw, "consensus.Suspect", s.unmarshal); err != nil {
		return Suspect{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return s, nil
}
