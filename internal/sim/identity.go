package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Who is who in a simulated room. Server i is domain si.sim with an
// Ed25519 key derived from i; client i is user ci of its home server's
// domain (home = i mod servers) with one device, dev. Client 0 (at server
// 0) creates the room: server 0 signs the create event and client 0's
// first commit adds every other client.

// serverKey derives server i's Ed25519 key deterministically from i (i = -1
// is the outsider that forges votes); the seed of the run does not change
// the keys, so hub order is a function of the server count alone.
func serverKey(i int) (dag.ServerID, ed25519.PrivateKey) {
	seed := sha256.Sum256(fmt.Appendf(nil, "sim-secret/%d", i))
	priv := ed25519.NewKeyFromSeed(seed[:])
	var id dag.ServerID
	copy(id[:], priv.Public().(ed25519.PublicKey))
	return id, priv
}

// domain is server i's domain.
func domain(i int) string { return fmt.Sprintf("s%d.sim", i) }

// userURI and deviceURI name client i, homed at server home.
func userURI(i, home int) string   { return fmt.Sprintf("mimi://%s/u/c%d", domain(home), i) }
func deviceURI(i, home int) string { return fmt.Sprintf("mimi://%s/d/c%d/dev", domain(home), i) }

// simRoomURI is the simulated room's MIMI URI.
var simRoomURI = roomstate.URI("mimi://" + domain(0) + "/r/sim")

// createEvent returns the create event of an n-server simulated room: the
// private-group preset with every server in the server list and client 0's
// user as the admin, signed by server 0 at time 0. It depends on n alone.
func createEvent(n int) (*dag.Event, error) {
	srvs := make([]roomstate.Server, n)
	for i := range srvs {
		id, _ := serverKey(i)
		srvs[i] = roomstate.Server{ID: roomstate.ServerID(id), Domain: domain(i)}
	}
	st, err := roomstate.NewRoom(roomstate.PresetPrivateGroup, roomstate.RoomConfig{
		Room: simRoomURI, Name: "sim", Creator: roomstate.URI(userURI(0, 0)), Servers: srvs,
	})
	if err != nil {
		return nil, fmt.Errorf("sim: initial room state: %w", err)
	}
	comps, err := st.Components()
	if err != nil {
		return nil, fmt.Errorf("sim: initial room state: %w", err)
	}
	state, err := roomstate.MarshalComponents(comps)
	if err != nil {
		return nil, fmt.Errorf("sim: initial room state: %w", err)
	}
	content, err := (&roomevent.Create{
		Creator: roomevent.Sender{User: userURI(0, 0), Client: deviceURI(0, 0)},
		Preset:  "private-group", State: state,
	}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("sim: create event: %w", err)
	}
	_, key := serverKey(0)
	return dag.NewSigned(key, dag.RoomID{}, dag.KindCreate, nil, 0, content)
}

// orderInputs are the ordering layer's view of a room (the same the room
// engine gives its machine), for the checks' independent ForkChoice.
type orderInputs struct {
	room       []byte
	root       consensus.EventID
	membership consensus.Membership
}

func orderInputsOf(create *dag.Event, n int) orderInputs {
	var m consensus.Membership
	for i := range n {
		id, _ := serverKey(i)
		m.Servers = append(m.Servers, consensus.ServerID(id))
	}
	m.Seed = create.ID().Bytes()
	return orderInputs{room: create.RoomID().CreateID().Bytes(), root: cid(create.ID()), membership: m}
}

// HubOrder returns the server indices of an n-server simulated room in
// initial hub-candidate order: HubOrder(n)[0] is the hub of term 0.
func HubOrder(n int) []int {
	if n < 1 {
		return nil
	}
	create, err := createEvent(n)
	if err != nil {
		panic(fmt.Sprintf("sim: %v", err)) // programmer error: the sim builds it
	}
	in := orderInputsOf(create, n)
	ids := in.membership.Servers
	out := make([]int, 0, n)
	for _, c := range consensus.DefaultCandidates(in.room, in.membership.Seed, ids) {
		out = append(out, slices.Index(ids, c))
	}
	return out
}
