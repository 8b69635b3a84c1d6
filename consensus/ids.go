package consensus

import (
	"bytes"
	"crypto/sha256"
	"slices"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
	"golang.org/x/crypto/cryptobyte"
)

// EventID is the raw ID of a DAG event (a sha2-256 multihash in package
// dag). It is compared byte-wise; the string type only makes it comparable
// and usable as a map key.
type EventID string

// ServerID names a room server by its Ed25519 public key.
type ServerID [32]byte

// Less reports whether a sorts before b byte-wise.
func (a ServerID) Less(b ServerID) bool { return bytes.Compare(a[:], b[:]) < 0 }

// Membership is the set of servers that vote on a slot and the order in
// which they serve as hub. It is an input to consensus: package roomstate
// derives it, and a commit may carry a new one (see [Commit.Membership]).
type Membership struct {
	// Servers are the room's servers. A quorum is a strict majority of them.
	Servers []ServerID
	// HubCandidates is the explicit hub order set by the room's admins. When
	// empty the default order of [DefaultCandidates] applies. Entries that are
	// not in Servers are ignored.
	HubCandidates []ServerID
	// Seed feeds the default candidate order. It changes only when the server
	// set changes (the node passes the ID of the event that changed it).
	Seed []byte
}

// DefaultCandidates orders servers by SHA-256("hub" | room | seed | server),
// each part length-prefixed as a TLS-PL opaque vector, ties broken by the
// server ID. The result depends only on its inputs, never on their order.
func DefaultCandidates(room, seed []byte, servers []ServerID) []ServerID {
	type ranked struct {
		key [32]byte
		id  ServerID
	}
	rs := make([]ranked, 0, len(servers))
	for _, s := range uniqueServers(servers) {
		b, _ := tlspl.Marshal(func(b *cryptobyte.Builder) {
			tlspl.AddOpaque(b, []byte("hub"))
			tlspl.AddOpaque(b, room)
			tlspl.AddOpaque(b, seed)
			tlspl.AddOpaque(b, s[:])
		})
		rs = append(rs, ranked{sha256.Sum256(b), s})
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if c := bytes.Compare(a.key[:], b.key[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.id[:], b.id[:])
	})
	out := make([]ServerID, len(rs))
	for i, r := range rs {
		out[i] = r.id
	}
	return out
}

func uniqueServers(in []ServerID) []ServerID {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b ServerID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// electorate is a Membership resolved for voting: the sorted server set, the
// candidate order and the quorum size.
type electorate struct {
	servers    map[ServerID]bool
	candidates []ServerID
	index      map[ServerID]int
	quorum     int
}

func newElectorate(room []byte, m *Membership) *electorate {
	e := &electorate{servers: map[ServerID]bool{}, index: map[ServerID]int{}}
	for _, s := range m.Servers {
		e.servers[s] = true
	}
	e.quorum = len(e.servers)/2 + 1
	if len(m.HubCandidates) > 0 {
		for _, s := range m.HubCandidates {
			if _, dup := e.index[s]; dup || !e.servers[s] {
				continue
			}
			e.index[s] = len(e.candidates)
			e.candidates = append(e.candidates, s)
		}
	}
	if len(e.candidates) == 0 {
		e.candidates = DefaultCandidates(room, m.Seed, m.Servers)
		for i, s := range e.candidates {
			e.index[s] = i
		}
	}
	return e
}

// hub returns the hub of term t: candidates[t mod n].
func (e *electorate) hub(t uint64) ServerID {
	return e.candidates[t%uint64(len(e.candidates))]
}

// rank returns s's distance from the hub of term t in candidate order (0 for
// the hub itself), and false if s is not a candidate.
func (e *electorate) rank(s ServerID, t uint64) (uint32, bool) {
	i, ok := e.index[s]
	if !ok {
		return 0, false
	}
	n := uint64(len(e.candidates))
	return uint32((uint64(i) + n - t%n) % n), true
}
